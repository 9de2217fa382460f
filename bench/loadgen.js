// Load generator for the fan-out benchmark: one process holding many
// WebSocket clients (the `ws` library), driven by bench/fanout.py through
// JSON lines on stdin/stdout.
//
// Commands (stdin, one JSON object a line):
//   {"cmd": "connect", "group": G, "url": U, "count": N, "concurrency": C,
//    "light": bool}
//       open N clients to U, at most C handshakes in flight, and read them
//       with the light frame reader (below) or with ws's own; answers
//       {"ev": "connected", "group": G, "open": n, "failed": f, "error": e}
//   {"cmd": "query", "group": G, "seq": S}
//       {"ev": "seq", "group": G, "seq": S, "count": c, "open": n,
//        "first": ns, "last": ns}   (first/last receipt, CLOCK_MONOTONIC ns)
//   {"cmd": "forget", "group": G, "seq": S}     drop the record of S
//   {"cmd": "tap", "group": G}
//       from now on, {"ev": "msg", "group": G, "seq": S, "body": text} for
//       the first receipt of each message of G
//   {"cmd": "clock"}    {"ev": "clock", "now": ns}
//   {"cmd": "cpu"}      {"ev": "cpu", "user": us, "system": us}
//   {"cmd": "traffic", "group": G}
//       {"ev": "traffic", "group": G, "read": bytes, "written": bytes,
//        "messages": n, "pings": n, "open": n}
//   {"cmd": "close"}    close every client and exit
// Unprompted:
//   {"ev": "done", "group": G, "seq": S, "count": c, "first": ns, "last": ns}
//       when every open client of G has had the message numbered S.
//
// Clock: process.hrtime.bigint() is libuv's uv_hrtime(), which reads
// CLOCK_MONOTONIC on Linux; Python's time.monotonic_ns() reads the same
// clock, so times taken in the server, the harness and here compare directly.
//
// Cost per message is kept small on purpose (no JSON parse: the number after
// "seq": is read straight out of the frame's bytes, UTF-8 validation off), so
// that the generator is not what is measured.

'use strict';

const readline = require('readline');
const WebSocket = require('ws');

const now = () => process.hrtime.bigint();
const out = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');

const SEQ_KEY = Buffer.from('"seq":');
const groups = new Map();

function group(name) {
  let g = groups.get(name);
  if (g === undefined) {
    g = { name, clients: new Set(), open: 0, seqs: new Map(), messages: 0,
          pings: 0, closedEarly: 0, read: 0, written: 0 };
    groups.set(name, g);
  }
  return g;
}

function readSeq(data) {
  const at = data.indexOf(SEQ_KEY);
  if (at < 0) return -1;
  let i = at + SEQ_KEY.length;
  while (data[i] === 0x20) i++;
  let seq = 0;
  let digits = 0;
  for (; i < data.length; i++) {
    const c = data[i];
    if (c < 0x30 || c > 0x39) break;
    seq = seq * 10 + (c - 0x30);
    digits++;
  }
  return digits ? seq : -1;
}

function onMessage(g, data, t = now()) {
  g.messages++;
  const seq = readSeq(data);
  if (seq < 0) return;
  let rec = g.seqs.get(seq);
  if (rec === undefined) {
    rec = { count: 0, first: t, last: t, reported: false };
    g.seqs.set(seq, rec);
    if (g.tap) out({ ev: 'msg', group: g.name, seq, body: data.toString() });
  }
  rec.count++;
  rec.last = t;
  if (rec.count === g.open && !rec.reported) {
    rec.reported = true;
    out({ ev: 'done', group: g.name, seq, count: rec.count,
          first: rec.first.toString(), last: rec.last.toString() });
  }
}

// The light reader: once the handshake is done, the socket's bytes bypass
// ws's Receiver (a Writable stream, several callbacks a frame) and go through
// this loop instead.  Server frames are unmasked; pings are answered with a
// pong (masked, as a client must), a close frame with a close.
const EMPTY_MASK = Buffer.alloc(4);

function controlFrame(opcode, payload) {
  const header = Buffer.from([0x80 | opcode, 0x80 | payload.length]);
  return Buffer.concat([header, EMPTY_MASK, payload]);
}

