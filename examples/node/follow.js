// Follow statushub's live status through a WAMP router, with Autobahn JS.
//
//   npm install            (or `make node-deps` at the top of the checkout)
//   node follow.js [ROUTER_URL] [REALM] [PREFIX]
//
// Defaults: ws://127.0.0.1:8081/ws, realm statushub, prefix io.statushub —
// the router of etc/crossbar/statushub.json. Prints one line per change.

"use strict";

const autobahn = require("autobahn");

const url = process.argv[2] || "ws://127.0.0.1:8081/ws";
const realm = process.argv[3] || "statushub";
const prefix = process.argv[4] || "io.statushub";

function show(message) {
  const nodes = message.nodeStatuses
    .map((node) => `${node.nodeId}=${node.status}${node.health ? "/" + node.health : ""}`)
    .join(" ");
  console.log(
    `#${message.seq} ${message.timestamp} ${message.deployment || "-"} ${message.deployStatus} ${nodes}`
  );
}

const connection = new autobahn.Connection({
  url: url,
  realm: realm,
  max_retries: -1, // the router may restart: keep trying
  max_retry_delay: 10,
});

connection.onopen = async function (session) {
  console.error(`joined ${realm} at ${url}`);
  // every change: the single positional argument is the feed's JSON message
  await session.subscribe(prefix + ".status", (args) => show(args[0]));
  try {
    // the current picture of every deployment at once, before any change;
    // with none, the idle picture
    const pictures = await session.call(prefix + ".list_deployments");
    if (pictures.length === 0) {
      show(await session.call(prefix + ".get_status"));
    }
    pictures.forEach(show);
  } catch (error) {
    console.error(`no hub on the router yet (${error.error}); waiting for it`);
  }
};

connection.onclose = function (reason, details) {
  console.error(`router connection ${reason}${details.will_retry ? ", retrying" : ""}`);
  return false;
};

connection.open();
