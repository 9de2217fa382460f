// An Autobahn JS client of statushub's WAMP realm, driven by the tests.
//
//   node client.js URL REALM PREFIX follow [NAME]
//                                             subscribe (to <prefix>.status, or with NAME
//                                             to <prefix>.deployment.NAME), call
//                                             get_status([NAME]) and list_deployments,
//                                             print each event
//   node client.js URL REALM PREFIX publish   try to publish on <prefix>.status and to
//                                             register <prefix>.get_status
//
// Prints one JSON object per line on stdout:
//   {"kind": "joined", "session": N}
//   {"kind": "get_status", "message": {...}}
//   {"kind": "status", "message": {...}}          one per event on the topic followed
//   {"kind": "list_deployments", "messages": [...]}
//   {"kind": "get_status_refused", "error": "...", "deployments": [...]}
//   {"kind": "subscribed"}
//   {"kind": "publish_refused", "error": "wamp.error.not_authorized"}
//   {"kind": "published"}
//   {"kind": "register_refused", "error": "wamp.error.not_authorized"}
//   {"kind": "registered"}
//   {"kind": "left", "reason": "..."}
//   {"kind": "error", "error": "..."}
// It reconnects by itself (as a user's client would) until it is killed.

"use strict";

const autobahn = require("autobahn");

const [url, realm, prefix, mode, deployment] = process.argv.slice(2);
if (!url || !realm || !prefix || !["follow", "publish"].includes(mode)) {
  console.error("usage: node client.js URL REALM PREFIX follow|publish");
  process.exit(2);
}

function say(object) {
  process.stdout.write(JSON.stringify(object) + "\n");
}

function errorText(error) {
  return (error && (error.error || error.message)) || String(error);
}

const connection = new autobahn.Connection({
  url: url,
  realm: realm,
  max_retries: -1,
  initial_retry_delay: 0.2,
  max_retry_delay: 1,
  retry_delay_jitter: 0,
});

connection.onopen = async function (session) {
  say({ kind: "joined", session: session.id });
  try {
    if (mode === "publish") {
      try {
        await session.publish(
          prefix + ".status",
          [{ type: "status_update", deployStatus: "failed", nodeStatuses: [], seq: 999999 }],
          {},
          { acknowledge: true }
        );
        say({ kind: "published" });
      } catch (error) {
        say({ kind: "publish_refused", error: errorText(error) });
      }
      try {
        // with the hub's invocation policy, so that only authorization
        // can stop it from joining the hub's registration
        await session.register(
          prefix + ".get_status",
          function () {
            return { type: "status_update", deployStatus: "failed", nodeStatuses: [] };
          },
          { invoke: "last" }
        );
        say({ kind: "registered" });
      } catch (error) {
        say({ kind: "register_refused", error: errorText(error) });
      }
      return;
    }
    const topic = deployment ? prefix + ".deployment." + deployment : prefix + ".status";
    await session.subscribe(topic, function (args) {
      say({ kind: "status", message: args[0] });
    });
    say({ kind: "subscribed" });
    try {
      const current = await session.call(prefix + ".get_status", deployment ? [deployment] : []);
      say({ kind: "get_status", message: current });
    } catch (error) {
      say({
        kind: "get_status_refused",
        error: errorText(error),
        deployments: (error.kwargs && error.kwargs.deployments) || null,
      });
    }
    const every = await session.call(prefix + ".list_deployments");
    say({ kind: "list_deployments", messages: every });
  } catch (error) {
    say({ kind: "error", error: errorText(error) });
  }
};

connection.onclose = function (reason, details) {
  say({ kind: "left", reason: reason });
  // false: let Autobahn retry
  return false;
};

process.on("SIGTERM", function () {
  process.exit(0);
});

connection.open();
