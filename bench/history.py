"""
The history's own figures (not a test; BENCHMARKS.md):

1. resume: 1,000 feed clients connect at once with C{?since=SEQ&epoch=E},
   each 100 messages behind: the time until every one has had its replay
   (all 100, in order) and the next live message;
2. size: the database file after 100,000 status messages (the default
   C{max_messages}), how long the writer thread took to write them, and
   what handing one over costs the reactor thread.

The hub (statushub.tap's makeService, history on, a temporary database) and
the clients share this one process and reactor, so the resume time is both
sides' work on one core.

    .venv/bin/python bench/history.py [--clients 1000] [--missed 100] [--messages 100000]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol  # noqa: E402
from twisted.internet import reactor  # noqa: E402
from twisted.internet.defer import ensureDeferred  # noqa: E402
from twisted.internet.endpoints import TCP4ClientEndpoint  # noqa: E402
from twisted.internet.task import deferLater  # noqa: E402

from common import raiseFileLimit  # noqa: E402

from statushub.history.store import HistoryStore  # noqa: E402
from statushub.hub.keepalive import KeepAlive  # noqa: E402
from statushub.status import NodeStatus, Picture  # noqa: E402
from statushub.tap import AnnouncingEndpointService, Options, makeService  # noqa: E402


def picture(i: int) -> Picture:
    return Picture(
        deployStatus="deployed", deployment="bench", engine="reachable",
        nodeStatuses=(
            NodeStatus("web", "3f9c2a7be41d", "running" if i % 2 else "paused", "healthy",
                       since=f"2026-11-27T13:00:{i % 60:02d}.000Z"),
            NodeStatus("db", "a81e0c55d290", "running", "healthy",
                       since="2026-11-27T12:00:00.000Z"),
        ),
    )


class Client(WebSocketClientProtocol):
    def onOpen(self) -> None:
        self.factory.opened += 1

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        seq = json.loads(payload)["seq"]
        state = self.factory.seen.setdefault(id(self), [])
        state.append(seq)
        if seq == self.factory.goal:
            self.factory.done += 1


async def resume(clients: int, missed: int, scratch: str) -> dict:
    options = Options()
    options.parseOptions(["--listen", "tcp:0:interface=127.0.0.1"])
    options.config.override("history", "path", os.path.join(scratch, "resume.db"))
    options.config.override("metrics", "enabled", False)
    options.config.override("feed", "max_clients", clients + 10)
    service = makeService(options, reactor)
    hub = next(c for c in service if isinstance(c, KeepAlive))._hub
    board = hub._source
    server = next(c for c in service if isinstance(c, AnnouncingEndpointService))
    service.privilegedStartService()
    service.startService()
    port = (await server._waitingForPort).getHost().port
    for i in range(1, 11):
        board.update(picture(i))
    since = board.current("bench")["seq"]
    for i in range(11, 11 + missed):
        board.update(picture(i))
    last = board.current("bench")["seq"]
    url = f"ws://127.0.0.1:{port}/ws/status?deployment=bench&since={since}&epoch={board.epoch}"
    factory = WebSocketClientFactory(url)
    factory.protocol = Client
    factory.opened = factory.done = 0
    factory.seen = {}
    factory.goal = last + 1
    endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", port)
    started = time.perf_counter()
    for _ in range(clients):
        endpoint.connect(factory)
    while factory.opened < clients:
        await deferLater(reactor, 0.01, lambda: None)
    opened = time.perf_counter()
    board.update(picture(11 + missed))  # the first live message
    while factory.done < clients:
        await deferLater(reactor, 0.01, lambda: None)
    finished = time.perf_counter()
    want = list(range(since + 1, last + 2))
    assert all(seqs == want for seqs in factory.seen.values()), "a replay was not exact"
    await service.stopService()
    return {
        "clients": clients, "missed": missed,
        "all_open_s": round(opened - started, 3),
        "all_live_s": round(finished - started, 3),
    }


async def size(messages: int, scratch: str) -> dict:
    path = os.path.join(scratch, "size.db")
    store = HistoryStore(path, reactor, maxMessages=messages)
    store.open()
    store.start()
    batch = [picture(i).toMessage(i, "2026-11-27T13:00:00.000Z", "0123456789abcdef")
             for i in range(1, messages + 1)]
    started = time.perf_counter()
    for message in batch:
        store.append(message)  # all the reactor thread does per message
    queued = time.perf_counter()
    kept = await store.count()
    written = time.perf_counter()
    await store.stop()  # checkpoints the WAL into the file
    files = [path + suffix for suffix in ("", "-wal", "-shm")]
    total = sum(os.path.getsize(f) for f in files if os.path.exists(f))
    return {
        "messages": kept,
        "bytes": total,
        "bytes_per_message": round(total / kept, 1),
        "reactor_us_per_message": round((queued - started) / messages * 1e6, 2),
        "written_s": round(written - started, 3),
    }


async def main(args: argparse.Namespace) -> None:
    raiseFileLimit()
    with tempfile.TemporaryDirectory(prefix="statushub-history-bench-") as scratch:
        results = {
            "resume": await resume(args.clients, args.missed, scratch),
            "size": await size(args.messages, scratch),
        }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--missed", type=int, default=100)
    parser.add_argument("--messages", type=int, default=100_000)
    arguments = parser.parse_args()

    def run() -> None:
        d = ensureDeferred(main(arguments))
        d.addErrback(lambda f: (f.printTraceback(), None)[1])
        d.addBoth(lambda _: reactor.stop())

    reactor.callWhenRunning(run)
    reactor.run()
