// WAMP load generator for bench/wamp/fanout.py: one process holding many
// Autobahn JS sessions subscribed to <prefix>.status through a router.
//
// Commands (stdin, one JSON object a line):
//   {"cmd": "connect", "url": U, "realm": R, "prefix": P, "count": N, "concurrency": C}
//       open N sessions, each subscribed; answers
//       {"ev": "connected", "open": n, "failed": f, "error": e}
//   {"cmd": "clock"}   {"ev": "clock", "now": ns}
//   {"cmd": "cpu"}     {"ev": "cpu", "user": us, "system": us}
//   {"cmd": "close"}   close every session and exit
// Unprompted, once every open session has had the event numbered S:
//   {"ev": "done", "group": "wamp", "seq": S, "count": c, "receipts": [ns, ...]}
//
// Receipt times are process.hrtime.bigint() (CLOCK_MONOTONIC, the clock the
// server's t0 is read from), as decimal strings.

'use strict';

const readline = require('readline');
const autobahn = require('autobahn');

const now = () => process.hrtime.bigint();
const out = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');

const connections = [];
let open = 0;
const receipts = new Map(); // seq -> [bigint]

function received(message) {
  const at = now();
  const seq = message.seq;
  let list = receipts.get(seq);
  if (list === undefined) {
    list = [];
    receipts.set(seq, list);
  }
  list.push(at);
  if (list.length === open) {
    out({ ev: 'done', group: 'wamp', seq: seq, count: list.length,
          receipts: list.map(String) });
    receipts.delete(seq);
  }
}

function openOne(url, realm, prefix) {
  return new Promise((resolve) => {
    const connection = new autobahn.Connection({ url: url, realm: realm, max_retries: 0 });
    let settled = false;
    connection.onopen = (session) => {
      session.subscribe(prefix + '.status', (args) => received(args[0])).then(
        () => { settled = true; open += 1; resolve(null); },
        (error) => { settled = true; resolve(String(error.error || error)); }
      );
    };
    connection.onclose = (reason) => {
      if (!settled) { settled = true; resolve('closed: ' + reason); }
      else if (open > 0 && reason !== 'closed') { open -= 1; }
      return true; // no retry: a lost session shows in the counts
    };
    connections.push(connection);
    connection.open();
  });
}

async function connect(cmd) {
  let failed = 0;
  let error = null;
  let next = 0;
  async function worker() {
    while (next < cmd.count) {
      next += 1;
      const problem = await openOne(cmd.url, cmd.realm, cmd.prefix);
      if (problem !== null) { failed += 1; error = problem; }
    }
  }
  const workers = [];
  for (let i = 0; i < Math.min(cmd.concurrency, cmd.count); i++) workers.push(worker());
  await Promise.all(workers);
  out({ ev: 'connected', open: open, failed: failed, error: error });
}

const lines = readline.createInterface({ input: process.stdin });
lines.on('line', (line) => {
  const cmd = JSON.parse(line);
  if (cmd.cmd === 'connect') {
    connect(cmd);
  } else if (cmd.cmd === 'clock') {
    out({ ev: 'clock', now: String(now()) });
  } else if (cmd.cmd === 'cpu') {
    const usage = process.cpuUsage();
    out({ ev: 'cpu', user: usage.user, system: usage.system });
  } else if (cmd.cmd === 'close') {
    for (const connection of connections) {
      try { connection.close(); } catch (e) { /* already closed */ }
    }
    setTimeout(() => process.exit(0), 200);
  } else {
    out({ ev: 'error', error: 'unknown command ' + cmd.cmd });
  }
});
lines.on('close', () => process.exit(0));