function readFrames(g, client, chunk) {
  const t = now();
  let buf = client.pending === null ? chunk : Buffer.concat([client.pending, chunk]);
  let off = 0;
  for (;;) {
    const left = buf.length - off;
    if (left < 2) break;
    const b0 = buf[off];
    let len = buf[off + 1] & 0x7f;
    let header = 2;
    if (len === 126) {
      if (left < 4) break;
      len = buf.readUInt16BE(off + 2);
      header = 4;
    } else if (len === 127) {
      if (left < 10) break;
      len = Number(buf.readBigUInt64BE(off + 2));
      header = 10;
    }
    if (left < header + len) break;
    const opcode = b0 & 0x0f;
    const payload = buf.subarray(off + header, off + header + len);
    off += header + len;
    if (opcode === 0x1 || opcode === 0x2) {
      onMessage(g, payload, t);
    } else if (opcode === 0x9) {
      g.pings++;
      client.sock.write(controlFrame(0xA, payload));
    } else if (opcode === 0x8) {
      client.sock.end(controlFrame(0x8, payload.subarray(0, 2)));
    }
  }
  client.pending = off < buf.length ? buf.subarray(off) : null;
}

function goLight(g, ws) {
  const sock = ws._socket;
  sock.removeAllListeners('data');
  const client = { sock, pending: null };
  sock.on('data', (chunk) => readFrames(g, client, chunk));
}

function openOne(g, url, light) {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, {
      perMessageDeflate: false, // the hub does not compress: nor may the references
      skipUTF8Validation: true,
      handshakeTimeout: 30000,
    });
    let opened = false;
    ws.on('open', () => {
      if (light) goLight(g, ws);
      opened = true;
      g.clients.add(ws);
      g.open++;
      resolve(null);
    });
    ws.on('message', (data) => onMessage(g, data));
    ws.on('ping', () => { g.pings++; });
    ws.on('error', (err) => {
      if (!opened) resolve(String(err && err.message || err));
    });
    ws.on('close', () => {
      if (opened) {
        const s = ws._socket;
        if (s) { g.read += s.bytesRead; g.written += s.bytesWritten; }
        g.clients.delete(ws);
        g.open--;
        g.closedEarly++;
      } else {
        resolve('closed before open');
      }
    });
  });
}

async function connect({ group: name, url, count, concurrency, light }) {
  const g = group(name);
  let next = 0;
  let failed = 0;
  let error = null;
  async function lane() {
    while (next < count) {
      next++;
      const err = await openOne(g, url, light);
      if (err !== null) { failed++; error = err; }
    }
  }
  const lanes = [];
  for (let i = 0; i < Math.max(1, concurrency || 16); i++) lanes.push(lane());
  await Promise.all(lanes);
  g.closedEarly = 0;
  out({ ev: 'connected', group: name, open: g.open, failed, error });
}

function traffic(name) {
  const g = group(name);
  let read = g.read;
  let written = g.written;
  for (const ws of g.clients) {
    const s = ws._socket;
    if (s) { read += s.bytesRead; written += s.bytesWritten; }
  }
  return { ev: 'traffic', group: name, read, written, messages: g.messages,
           pings: g.pings, open: g.open, closed: g.closedEarly };
}

function closeAll() {
  for (const g of groups.values()) {
    for (const ws of g.clients) ws.terminate();
  }
  // let the RSTs/FINs go out, then leave
  setTimeout(() => process.exit(0), 200);
}

const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (line) => {
  let cmd;
  try { cmd = JSON.parse(line); } catch (e) { out({ ev: 'error', error: 'bad json' }); return; }
  switch (cmd.cmd) {
    case 'connect':
      connect(cmd);
      break;
    case 'query': {
      const g = group(cmd.group);
      const rec = g.seqs.get(cmd.seq);
      out({ ev: 'seq', group: cmd.group, seq: cmd.seq, open: g.open,
            count: rec ? rec.count : 0,
            first: rec ? rec.first.toString() : null,
            last: rec ? rec.last.toString() : null });
      break;
    }
    case 'tap':
      group(cmd.group).tap = true;
      break;
    case 'forget':
      group(cmd.group).seqs.delete(cmd.seq);
      break;
    case 'clock':
      out({ ev: 'clock', now: now().toString() });
      break;
    case 'cpu': {
      const u = process.cpuUsage();
      out({ ev: 'cpu', user: u.user, system: u.system });
      break;
    }
    case 'traffic':
      out(traffic(cmd.group));
      break;
    case 'close':
      closeAll();
      break;
    default:
      out({ ev: 'error', error: 'unknown command ' + cmd.cmd });
  }
});
// The harness went away: never outlive it.
rl.on('close', () => closeAll());
