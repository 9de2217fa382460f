// Why a node is in its state, on the dashboard: the CPU and memory of each
// running node (from /ws/stats, while a deployment's view is open) and the
// log of one node (from /ws/logs, at /?deployment=NAME&node=NODE or after a
// click on the node), following live.
//
// app.js draws the node table; it calls statushubInsight.fillRow(row, node)
// for each row it draws, and statushubInsight.nodeChanged(node) for each
// node of each picture.  Everything here talks to the page's own origin.
"use strict";

window.statushubInsight = (function () {
  const params = new URLSearchParams(window.location.search);
  const token = params.get("token");
  const viewing = params.get("deployment");

  const BACKOFF_INITIAL = 500;
  const BACKOFF_MAX = 10000;
  // lines kept in the page: the oldest go first
  const MAX_LINES = 5000;
  const TAIL = 200;
  // how close to the bottom still counts as "at the newest line", in pixels
  const AT_BOTTOM = 8;

  const $ = (id) => document.getElementById(id);

  // nodeId -> the latest entry of a stats message
  const stats = new Map();
  const log = {
    node: null, // the node whose log is shown
    socket: null,
    attempts: 0,
    retryTimer: null,
    ended: false,
    lastTime: "", // the engine time of the last line shown
    following: true, // scrolling with new lines (not while reading back)
    unseen: 0, // lines added while not following
  };

  function wsUrl(path, query) {
    const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    if (token) {
      query.set("token", token);
    }
    return scheme + "//" + window.location.host + path + "?" + query.toString();
  }

  function backoff(attempts) {
    const base = Math.min(BACKOFF_MAX, BACKOFF_INITIAL * Math.pow(2, attempts));
    return base / 2 + Math.random() * (base / 2);
  }

  // ---- CPU and memory ------------------------------------------------------

  let statsAttempts = 0;

  function connectStats() {
    const socket = new WebSocket(wsUrl("/ws/stats", new URLSearchParams({ deployment: viewing })));
    socket.onmessage = (event) => {
      let message;
      try {
        message = JSON.parse(event.data);
      } catch (err) {
        return;
      }
      if (!message || message.type !== "stats" || message.deployment !== viewing) {
        return;
      }
      statsAttempts = 0;
      stats.clear();
      for (const node of message.nodes || []) {
        stats.set(node.nodeId, node);
      }
      for (const row of $("nodes").tBodies[0].rows) {
        fillCells(row);
      }
    };
    socket.onclose = () => {
      // a deployment not (yet) there is refused: try again, more slowly
      window.setTimeout(connectStats, backoff(statsAttempts));
      statsAttempts += 1;
    };
  }

  function formatBytes(bytes) {
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let value = bytes;
    let unit = 0;
    while (value >= 1024 && unit < units.length - 1) {
      value /= 1024;
      unit += 1;
    }
    return (unit ? value.toFixed(1) : String(value)) + " " + units[unit];
  }

  // The CPU and memory cells of one node row, from the latest sample.
  function fillCells(row) {
    const cpu = row.querySelector('[data-field="cpu"]');
    const memory = row.querySelector('[data-field="memory"]');
    if (!cpu || !memory) {
      return;
    }
    const entry = row.dataset.status === "running" ? stats.get(row.dataset.node) : undefined;
    if (entry && typeof entry.cpu === "number") {
      row.dataset.cpu = String(entry.cpu);
      row.dataset.memory = String(entry.memoryBytes);
      row.dataset.memoryLimit = String(entry.memoryLimitBytes);
      cpu.textContent = entry.cpu.toFixed(1) + " %";
      memory.textContent = formatBytes(entry.memoryBytes) + " / " + formatBytes(entry.memoryLimitBytes);
      const share = entry.memoryLimitBytes ? entry.memoryBytes / entry.memoryLimitBytes : 0;
      memory.title = (share * 100).toFixed(0) + " % of its limit";
      memory.classList.toggle("near-limit", share >= 0.9);
      cpu.title = "percent of one core";
    } else {
      delete row.dataset.cpu;
      delete row.dataset.memory;
      delete row.dataset.memoryLimit;
      // a node whose engine the hub cannot reach (on a swarm) says so
      const why = entry && entry.unavailable ? "not available: " + entry.unavailable : "";
      cpu.textContent = why ? "not available" : "—";
      memory.textContent = "—";
      cpu.title = why;
      memory.title = why;
    }
  }

  // Called by app.js for each node row it draws.
  function fillRow(row, node) {
    const cpu = row.insertCell();
    cpu.dataset.field = "cpu";
    const memory = row.insertCell();
    memory.dataset.field = "memory";
    fillCells(row);
    // the node's name opens its log
    const cell = row.querySelector('[data-field="node"]');
    if (cell) {
      const link = document.createElement("a");
      link.href = nodeUrl(node.nodeId);
      link.textContent = node.nodeId;
      link.addEventListener("click", (event) => {
        event.preventDefault();
        window.history.pushState(null, "", nodeUrl(node.nodeId));
        openLog(node.nodeId);
      });
      cell.textContent = "";
      cell.appendChild(link);
    }
    if (node.oomKilled) {
      row.dataset.oomKilled = "true";
      const status = row.querySelector('[data-field="status"]');
      const mark = document.createElement("span");
      mark.className = "badge bad oom";
      mark.dataset.state = "oom";
      mark.textContent = "out of memory";
      mark.title = "the kernel's OOM killer ended it (exit code " + node.exitCode + ")";
      status.appendChild(document.createTextNode(" "));
      status.appendChild(mark);
    }
  }

  function nodeUrl(nodeId) {
    const query = new URLSearchParams({ deployment: viewing, node: nodeId });
    if (token) {
      query.set("token", token);
    }
    return "/?" + query.toString();
  }

  // ---- a node's log ---------------------------------------------------------

  function openLog(nodeId) {
    if (log.node === nodeId && log.socket) {
      return;
    }
    closeLog();
    log.node = nodeId;
    log.ended = false;
    log.lastTime = "";
    log.following = true;
    log.unseen = 0;
    $("log-node").textContent = nodeId;
    $("log-lines").textContent = "";
    $("log-panel").hidden = false;
    $("log-panel").dataset.node = nodeId;
    showLogState("connecting");
    connectLog();
  }

  function closeLog() {
    if (log.retryTimer) {
      window.clearTimeout(log.retryTimer);
      log.retryTimer = null;
    }
    if (log.socket) {
      const socket = log.socket;
      log.socket = null;
      socket.close();
    }
  }

  function connectLog() {
    log.retryTimer = null;
    const node = log.node;
    const query = new URLSearchParams({ deployment: viewing, node: node, tail: String(TAIL) });
    const socket = new WebSocket(wsUrl("/ws/logs", query));
    log.socket = socket;
    socket.onmessage = (event) => {
      if (log.socket !== socket) {
        return;
      }
      let message;
      try {
        message = JSON.parse(event.data);
      } catch (err) {
        return;
      }
      onLogMessage(message);
    };
    socket.onclose = (event) => {
      if (log.socket !== socket) {
        return;
      }
      log.socket = null;
      if (log.ended) {
        return;
      }
      if (event.code === 4002) {
        showLogState("unavailable", event.reason);
      } else {
        showLogState("reconnecting");
      }
      log.retryTimer = window.setTimeout(connectLog, backoff(log.attempts));
      log.attempts += 1;
    };
  }

  function onLogMessage(message) {
    if (message.type === "log") {
      log.attempts = 0;
      showLogState("following");
      // after a reconnect the tail repeats what is shown: skip it
      const lines = (message.lines || []).filter((line) => line.time > log.lastTime);
      addLines(lines);
    } else if (message.type === "log_gap") {
      addGap(message.dropped);
    } else if (message.type === "log_end") {
      log.ended = true;
      showLogState("ended");
    }
  }

  function addLines(lines) {
    if (!lines.length) {
      return;
    }
    const box = $("log-lines");
    // where the reader is now, not where the last scroll event said: a
    // batch may come between a scroll and its event
    setFollowing(atBottom(box));
    const fragment = document.createDocumentFragment();
    for (const line of lines) {
      const element = document.createElement("div");
      element.className = "log-line " + line.stream;
      element.dataset.logLine = "";
      element.dataset.stream = line.stream;
      element.dataset.time = line.time;
      const time = document.createElement("time");
      time.dateTime = line.time;
      time.textContent = clockTime(line.time);
      const text = document.createElement("span");
      text.className = "text";
      text.textContent = line.text;
      element.append(time, text);
      fragment.appendChild(element);
      log.lastTime = line.time;
    }
    box.appendChild(fragment);
    trim(box);
    if (log.following) {
      box.scrollTop = box.scrollHeight;
    } else {
      log.unseen += lines.length;
      showUnseen();
    }
  }

  function addGap(dropped) {
    const box = $("log-lines");
    const element = document.createElement("div");
    element.className = "log-gap";
    element.dataset.logGap = String(dropped);
    element.textContent = "… " + dropped + " line(s) left out (the node printed too fast, or this page fell behind)";
    box.appendChild(element);
    if (log.following) {
      box.scrollTop = box.scrollHeight;
    }
  }

  function trim(box) {
    while (box.childElementCount > MAX_LINES) {
      box.firstElementChild.remove();
    }
  }

  // "2026-11-26T08:00:00.123456789Z" -> local "08:00:00.123"
  function clockTime(stamp) {
    const date = new Date(stamp.replace(/(\.\d{3})\d*/, "$1"));
    if (isNaN(date.getTime())) {
      return stamp;
    }
    return date.toLocaleTimeString([], { hour12: false }) + "." +
      String(date.getMilliseconds()).padStart(3, "0");
  }

  const LOG_STATES = {
    connecting: ["connecting", "warn"],
    following: ["following live", "good"],
    reconnecting: ["reconnecting", "warn"],
    unavailable: ["unavailable", "bad"],
    ended: ["ended: the node's container stopped", "neutral"],
  };

  function showLogState(word, detail) {
    const badge = $("log-state");
    const [text, tone] = LOG_STATES[word];
    badge.textContent = text + (detail ? " (" + detail + ")" : "");
    badge.dataset.state = word;
    badge.className = "badge " + tone;
  }

  function showUnseen() {
    const button = $("log-newest");
    button.hidden = log.following;
    button.textContent = log.unseen
      ? "↓ " + log.unseen + " new line(s): follow again"
      : "↓ follow again";
  }

  function atBottom(box) {
    return box.scrollHeight - box.scrollTop - box.clientHeight <= AT_BOTTOM;
  }

  // Reading back stops the scrolling; back at the bottom, it follows again.
  function setFollowing(following) {
    if (following !== log.following) {
      log.following = following;
      if (following) {
        log.unseen = 0;
      }
      $("log-panel").dataset.following = String(following);
      showUnseen();
    }
  }

  function onScroll() {
    setFollowing(atBottom($("log-lines")));
  }

  function followAgain() {
    const box = $("log-lines");
    box.scrollTop = box.scrollHeight;
    log.following = true;
    log.unseen = 0;
    $("log-panel").dataset.following = "true";
    showUnseen();
  }

  // Called by app.js with each node of each picture: a log that ended
  // because the node stopped starts again when the node runs again.
  function nodeChanged(node) {
    if (node.nodeId === log.node && log.ended && node.status === "running" && !log.socket) {
      log.ended = false;
      showLogState("connecting");
      connectLog();
    }
  }

  function hideLog() {
    closeLog();
    log.node = null;
    $("log-panel").hidden = true;
    const query = new URLSearchParams({ deployment: viewing });
    if (token) {
      query.set("token", token);
    }
    window.history.pushState(null, "", "/?" + query.toString());
  }

  function start() {
    if (viewing === null) {
      return;
    }
    $("log-lines").addEventListener("scroll", onScroll);
    $("log-newest").addEventListener("click", followAgain);
    $("log-close").addEventListener("click", hideLog);
    window.addEventListener("popstate", () => {
      const node = new URLSearchParams(window.location.search).get("node");
      if (node) {
        openLog(node);
      } else if (log.node !== null) {
        closeLog();
        log.node = null;
        $("log-panel").hidden = true;
      }
    });
    connectStats();
    const node = params.get("node");
    if (node) {
      openLog(node);
    }
  }

  return { start: start, fillRow: fillRow, nodeChanged: nodeChanged };
})();
