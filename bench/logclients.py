"""
Followers of one node's log, for bench/logs.py: N Autobahn clients of
/ws/logs in one process (not the hub's), each checking its lines and timing
them.

    python bench/logclients.py URL --clients 100 --duration 20 [--token T]

The node prints consecutive numbers, one a line.  For every line a client
receives: its latency, from the engine's time on the line (when the engine
read it from the container; CLOCK_REALTIME) to its receipt here
(CLOCK_REALTIME too, the same host).  A client counts the numbers it did
not get (a jump in the sequence) and what C{log_gap} messages said.

Prints one JSON object on stdout when done: latency percentiles over every
line of every client, lines received, lines missed, gaps told, clients
dropped, this process's CPU time.
"""

from __future__ import annotations

import argparse
import calendar
import json
import resource
import sys
import time
from array import array
from typing import Any, Optional

from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol
from twisted.internet import reactor
from twisted.internet.endpoints import TCP4ClientEndpoint
from urllib.parse import urlsplit

_epochs: dict[str, int] = {}


def epochOf(stamp: str) -> float:
    """
    C{2026-11-26T08:00:00.123456789Z} as POSIX seconds, quickly (the second
    is parsed once, the fraction each time).
    """
    whole, _, fraction = stamp.rstrip("Z").partition(".")
    base = _epochs.get(whole)
    if base is None:
        base = _epochs[whole] = calendar.timegm(time.strptime(whole, "%Y-%m-%dT%H:%M:%S"))
    return base + (float("0." + fraction) if fraction else 0.0)


class Tally:
    def __init__(self, skip: float) -> None:
        # lines stamped before this moment are the tail and the warm-up
        self.skip = skip
        self.latencies = array("d")
        self.received = 0
        self.missed = 0
        self.gapsTold = 0
        self.closed: list[tuple[Optional[int], Optional[str]]] = []
        self.opened = 0


class Follower(WebSocketClientProtocol):
    last: Optional[int] = None

    def onOpen(self) -> None:
        self.factory.tally.opened += 1

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        now = time.time()
        tally: Tally = self.factory.tally
        message = json.loads(payload)
        kind = message.get("type")
        if kind == "log_gap":
            tally.gapsTold += message["dropped"]
            return
        if kind != "log":
            return
        for line in message["lines"]:
            number = int(line["text"])
            if self.last is not None and number != self.last + 1:
                tally.missed += max(number - self.last - 1, 0)
            self.last = number
            stamp = epochOf(line["time"])
            if stamp >= tally.skip:
                tally.received += 1
                tally.latencies.append((now - stamp) * 1000.0)

    def onClose(self, wasClean: bool, code: Optional[int], reason: Optional[str]) -> None:
        self.factory.tally.closed.append((code, reason))


def percentile(values: Any, q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--token", default="")
    args = parser.parse_args()

    tally = Tally(skip=time.time() + args.warmup)
    headers = {"Authorization": f"Bearer {args.token}"} if args.token else {}
    parts = urlsplit(args.url)
    for _ in range(args.clients):
        factory = WebSocketClientFactory(args.url, headers=headers)
        factory.protocol = Follower
        factory.tally = tally
        TCP4ClientEndpoint(reactor, parts.hostname, parts.port).connect(factory)
    started = resource.getrusage(resource.RUSAGE_SELF)

    def finish() -> None:
        used = resource.getrusage(resource.RUSAGE_SELF)
        latencies = tally.latencies
        result = {
            "clients": args.clients,
            "opened": tally.opened,
            "dropped": len([c for c in tally.closed if c[0] not in (1000, None)]),
            "closes": sorted({f"{c[0]} {c[1]}" for c in tally.closed}),
            "duration_s": args.duration,
            "lines_received": tally.received,
            "lines_missed": tally.missed,
            "gaps_told": tally.gapsTold,
            "latency_p50_ms": percentile(latencies, 0.50),
            "latency_p99_ms": percentile(latencies, 0.99),
            "latency_max_ms": max(latencies) if latencies else float("nan"),
            "client_cpu_s": (used.ru_utime + used.ru_stime)
            - (started.ru_utime + started.ru_stime),
        }
        print(json.dumps(result), flush=True)
        reactor.stop()

    reactor.callLater(args.warmup + args.duration, finish)
    reactor.run()


if __name__ == "__main__":
    sys.exit(main())
