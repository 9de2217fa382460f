// The statushub status through a WAMP router, with Autobahn JS.
//
// The whole client is: join the realm, subscribe to <prefix>.status (each
// event's single positional argument is the feed's JSON message), and call
// <prefix>.get_status once for the current picture.
"use strict";

(function () {
  const state = {
    wamp: "starting",
    messages: [], // every message shown, oldest first (the tests read this)
    lastSeq: null,
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

  function show(message) {
    // a late get_status answer must not undo a newer event
    if (state.lastSeq !== null && message.seq < state.lastSeq) {
      return;
    }
    state.lastSeq = message.seq;
    state.messages.push(message);
    if (state.wamp === "waiting for the hub") {
      setState("joined"); // the hub joined and published
    }
    $("deployment").textContent = message.deployment || "none";
    $("deploy-status").textContent = message.deployStatus;
    $("deploy-status").dataset.state = message.deployStatus;
    $("seq").textContent = String(message.seq);
    $("timestamp").textContent = message.timestamp;
    const rows = $("nodes");
    rows.replaceChildren();
    for (const node of message.nodeStatuses) {
      const row = document.createElement("tr");
      row.dataset.node = node.nodeId;
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
  }

  async function settings() {
    const response = await fetch("wamp.json", { cache: "no-store" });
    const configured = await response.json();
    const query = new URLSearchParams(window.location.search);
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
    $("procedure").textContent = prefix + ".get_status";
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
      state.lastSeq = null; // the hub may have restarted: its seq starts again
      // get_retained: the router hands over the last event at once
      await session.subscribe(
        prefix + ".status",
        function (args) {
          show(args[0]);
        },
        { get_retained: true }
      );
      try {
        show(await session.call(prefix + ".get_status"));
      } catch (error) {
        // no hub on the router yet: when it joins, it publishes the picture
        if (state.lastSeq === null) {
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
