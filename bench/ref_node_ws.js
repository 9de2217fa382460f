// Reference 3 (optional in the issue: "below Node's ws if you add it"): a
// Node server on the `ws` library, broadcasting as its README shows it:
// wss.clients.forEach(client => client.readyState === OPEN && client.send(data)).
// Default settings (no permessage-deflate on the server side).  Same control
// channel as the Python servers (bench/common.py); times are
// process.hrtime.bigint(), i.e. CLOCK_MONOTONIC, like theirs.
//
//     node bench/ref_node_ws.js     (driven by bench/fanout.py)

'use strict';

const net = require('net');
const { performance, PerformanceObserver } = require('perf_hooks');
const WebSocket = require('ws');

function statusMessage(seq) {
  // the same object as bench/common.py's statusMessage, in the same key order
  return {
    type: 'status_update',
    deployStatus: 'deployed',
    nodeStatuses: [
      { nodeId: 'web', containerId: '3f9c2a7be41d', status: 'running', health: 'healthy' },
      { nodeId: 'db', containerId: 'a81e0c55d290', status: 'running', health: 'healthy' },
    ],
    deployment: 'bench',
    engine: 'reachable',
    error: null,
    seq,
    timestamp: '2026-11-26T08:00:00.123Z',
  };
}

const gc = { count: 0, total: 0, longest: 0 };
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    const ns = Math.round(entry.duration * 1e6);
    gc.count++;
    gc.total += ns;
    gc.longest = Math.max(gc.longest, ns);
  }
}).observe({ entryTypes: ['gc'] });

const wss = new WebSocket.Server({ host: '127.0.0.1', port: 0 });

function broadcast(message) {
  const data = JSON.stringify(message);
  wss.clients.forEach((client) => {
    if (client.readyState === WebSocket.OPEN) {
      client.send(data);
    }
  });
}

function handle(line) {
  const words = line.trim().split(/\s+/);
  switch (words[0]) {
    case 'BROADCAST': {
      const message = statusMessage(Number(words[1]));
      const t0 = process.hrtime.bigint();
      broadcast(message);
      const t1 = process.hrtime.bigint();
      return `OK ${t0} ${t1} ${wss.clients.size}`;
    }
    case 'STATS': {
      const cpu = process.cpuUsage();
      const answer = `STATS ${(cpu.user + cpu.system) * 1000} ${process.memoryUsage.rss()} ` +
        `${wss.clients.size} ${gc.count} ${gc.total} ${gc.longest}`;
      gc.count = gc.total = gc.longest = 0;
      return answer;
    }
    case 'COUNTERS':
      return 'COUNTERS {}';
    case 'QUIT':
      return null;
    default:
      return `ERROR unknown command ${words[0]}`;
  }
}

wss.on('listening', () => {
  const control = net.createServer((socket) => {
    let pending = '';
    socket.on('data', (chunk) => {
      pending += chunk.toString();
      let newline;
      while ((newline = pending.indexOf('\n')) >= 0) {
        const answer = handle(pending.slice(0, newline));
        pending = pending.slice(newline + 1);
        if (answer === null) {
          socket.end();
          process.exit(0);
        }
        socket.write(answer + '\n');
      }
    });
  });
  control.listen(0, '127.0.0.1', () => {
    console.log(`READY ${wss.address().port} ${control.address().port}`);
  });
});
// the harness went away: never outlive it
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
