// The statushub dashboard: follows /ws/status and shows the current picture.
//
// Every feed message is a full picture, so the page only ever renders the
// latest one.  It talks to its own origin only.
"use strict";

(function () {
  // A token configured on the hub reaches the page in its own URL (?token=);
  // the feed gets it the same way (browsers cannot set WebSocket headers),
  // the API as a bearer header.
  const token = new URLSearchParams(window.location.search).get("token");

  // Reconnect delays: doubling from 0.5 s up to 10 s, with jitter so that
  // many pages do not all come back at the same instant.
  const BACKOFF_INITIAL = 500;
  const BACKOFF_MAX = 10000;

  // Closes that retrying cannot fix (policy violation: bad token or origin).
  const FATAL_CLOSE_CODES = [1008];

  const $ = (id) => document.getElementById(id);

  const state = {
    socket: null,
    attempts: 0, // failed attempts since the last message
    retryTimer: null, // the pending reconnect, while waiting out a backoff
    retryAt: null,
    lastSeq: null, // seq of the last picture shown, on this connection
    gotSnapshot: false, // has this connection sent its first picture?
    lastUpdate: null, // Date the last picture arrived
    missed: 0, // messages known to be missed (seq jumps)
    // nodeId -> {status, health, since: Date, seenAtStart: bool}
    nodes: new Map(),
    deployStatus: null,
    shownAny: false, // has any picture been shown since the page loaded?
  };

  // ---- the feed --------------------------------------------------------

  function feedUrl() {
    const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    let url = scheme + "//" + window.location.host + "/ws/status";
    if (token) {
      url += "?token=" + encodeURIComponent(token);
    }
    return url;
  }

  function connect() {
    state.retryTimer = null;
    state.retryAt = null;
    state.gotSnapshot = false;
    state.lastSeq = null;
    showConnection(state.attempts === 0 ? "connecting" : "reconnecting");
    let socket;
    try {
      socket = new WebSocket(feedUrl());
    } catch (err) {
      scheduleReconnect();
      return;
    }
    state.socket = socket;
    socket.onmessage = (event) => onFeedMessage(event.data);
    socket.onclose = async (event) => {
      if (state.socket !== socket) {
        return;
      }
      state.socket = null;
      if (FATAL_CLOSE_CODES.includes(event.code)) {
        showConnection("disconnected", "the hub refused the feed: " + (event.reason || "policy violation"));
        return;
      }
      // A browser is not told why an upgrade failed; if the feed never
      // opened, ask the API whether the token is the problem.
      if (!state.gotSnapshot) {
        const refusal = await tokenRefusal();
        if (refusal) {
          showConnection("disconnected", refusal);
          return;
        }
      }
      scheduleReconnect();
    };
  }

  function scheduleReconnect() {
    const base = Math.min(BACKOFF_MAX, BACKOFF_INITIAL * Math.pow(2, state.attempts));
    const delay = base / 2 + Math.random() * (base / 2);
    state.attempts += 1;
    state.retryAt = Date.now() + delay;
    state.retryTimer = window.setTimeout(connect, delay);
    showConnection("reconnecting");
  }

  // Only while waiting out a backoff or given up: never beside an attempt
  // that is still under way.
  function reconnectNow() {
    const waiting = state.retryTimer !== null;
    const givenUp = $("connection").dataset.state === "disconnected";
    if (state.socket || !(waiting || givenUp)) {
      return;
    }
    if (state.retryTimer) {
      window.clearTimeout(state.retryTimer);
    }
    connect();
  }

  function onFeedMessage(data) {
    let message;
    try {
      message = JSON.parse(data);
    } catch (err) {
      return; // not ours to show; the next picture will be
    }
    if (!message || message.type !== "status_update") {
      return;
    }
    // The first message on a connection is the current picture: take it
    // whatever its seq (a restarted hub counts from the start again).
    if (state.gotSnapshot && state.lastSeq !== null) {
      if (message.seq <= state.lastSeq) {
        return; // older than what is shown
      }
      if (message.seq > state.lastSeq + 1) {
        // Something was missed: count it, and ask for the current picture
        // in case this message is not the newest either.
        state.missed += message.seq - state.lastSeq - 1;
        refetchStatus();
      }
    }
    state.gotSnapshot = true;
    state.attempts = 0;
    showConnection("live");
    render(message);
  }

  // The API's words when it refuses our token (401), else null.
  async function tokenRefusal() {
    try {
      const response = await fetch("/api/status", { headers: apiHeaders() });
      if (response.status === 401) {
        return (await describeRefusal(response)) +
          (token ? "" : " (open the page with ?token=...)");
      }
    } catch (err) {
      // the hub is away: retrying is right
    }
    return null;
  }

  async function refetchStatus() {
    try {
      const response = await fetch("/api/status", { headers: apiHeaders() });
      if (!response.ok) {
        return;
      }
      const picture = await response.json();
      // Only if it is at least as new as what the feed has shown since.
      if (state.lastSeq === null || picture.seq >= state.lastSeq) {
        render(picture);
      }
    } catch (err) {
      // the feed will bring the next picture anyway
    }
  }

  // ---- rendering -------------------------------------------------------

  // Each word gets a colour class; the word itself is always shown.
  const TONE = {
    running: "good", healthy: "good", deployed: "good", live: "good", reachable: "good",
    created: "warn", restarting: "warn", paused: "warn", removing: "warn", starting: "warn",
    deploying: "warn", tearing_down: "warn", reconnecting: "warn", connecting: "warn",
    exited: "bad", dead: "bad", missing: "bad", unhealthy: "bad", failed: "bad",
    disconnected: "bad", unreachable: "bad",
  };

  function setBadge(element, word) {
    element.textContent = word.replace(/_/g, " ");
    element.dataset.state = word;
    element.className = "badge " + (TONE[word] || "neutral");
  }

  function showConnection(connection, detail) {
    setBadge($("connection"), connection);
    if (detail === undefined) {
      detail = "";
      if (connection === "reconnecting" && state.retryAt) {
        detail = "(attempt " + state.attempts + ", next try in " +
          formatDuration(Math.max(0, state.retryAt - Date.now())) + ")";
      }
    }
    $("connection-detail").textContent = detail;
    const button = $("reconnect");
    if (button) {
      button.hidden = connection !== "disconnected";
    }
  }

  function render(message) {
    state.lastSeq = message.seq;
    state.lastUpdate = new Date();
    state.deployStatus = message.deployStatus;

    $("deployment-name").textContent = message.deployment || "none";
    setBadge($("deploy-status"), message.deployStatus);
    setBadge($("engine"), message.engine || "unknown");

    const error = $("deploy-error");
    error.textContent = message.error ? "Error: " + message.error : "";
    error.hidden = !message.error;

    const missed = $("missed");
    missed.textContent = state.missed
      ? state.missed + " update(s) missed on the feed; the picture was fetched again."
      : "";
    missed.hidden = !state.missed;

    renderNodes(message.nodeStatuses || [], !state.shownAny);
    state.shownAny = true;
    $("teardown").disabled = message.deployStatus === "idle";
    tick();
  }

  function renderNodes(nodeStatuses, firstPicture) {
    const now = new Date();
    const seen = new Map();
    const tbody = $("nodes").tBodies[0];
    tbody.textContent = "";
    for (const node of nodeStatuses) {
      const before = state.nodes.get(node.nodeId);
      const health = node.health || null;
      let since = now;
      let seenAtStart = firstPicture;
      // Keep the clock running while neither the status nor the health changed.
      if (before && before.status === node.status && before.health === health) {
        since = before.since;
        seenAtStart = before.seenAtStart;
      }
      seen.set(node.nodeId, { status: node.status, health: health, since: since, seenAtStart: seenAtStart });

      const row = tbody.insertRow();
      row.dataset.nodeId = node.nodeId;
      addCell(row, "node", node.nodeId);
      const container = addCell(row, "container", (node.containerId || "").slice(0, 12) || "—");
      container.title = node.containerId || "";
      setBadge(addBadgeCell(row, "status"), node.status);
      const healthBadge = addBadgeCell(row, "health");
      if (health) {
        setBadge(healthBadge, health);
      } else {
        healthBadge.textContent = "n/a"; // only running containers with a check report health
        healthBadge.className = "badge neutral";
        healthBadge.dataset.state = "";
      }
      addCell(row, "since", "");
    }
    state.nodes = seen;
    $("no-nodes").hidden = nodeStatuses.length > 0;
  }

  function addCell(row, field, text) {
    const cell = row.insertCell();
    cell.dataset.field = field;
    cell.textContent = text;
    return cell;
  }

  function addBadgeCell(row, field) {
    const cell = row.insertCell();
    cell.dataset.field = field;
    const badge = document.createElement("span");
    cell.appendChild(badge);
    return badge;
  }

  // Durations and "last update" age move on between messages.
  function tick() {
    const now = Date.now();
    for (const row of $("nodes").tBodies[0].rows) {
      const node = state.nodes.get(row.dataset.nodeId);
      const cell = row.querySelector('[data-field="since"]');
      if (node && cell) {
        // A state already there when the page first looked may be older.
        cell.textContent = (node.seenAtStart ? "≥ " : "") + formatDuration(now - node.since.getTime());
        cell.title = node.seenAtStart ? "already so when this page started watching" : "";
      }
    }
    const last = $("last-update");
    if (state.lastUpdate) {
      last.dateTime = state.lastUpdate.toISOString();
      last.textContent = state.lastUpdate.toLocaleTimeString() + " (" +
        formatDuration(now - state.lastUpdate.getTime()) + " ago)";
    }
    if ($("connection").dataset.state === "reconnecting") {
      showConnection("reconnecting");
    }
  }

  function formatDuration(ms) {
    const seconds = Math.floor(ms / 1000);
    if (seconds < 60) {
      return seconds + " s";
    }
    const minutes = Math.floor(seconds / 60);
    if (minutes < 60) {
      return minutes + " min " + (seconds % 60) + " s";
    }
    const hours = Math.floor(minutes / 60);
    return hours + " h " + (minutes % 60) + " min";
  }

  // ---- actions ---------------------------------------------------------

  function apiHeaders(extra) {
    const headers = Object.assign({}, extra || {});
    if (token) {
      headers["Authorization"] = "Bearer " + token;
    }
    return headers;
  }

  function showApiMessage(text, isError) {
    const element = $("api-message");
    element.textContent = text;
    element.className = isError ? "error" : "note";
    element.hidden = !text;
  }

  // The API answers errors as {"error": "...", "field": "..."}; show its
  // words, and the raw body when it is not that.
  async function describeRefusal(response) {
    const body = await response.text();
    let text = body.trim() || response.status + " " + response.statusText;
    try {
      const parsed = JSON.parse(body);
      if (parsed && typeof parsed.error === "string") {
        text = parsed.error;
        if (parsed.field && !text.includes(parsed.field)) {
          text += " (field: " + parsed.field + ")";
        }
      }
    } catch (err) {
      // not JSON: the raw body it is
    }
    return "Refused (" + response.status + "): " + text;
  }

  async function callApi(method, body, accepted) {
    const options = { method: method, headers: apiHeaders() };
    if (body !== undefined) {
      options.body = body;
      options.headers["Content-Type"] = "application/json";
    }
    let response;
    try {
      response = await fetch("/api/deployment", options);
    } catch (err) {
      showApiMessage("Could not reach the hub: " + err.message, true);
      return;
    }
    if (response.ok) {
      showApiMessage(accepted, false);
    } else {
      showApiMessage(await describeRefusal(response), true);
    }
  }

  async function deployFromFile(event) {
    event.preventDefault();
    const file = $("deploy-file").files[0];
    if (!file) {
      showApiMessage("Pick a topology file first.", true);
      return;
    }
    // Sent as it is: the API validates it and says what is wrong.
    const text = await file.text();
    showApiMessage("Deploying " + file.name + "…", false);
    await callApi("POST", text, "Deployment of " + file.name + " accepted.");
  }

  async function teardown() {
    if (!window.confirm("Tear the deployment down? Its containers are removed.")) {
      return;
    }
    showApiMessage("Tearing down…", false);
    await callApi("DELETE", undefined, "Teardown accepted.");
  }

  // ---- start -----------------------------------------------------------

  function start() {
    $("deploy-form").addEventListener("submit", deployFromFile);
    $("teardown").addEventListener("click", teardown);

    // A button to retry by hand once the hub has refused us.
    const button = document.createElement("button");
    button.id = "reconnect";
    button.type = "button";
    button.textContent = "Reconnect";
    button.hidden = true;
    button.addEventListener("click", () => {
      state.attempts = 0;
      reconnectNow();
    });
    $("connection-detail").after(button);

    // Coming back online or to the tab: no need to wait for the backoff.
    window.addEventListener("online", reconnectNow);
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden) {
        reconnectNow();
      }
    });

    window.setInterval(tick, 1000);
    connect();
  }

  start();
})();
