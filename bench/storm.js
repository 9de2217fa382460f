// Reconnecting feed clients for the reconnect-storm benchmark and test
// (bench/storm.py): many WebSocket clients (the `ws` library) in one
// process, each reconnecting by itself when its connection drops, with the
// dashboard's and `statushub watch`'s policy: delays doubling from
// `initial` up to `maximum` seconds, each drawn between half and all of
// that (jitter), back to `initial` once a message arrives.
//
// Commands (stdin, one JSON object a line):
//   {"cmd": "start", "url": U, "count": N, "concurrency": C,
//    "initial": s, "maximum": s}
//       open N clients to U, at most C first handshakes in flight (the
//       first connection is not the storm); answers
//       {"ev": "connected", "open": n} once every client has a message
//   {"cmd": "mark"}
//       from now on, count the clients that have a fresh snapshot: the
//       first message on a connection begun after the mark.  Answers
//       {"ev": "marked", "at": ns}, and later, once all N have one,
//       {"ev": "fresh", "mark": ns, "times": [ns after the mark, sorted],
//        "attempts": n, "errors": {code: n}}
//   {"cmd": "status"}  {"ev": "status", "open": n, "fresh": n, "attempts": n,
//                       "errors": {...}}
//   {"cmd": "close"}   close every client and exit
//
// Times are process.hrtime.bigint(), CLOCK_MONOTONIC on Linux: the same
// clock as Python's time.monotonic_ns().

'use strict';

const readline = require('readline');
const WebSocket = require('ws');

const now = () => process.hrtime.bigint();
const out = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');

const clients = [];
let settings = null;
let open = 0;           // clients with an open connection that has had a message
let generation = 0;     // bumped by each mark
let markAt = null;
let fresh = [];         // ns after the mark, one per client
let attempts = 0;       // connection attempts since the mark
let errors = {};        // why attempts since the mark failed
let stopping = false;

class Client {
  constructor() {
    this.ws = null;
    this.failures = 0;    // failed attempts since the last message
    this.live = false;
    this.freshIn = -1;    // the generation this client last had a fresh snapshot in
    this.onFirst = null;  // called at its first message ever
  }

  connect() {
    const begun = generation;
    if (markAt !== null) attempts++;
    const ws = new WebSocket(settings.url, { perMessageDeflate: false });
    this.ws = ws;
    ws.on('message', () => {
      if (this.live) return;
      this.live = true;
      this.failures = 0;
      open++;
      if (begun === generation && markAt !== null && this.freshIn !== generation) {
        this.freshIn = generation;
        fresh.push(Number(now() - markAt));
        if (fresh.length === clients.length) reportFresh();
      }
      if (this.onFirst) {
        const first = this.onFirst;
        this.onFirst = null;
        first();
      }
    });
    ws.on('error', (err) => {
      if (markAt === null) return;
      const code = (err && (err.code || err.message)) || 'error';
      errors[code] = (errors[code] || 0) + 1;
    });
    ws.on('close', () => {
      if (this.live) open--;
      this.live = false;
      this.ws = null;
      if (!stopping) this.retryLater();
    });
  }

  retryLater() {
    const base = Math.min(settings.maximum, settings.initial * 2 ** this.failures);
    this.failures++;
    const delay = base / 2 + Math.random() * (base / 2);
    setTimeout(() => { if (!stopping) this.connect(); }, delay * 1000);
  }
}

function reportFresh() {
  const times = fresh.slice().sort((a, b) => a - b);
  out({ ev: 'fresh', mark: markAt.toString(), times, attempts, errors });
}

function start(cmd) {
  settings = { url: cmd.url, initial: cmd.initial ?? 0.5, maximum: cmd.maximum ?? 10 };
  for (let i = 0; i < cmd.count; i++) clients.push(new Client());
  // the first connections go a few at a time: they are not what is measured
  let next = 0;
  let done = 0;
  const lane = () => {
    if (next >= clients.length) return;
    const client = clients[next++];
    client.onFirst = () => {
      done++;
      if (done === clients.length) out({ ev: 'connected', open });
      lane();
    };
    client.connect();
  };
  for (let i = 0; i < Math.max(1, cmd.concurrency || 64); i++) lane();
}

function mark() {
  generation++;
  markAt = now();
  fresh = [];
  attempts = 0;
  errors = {};
  out({ ev: 'marked', at: markAt.toString() });
}

function closeAll() {
  stopping = true;
  for (const client of clients) if (client.ws) client.ws.terminate();
  setTimeout(() => process.exit(0), 200);
}

const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (line) => {
  let cmd;
  try { cmd = JSON.parse(line); } catch (e) { out({ ev: 'error', error: 'bad json' }); return; }
  switch (cmd.cmd) {
    case 'start': start(cmd); break;
    case 'mark': mark(); break;
    case 'status':
      out({ ev: 'status', open, fresh: fresh.length, attempts, errors });
      break;
    case 'close': closeAll(); break;
    default: out({ ev: 'error', error: 'unknown command ' + cmd.cmd });
  }
});
// The harness went away: never outlive it.
rl.on('close', () => closeAll());
