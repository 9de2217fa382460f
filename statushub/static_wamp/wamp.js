// The statushub status through a WAMP router, with Autobahn JS.
//
// The whole client is: join the realm, subscribe to <prefix>.status (each
// event's single positional argument is the feed's JSON message, about the
// deployment it names), and call <prefix>.list_deployments once for every
// current picture.  seq counts per deployment, within one epoch.
"use strict";

(function () {
  const state = {
    wamp: "starting",
    messages: [], // every message shown, oldest first (the tests read this)
    deployments: {}, // name -> its latest picture (the tests read this)
    // name -> {epoch, seq} of the last message about it, kept after a
    // teardown too, so that a late answer cannot bring it back
    last: {},
    session: 0, // counts joins: what a join's list answer may replace
    seenIn: {}, // name -> the join in which its latest message came
  };
  window.statushubWamp = state;

  function $(id) {
    return document.getElementById(id);
  }

  function setState(word) {
    state.wamp = word;
    $("wamp-state").textContent = word;
    $("wamp-state").dataset.state = word;
  }

  // Is this message older than what we know of its deployment?
  function stale(message) {
    const last = state.last[message.deployment];
    return last !== undefined && last.epoch === message.epoch && message.seq <= last.seq;
  }

  function take(message) {
    if (!message || message.type !== "status_update" || stale(message)) {
      return; // a late answer must not undo a newer event
    }
    state.messages.push(message);
    if (state.wamp === "waiting for the hub") {
      setState("joined"); // the hub joined and published
    }
    const name = message.deployment;
    if (name === null || name === undefined) {
      // the hub has no deployment at all
      state.deployments = {};
    } else {
      state.last[name] = { epoch: message.epoch, seq: message.seq };
      state.seenIn[name] = state.session;
      if (message.deployStatus === "idle" && message.nodeStatuses.length === 0) {
        delete state.deployments[name]; // torn down: it drops out
      } else {
        state.deployments[name] = message;
      }
    }
    $("last-deployment").textContent = name || "none";
    $("seq").textContent = String(message.seq);
    $("timestamp").textContent = message.timestamp;
    render();
  }

  // Every current picture, as list_deployments answers on (re)joining:
  // deployments we heard of before this join and that are not in it are gone.
  function takeAll(pictures) {
    const listed = new Set(pictures.map((picture) => picture.deployment));
    for (const name of Object.keys(state.deployments)) {
      if (!listed.has(name) && state.seenIn[name] !== state.session) {
        delete state.deployments[name];
      }
    }
    for (const picture of pictures) {
      take(picture);
    }
    render();
  }

  function render() {
    const names = Object.keys(state.deployments).sort();
    const list = $("deployments");
    list.replaceChildren();
    $("no-deployments").hidden = names.length > 0;
    for (const name of names) {
      list.appendChild(deploymentSection(state.deployments[name]));
    }
  }

  function deploymentSection(message) {
    const section = document.createElement("section");
    section.dataset.deployment = message.deployment;
    section.dataset.status = message.deployStatus;
    const heading = document.createElement("h2");
    heading.textContent = message.deployment + " ";
    const status = document.createElement("span");
    status.className = "state";
    status.textContent = message.deployStatus;
    heading.appendChild(status);
    const seq = document.createElement("span");
    seq.className = "muted";
    seq.textContent = " seq " + message.seq;
    heading.appendChild(seq);
    section.appendChild(heading);

    const table = document.createElement("table");
    table.innerHTML = "<thead><tr><th>node</th><th>container</th><th>status</th><th>health</th></tr></thead>";
    const rows = document.createElement("tbody");
    for (const node of message.nodeStatuses) {
      const row = document.createElement("tr");
      row.dataset.node = node.nodeId;
      row.dataset.status = node.status;
      if (node.health) {
        row.dataset.health = node.health;
      }
      for (const text of [node.nodeId, (node.containerId || "").slice(0, 12), node.status, node.health || ""]) {
        const cell = document.createElement("td");
        cell.textContent = text;
        row.appendChild(cell);
      }
      rows.appendChild(row);
    }
    if (message.nodeStatuses.length === 0) {
      const row = document.createElement("tr");
      const cell = document.createElement("td");
      cell.colSpan = 4;
      cell.className = "muted";
      cell.textContent = "no nodes";
      row.appendChild(cell);
      rows.appendChild(row);
    }
    table.appendChild(rows);
    section.appendChild(table);
    return section;
  }

  async function settings() {
    const query = new URLSearchParams(window.location.search);
    // the hub's token, if it has one, comes in this page's URL
    const token = query.get("token");
    const info = token ? "wamp.json?token=" + encodeURIComponent(token) : "wamp.json";
    const response = await fetch(info, { cache: "no-store" });
    const configured = await response.json();
    return {
      url: query.get("url") || configured.url,
      realm: query.get("realm") || configured.realm,
      prefix: query.get("prefix") || configured.prefix,
    };
  }

  async function main() {
    const { url, realm, prefix } = await settings();
    $("router").textContent = url || "(not configured)";
    $("realm").textContent = realm;
    $("topic").textContent = prefix + ".status";
    $("procedure").textContent = prefix + ".list_deployments";
    if (!url) {
      setState("the hub has no [wamp] url");
      return;
    }

    const connection = new autobahn.Connection({
      url: url,
      realm: realm,
      max_retries: -1, // keep trying: the router may come back
      initial_retry_delay: 1,
      max_retry_delay: 10,
    });

    connection.onopen = async function (session) {
      setState("joined");
      // the hub may have restarted: its numbering may start again
      state.session += 1;
      state.last = {};
      // get_retained: the router hands over the last event at once
      await session.subscribe(
        prefix + ".status",
        function (args) {
          take(args[0]);
        },
        { get_retained: true }
      );
      try {
        const answer = await session.call(prefix + ".list_deployments");
        // a list of pictures (also accepted: the API's {"deployments": [...]})
        takeAll(Array.isArray(answer) ? answer : (answer && answer.deployments) || []);
      } catch (error) {
        // no hub on the router yet: when it joins, it publishes the pictures
        if (state.messages.length === 0) {
          setState("waiting for the hub");
        }
      }
    };

    connection.onclose = function (reason, details) {
      setState(details && details.will_retry ? "reconnecting" : reason);
      return false;
    };

    setState("connecting");
    connection.open();
  }

  main().catch(function (error) {
    setState("error: " + error);
  });
})();
