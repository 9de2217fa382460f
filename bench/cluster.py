"""
Several hubs as one (issue 21): what Redis between the hubs costs a message,
and more clients than one process can hold.

    .venv/bin/python bench/cluster.py [--latency-clients 100] [--broadcasts 50]
                                      [--big 10000] [--big-broadcasts 20]

A Redis of its own (tests/fixtures/redis.py: Debian's redis-server on
loopback, nothing kept on disk), hub processes of bench/server_cluster.py
(the real service tree with [cluster] redis: a change of the leader's board
goes through the fenced script, this hub's clients get it once Redis has
confirmed it, the other hub's from the subscription), bench/server_hub.py
(one hub alone, today's), and Node `ws` clients (bench/loadgen.js), every
time CLOCK_MONOTONIC on one machine.

1. Follower's added latency: a leader and a follower with N clients each
   (default 100), and one hub alone with N; per change, the receipt of the
   last client of the follower minus that of the leader (goal p50 < 5 ms);
   and, beside, the leader's own latency against one hub alone (what waiting
   for Redis's confirmation costs).
2. More clients than one process can hold: a leader and a follower with
   `--big` clients each (default 10,000: 20,000 over two processes), and one
   hub alone with `--big`; every client must get every message; the last
   client's latency, from the leader's board change to the last receipt on
   either hub, beside one hub's at `--big`.  The broadcasts alternate
   between the cluster and the hub alone.

No CPU pinning: two hub processes, Redis and the load generators share the
machine's cores as they would.  Figures to stdout and --out (JSON).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, ROOT)

from common import raiseFileLimit  # noqa: E402
from fanout import LoadGenerators, Server, log, machine, percentile  # noqa: E402

from tests.fixtures.redis import RedisServer  # noqa: E402


def startCluster(redis: RedisServer, lease: float) -> tuple[Server, Server]:
    script = f"server_cluster.py --redis {redis.url} --lease {lease}"
    leader = Server("hub-leader", None, script=script)
    deadline = time.monotonic() + 30
    while not leader.counters()["leader"]:
        if time.monotonic() > deadline:
            raise RuntimeError("the first hub did not take the lead")
        time.sleep(0.1)
    follower = Server("hub-follower", None, script=script)
    if follower.counters()["leader"]:
        raise RuntimeError("the second hub leads too")
    return leader, follower


def connect(loadgen: LoadGenerators, server: Server, n: int, concurrency: int) -> None:
    started = time.monotonic()
    loadgen.connect(server.name, server.url, n, concurrency, light=True)
    deadline = time.monotonic() + 60
    while server.stats()["clients"] != n and time.monotonic() < deadline:
        time.sleep(0.1)
    log(f"  {server.name}: {n} clients in {time.monotonic() - started:.1f} s")


def lastReceipts(loadgen: LoadGenerators, wanted: list[tuple[str, int]], n: int,
                 timeout: float) -> dict[str, tuple[int, int]]:
    """
    Per group of C{wanted} (group, seq): the last client's receipt of that
    seq (CLOCK_MONOTONIC ns), and how many of its clients did not get it.
    The load generators' "done" events of several groups come in any order:
    all are taken as they come.
    """
    workers = len(loadgen.workers)
    got: dict[tuple[str, int], list[dict]] = {key: [] for key in wanted}
    deadline = time.monotonic() + timeout
    while any(len(events) < workers for events in got.values()):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        try:
            event = loadgen.done.get(timeout=remaining)
        except Exception:
            break
        key = (event["group"], event["seq"])
        if key in got:
            got[key].append(event)
    result = {}
    for (group, seq), events in got.items():
        if len(events) < workers:  # not every client had it: ask each its count
            events = []
            for index in range(workers):
                loadgen.send(index, cmd="query", group=group, seq=seq)
                events.append(loadgen.answer(index))
        lasts = [int(e["last"]) for e in events if e["last"] is not None]
        result[group] = (max(lasts) if lasts else 0, n - sum(e["count"] for e in events))
    return result


def measure(args: argparse.Namespace, n: int, broadcasts: int, warmup: int) -> dict[str, Any]:
    """
    One run: the cluster (leader, follower) and one hub alone, N clients
    each, broadcasts alternating between the two.
    """
    scratch = Path(tempfile.mkdtemp(prefix="statushub-cluster-bench-"))
    redis = RedisServer(scratch / "redis")
    servers: list[Server] = []
    loadgen = None
    try:
        redis.start()
        leader, follower = startCluster(redis, args.lease)
        servers += [leader, follower]
        alone = Server("hub-alone", None, script="server_hub.py")
        servers.append(alone)
        # far from the idle picture's small seqs (the load generator counts
        # any message by its seq): the leader numbers "bench" up to here first
        seq = aloneSeq = 1000
        leader.broadcast(seq, "bench")
        loadgen = LoadGenerators(args.workers, None)
        loadgen.checkClock()
        for server in servers:
            connect(loadgen, server, n, args.concurrency)
        samples: list[dict[str, Any]] = []
        for i in range(warmup + broadcasts):
            seq += 1
            t0, _, _, _, _ = leader.broadcast(seq, "bench")
            both = lastReceipts(loadgen, [(leader.name, seq), (follower.name, seq)], n,
                                args.timeout)
            (leaderLast, leaderLost), (followerLast, followerLost) = (
                both[leader.name], both[follower.name])
            aloneSeq += 1
            a0, _, _, _, _ = alone.broadcast(aloneSeq, "bench")
            aloneLast, aloneLost = lastReceipts(loadgen, [(alone.name, aloneSeq)], n,
                                                args.timeout)[alone.name]
            if i < warmup:
                continue
            samples.append({
                "leader_ms": (leaderLast - t0) / 1e6,
                "follower_ms": (followerLast - t0) / 1e6,
                "follower_added_ms": (followerLast - leaderLast) / 1e6,
                "cluster_last_ms": (max(leaderLast, followerLast) - t0) / 1e6,
                "alone_ms": (aloneLast - a0) / 1e6,
                "cluster_lost": leaderLost + followerLost,
                "alone_lost": aloneLost,
            })
        return summarise(samples, n)
    finally:
        try:
            if loadgen is not None:
                loadgen.stop()
            for server in servers:
                server.stop()
        finally:
            redis.stop()
            shutil.rmtree(scratch, ignore_errors=True)


def summarise(samples: list[dict[str, Any]], n: int) -> dict[str, Any]:
    def p(key: str, q: float) -> float:
        return round(percentile([s[key] for s in samples], q), 2)

    return {
        "clients_per_hub": n,
        "broadcasts": len(samples),
        "leader_p50_ms": p("leader_ms", 0.5),
        "leader_p99_ms": p("leader_ms", 0.99),
        "follower_p50_ms": p("follower_ms", 0.5),
        "follower_p99_ms": p("follower_ms", 0.99),
        "follower_added_p50_ms": p("follower_added_ms", 0.5),
        "follower_added_p99_ms": p("follower_added_ms", 0.99),
        "cluster_last_p50_ms": p("cluster_last_ms", 0.5),
        "cluster_last_p99_ms": p("cluster_last_ms", 0.99),
        "alone_p50_ms": p("alone_ms", 0.5),
        "alone_p99_ms": p("alone_ms", 0.99),
        "cluster_lost": sum(s["cluster_lost"] for s in samples),
        "alone_lost": sum(s["alone_lost"] for s in samples),
        "samples": samples,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latency-clients", type=int, default=100)
    parser.add_argument("--broadcasts", type=int, default=50)
    parser.add_argument("--big", type=int, default=10_000,
                        help="clients per hub process in part 2 (0: skip it)")
    parser.add_argument("--big-broadcasts", type=int, default=20)
    parser.add_argument("--lease", type=float, default=5.0)
    parser.add_argument("--workers", type=int, default=4, help="load-generator processes")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument("--out", default=os.path.join(HERE, "results", "cluster.json"))
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    limit = raiseFileLimit()
    needed = 3 * max(args.big, args.latency_clients) // args.workers + 256
    if limit < needed:
        log(f"the file limit is {limit}: each load generator needs {needed}")
        return 1

    result: dict[str, Any] = {"machine": machine(), "load_average_at_start": os.getloadavg()}
    log(f"1. follower's added latency, {args.latency_clients} clients per hub")
    result["latency"] = measure(args, args.latency_clients, args.broadcasts, warmup=5)
    if args.big:
        log(f"2. {2 * args.big} clients over two hub processes, beside one hub at {args.big}")
        result["big"] = measure(args, args.big, args.big_broadcasts, warmup=2)
    result["load_average_at_end"] = os.getloadavg()
    result["command"] = " ".join([os.path.basename(sys.executable)] + sys.argv)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as out:
        json.dump(result, out, indent=2)
    for part in ("latency", "big"):
        if part in result:
            print(part, json.dumps({k: v for k, v in result[part].items() if k != "samples"},
                                   indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
