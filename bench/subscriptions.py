"""
The subscription benchmark (issue 10): many deployments, each with its own
watchers on /ws/status?deployment=NAME, and one change in one of them.

    .venv/bin/python bench/subscriptions.py [--deployments 100] [--watchers 100]

Per repetition, one hub (bench/server_hub.py, the real service tree) and the
Node load generators of bench/fanout.py:

  alone     only the changed deployment's watchers are connected;
  among     the same watchers, plus every other deployment's (deployments x
            watchers clients in all).

Each phase broadcasts the same change to that one deployment.  Figures: how
long until its last watcher has it (server t0 to last receipt, one
CLOCK_MONOTONIC, as in fanout.py), and the hub's CPU time for the change
(process time across the broadcast).  With clients indexed by subscription
the two phases should cost about the same: the other deployments' clients
are never touched.  The other deployments' watchers must get nothing; the
harness checks.

Results: a table on stdout and bench/results/subscriptions.json (--out).
Benchmarks are not tests: nothing here fails on a time.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from typing import Any, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from common import raiseFileLimit  # noqa: E402
from fanout import (  # noqa: E402
    ROOT,
    LoadGenerators,
    Server,
    _interrupted,
    log,
    machine,
    parseCpus,
    percentile,
)


def name(index: int) -> str:
    return f"d{index:03d}"


def measure(
    server: Server, loadgen: LoadGenerators, seq: int, deployment: str, watchers: int,
    settle: float, timeout: float,
) -> dict[str, Any]:
    before = server.stats()
    t0, t1, clients, sent, answered = server.broadcast(seq, deployment)
    if not sent <= t0 <= t1 <= answered:
        raise RuntimeError("the hub's clock is not the harness's CLOCK_MONOTONIC")
    events, complete = loadgen.waitDone(deployment, seq, timeout)
    time.sleep(settle)  # let the hub finish what follows the last send
    after = server.stats()
    received = sum(e["count"] for e in events)
    lasts = [int(e["last"]) for e in events if e["last"] is not None]
    return {
        "seq": seq,
        "clients": clients,
        "complete": complete,
        "lost": watchers - received,
        "latency_ms": (max(lasts) - t0) / 1e6 if lasts else float("nan"),
        "call_ms": (t1 - t0) / 1e6,
        "cpu_us": (after["cpu"] - before["cpu"]) / 1e3,
    }


def phase(
    args: argparse.Namespace, server: Server, loadgen: LoadGenerators, seq: int
) -> tuple[list[dict], int]:
    for _ in range(args.warmup):
        seq += 1
        measure(server, loadgen, seq, name(0), args.watchers, args.settle, args.timeout)
    samples = []
    for _ in range(args.broadcasts):
        seq += 1
        samples.append(
            measure(server, loadgen, seq, name(0), args.watchers, args.settle, args.timeout)
        )
    return samples, seq


def summary(samples: list[dict]) -> dict[str, Any]:
    return {
        "clients": samples[0]["clients"],
        "latency_p50_ms": percentile([s["latency_ms"] for s in samples], 0.5),
        "latency_p99_ms": percentile([s["latency_ms"] for s in samples], 0.99),
        "call_p50_ms": percentile([s["call_ms"] for s in samples], 0.5),
        "cpu_us_p50": percentile([s["cpu_us"] for s in samples], 0.5),
        "lost": sum(s["lost"] for s in samples),
    }


def once(args: argparse.Namespace) -> dict[str, Any]:
    server: Optional[Server] = None
    loadgen: Optional[LoadGenerators] = None
    try:
        server = Server("hub", args.server_cpus)
        loadgen = LoadGenerators(args.workers, args.loadgen_cpus)
        loadgen.checkClock()
        url = f"{server.url}?deployment="
        loadgen.connect(name(0), url + name(0), args.watchers, args.concurrency, True)
        alone, seq = phase(args, server, loadgen, 1000)
        started = time.monotonic()
        for index in range(1, args.deployments):
            loadgen.connect(name(index), url + name(index), args.watchers,
                            args.concurrency, True)
        total = args.deployments * args.watchers
        log(f"  {total} clients connected in {time.monotonic() - started:.1f} s")
        among, seq = phase(args, server, loadgen, seq)
        # nobody else heard of it: another deployment's watchers got no message
        strays = 0
        for index in range(1, args.deployments, max(args.deployments // 10, 1)):
            for worker in range(len(loadgen.workers)):
                loadgen.send(worker, cmd="query", group=name(index), seq=seq)
                strays += loadgen.answer(worker)["count"] or 0
        return {"alone": summary(alone), "among": summary(among), "strays": strays,
                "samples": {"alone": alone, "among": among}}
    finally:
        if loadgen is not None:
            loadgen.stop()
        if server is not None:
            server.stop()


def main() -> int:
    env = os.environ.get
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deployments", type=int, default=100)
    parser.add_argument("--watchers", type=int, default=100, help="clients per deployment")
    parser.add_argument("--repeat", type=int, default=int(env("BENCH_REPEAT", "3")))
    parser.add_argument("--broadcasts", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--workers", type=int, default=int(env("BENCH_WORKERS", "4")))
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--settle", type=float, default=0.05)
    parser.add_argument("--timeout", type=float, default=15.0)
    parser.add_argument("--server-cpus", default=env("BENCH_SERVER_CPUS", "0"))
    parser.add_argument("--loadgen-cpus", default=env("BENCH_LOADGEN_CPUS", "1"))
    parser.add_argument("--out", default=env("BENCH_SUBSCRIPTIONS_OUT", os.path.join(
        HERE, "results", "subscriptions.json")))
    args = parser.parse_args()
    if env("BENCH_SUBSCRIPTIONS", "1") == "0":
        log("BENCH_SUBSCRIPTIONS=0: skipping the subscription benchmark")
        return 0
    args.server_cpus = parseCpus(args.server_cpus)
    args.loadgen_cpus = parseCpus(args.loadgen_cpus)
    if (args.server_cpus or args.loadgen_cpus) and os.cpu_count() < 2:
        args.server_cpus = args.loadgen_cpus = None
    signal.signal(signal.SIGTERM, _interrupted)
    raiseFileLimit()

    log(f"subscriptions: {args.deployments} deployments x {args.watchers} watchers, "
        f"{args.repeat} repetitions, {args.broadcasts} changes to {name(0)} per phase")
    started = time.time()
    loadAtStart = os.getloadavg()
    runs = []
    for repeat in range(args.repeat):
        log(f"run {repeat + 1}/{args.repeat}")
        run = once(args)
        runs.append(run)
        log(f"  alone: p50 {run['alone']['latency_p50_ms']:.2f} ms, cpu "
            f"{run['alone']['cpu_us_p50']:.0f} µs; among {run['among']['clients']}: p50 "
            f"{run['among']['latency_p50_ms']:.2f} ms, cpu {run['among']['cpu_us_p50']:.0f} µs;"
            f" strays {run['strays']}")

    def median(phaseName: str, key: str) -> float:
        return percentile([r[phaseName][key] for r in runs], 0.5)

    ratio = percentile([r["among"]["cpu_us_p50"] / r["alone"]["cpu_us_p50"] for r in runs], 0.5)
    rows = [
        "| clients connected | watchers of the change | last-watcher p50 ms | p99 ms | "
        "hub CPU µs per change | lost |",
        "|---|---|---|---|---|---|",
    ]
    for phaseName in ("alone", "among"):
        rows.append(
            f"| {runs[0][phaseName]['clients']:,} | {args.watchers} | "
            f"{median(phaseName, 'latency_p50_ms'):.2f} | {median(phaseName, 'latency_p99_ms'):.2f} | "
            f"{median(phaseName, 'cpu_us_p50'):.0f} | "
            f"{sum(r[phaseName]['lost'] for r in runs)} |"
        )
    report = "\n".join(rows)
    verdicts = [
        f"{'MET' if median('among', 'latency_p50_ms') < 5 else 'NOT MET'}: its watchers "
        f"get the change at p50 < 5 ms among {runs[0]['among']['clients']:,} clients "
        f"({median('among', 'latency_p50_ms'):.2f} ms)",
        f"{'MET' if ratio <= 2 else 'NOT MET'}: hub CPU for the change within 2x of the same "
        f"change with only its watchers connected ({ratio:.2f}x)",
        f"other deployments' watchers that got it: {sum(r['strays'] for r in runs)}",
    ]
    print(report)
    print()
    for verdict in verdicts:
        print(verdict)

    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    results = {
        "command": " ".join([os.path.basename(sys.executable)] + sys.argv),
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "seconds": round(time.time() - started),
        "machine": {**machine(), "load_average_at_start": loadAtStart},
        "settings": {k: (sorted(v) if isinstance(v, set) else v) for k, v in vars(args).items()},
        "runs": runs,
        "cpu_ratio_among_over_alone": ratio,
        "goals": verdicts,
        "table": report,
    }
    with open(args.out + ".tmp", "w") as out:
        json.dump(results, out, indent=1)
    os.replace(args.out + ".tmp", args.out)
    log(f"results in {os.path.relpath(args.out, ROOT)} ({time.time() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
