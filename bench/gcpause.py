"""
Garbage-collection pauses and memory per connection (issue 22): this
checkout's hub beside another revision's and beside Node's C{ws}, in one run.

    .venv/bin/python bench/gcpause.py [REV] [--clients 10000] [--repeat 3]

(C{make bench} runs it too; C{BENCH_GC=0} skips it.)

The measurement the issue made from outside: each hub is the real service
tree (C{statushub.tap.makeService} through bench/server_hub.py, metrics and
history on), N clients connect, then 20 broadcasts go out 1 s apart.
C{hub} is this checkout; C{hub-base} is revision REV (default C{main}),
extracted with C{git archive} and run by this checkout's bench/server_hub.py
with REV's C{statushub} package and config (C{PYTHONPATH}), so that both
answer the same control commands; C{node-ws} is bench/ref_node_ws.js.  All
three hold their N clients at once (Node load generators, bench/loadgen.js);
each second, each server broadcasts once (their order rotating), and the
harness waits until every client of that server has the message.

Per server, medians over the repetitions (each a fresh set of processes):

- the longest GC pause while its clients connect and while it broadcasts
  to all N (not while the other servers' clients connect: their handshakes
  take the same core and stretch its pauses); the most CPU time one
  collection took from its first client to the end (the collecting
  thread's: the pause without the time the process waited for a core,
  what it would be on a quiet machine), and the full (generation 2)
  collections then; the same two for the broadcasts alone;
- the broadcast's last-client latency p50 / p99 over the 20 broadcasts;
- memory per connection: peak RSS (VmHWM) minus RSS before any client,
  divided by N; and RSS at the end, likewise;
- for the hubs, the objects a full collection would walk at the end and
  those frozen out of its sight (C{gc.get_objects()}, C{gc.get_freeze_count()}),
  and then the CPU time of a thaw as the freezer makes one: unfreeze, one
  full collection over everything, freeze again.

Pauses come from C{gc.callbacks} in the hub (bench/common.py) and from
C{PerformanceObserver('gc')} in Node (whose collector is mostly concurrent).
The machine's load average is recorded with every repetition: the pauses
and latencies stretch when other processes take the cores; object counts
and bytes do not.  Results: a table on stdout and bench/results/gcpause.json
(--out).  Benchmarks are not tests: nothing here fails on a time.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from typing import Any, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import fanout  # noqa: E402
from baseline import extract  # noqa: E402
from fanout import LoadGenerators, Server, log, percentile  # noqa: E402


def procStatus(pid: int) -> dict[str, int]:
    """
    VmRSS and VmHWM (peak RSS) of a process, in bytes.
    """
    figures = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                figures[key] = int(value.split()[0]) * 1024
    return figures


def startServer(name: str, base: str, cpus: Optional[set[int]]) -> Server:
    if name == "hub-base":
        env = dict(os.environ, PYTHONPATH=base)
        extra = ("--config", os.path.join(base, "etc", "statushub.toml"))
        return Server(name, cpus, extra, script="server_hub.py", env=env)
    return Server(name, cpus)


def gcPhase(server: Server) -> dict[str, Any]:
    """
    The GC figures of one phase (since the previous call), in ms.
    """
    if server.name == "node-ws":
        stats = server.stats()
        return {"collections": stats["gcCount"], "full": None,
                "longest_ms": stats["gcMax"] / 1e6, "generation": None,
                "longest_cpu_ms": None, "total_ms": stats["gcTotal"] / 1e6}
    _, count, full, longest, generation, cpu, total = server.command("GC")
    return {"collections": int(count), "full": int(full), "longest_ms": int(longest) / 1e6,
            "generation": int(generation), "longest_cpu_ms": int(cpu) / 1e6,
            "total_ms": int(total) / 1e6}


def once(args: argparse.Namespace, base: str, repeat: int) -> dict[str, Any]:
    """
    One repetition: every server up with N clients, then the broadcasts.
    """
    n = args.clients
    servers: dict[str, Server] = {}
    loadgen: Optional[LoadGenerators] = None
    result: dict[str, Any] = {"load_start": os.getloadavg()}
    try:
        first = repeat % len(args.servers)
        for name in args.servers[first:] + args.servers[:first]:
            servers[name] = startServer(name, base, args.server_cpus)
        # settled: start-up's garbage collected, the hubs' start-up freeze done
        time.sleep(1)
        before = {name: procStatus(s.process.pid)["VmRSS"] for name, s in servers.items()}
        for server in servers.values():
            gcPhase(server)
            if server.name == "node-ws":
                server.stats()
        loadgen = LoadGenerators(min(args.workers, n), args.loadgen_cpus)
        loadgen.checkClock()
        figures: dict[str, dict[str, Any]] = {name: {} for name in servers}
        for name, server in servers.items():
            started = time.monotonic()
            loadgen.connect(name, server.url, n, args.concurrency, True)
            deadline = time.monotonic() + 30
            while server.stats()["clients"] != n and time.monotonic() < deadline:
                time.sleep(0.1)
            figures[name]["connect_s"] = time.monotonic() - started
            # what its clients' connecting cost; from here on it serves N
            # clients (while the next server's connect, then the broadcasts)
            figures[name]["connecting"] = gcPhase(server)
            log(f"  {name}: {n} clients connected in {figures[name]['connect_s']:.1f} s")
        for name, server in servers.items():
            # while the others' clients connected, on the same core
            figures[name]["waiting"] = gcPhase(server)
        result["load_serving_start"] = os.getloadavg()
        order = list(servers)
        samples: dict[str, list[dict[str, float]]] = {name: [] for name in servers}
        seq = 1000
        rounds = args.warmup + args.broadcasts
        for i in range(rounds):
            roundStart = time.monotonic()
            for name in order[i % len(order):] + order[: i % len(order)]:
                seq += 1
                t0, t1, clients, sent, answered = servers[name].broadcast(seq)
                if not sent <= t0 <= t1 <= answered:
                    raise RuntimeError(f"{name}'s clock is not the harness's CLOCK_MONOTONIC")
                events, complete = loadgen.waitDone(name, seq, args.timeout)
                lasts = [int(e["last"]) for e in events if e["last"] is not None]
                if i >= args.warmup:
                    samples[name].append({
                        "latency_ms": (max(lasts) - t0) / 1e6 if lasts else float("nan"),
                        "call_ms": (t1 - t0) / 1e6,
                        "lost": n - sum(e["count"] for e in events),
                    })
            time.sleep(max(0.0, args.interval - (time.monotonic() - roundStart)))
        result["load_serving_end"] = os.getloadavg()
        for name, server in servers.items():
            f = figures[name]
            f["serving"] = gcPhase(server)
            latencies = [s["latency_ms"] for s in samples[name]]
            f["latency_p50_ms"] = percentile(latencies, 0.5)
            f["latency_p99_ms"] = percentile(latencies, 0.99)
            f["call_p50_ms"] = percentile([s["call_ms"] for s in samples[name]], 0.5)
            f["lost"] = sum(s["lost"] for s in samples[name])
            memory = procStatus(server.process.pid)
            f["peak_rss_bytes_per_client"] = (memory["VmHWM"] - before[name]) / n
            f["rss_bytes_per_client"] = (memory["VmRSS"] - before[name]) / n
            if name != "node-ws":
                _, tracked, frozen = server.command("OBJECTS")
                f["tracked_objects"] = int(tracked)
                f["frozen_objects"] = int(frozen)
                # what the freezer's thaw would cost now: one full
                # collection over everything (last: it changes the heap)
                _, wall, cpu, _ = server.command("THAW")
                f["thaw_ms"] = int(wall) / 1e6
                f["thaw_cpu_ms"] = int(cpu) / 1e6
            f["samples"] = samples[name]
        result["servers"] = figures
        return result
    finally:
        if loadgen is not None:
            loadgen.stop()
        for server in servers.values():
            server.stop()


def median(values: list[Any]) -> Any:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def summarise(runs: list[dict[str, Any]], servers: list[str]) -> dict[str, dict[str, Any]]:
    summary = {}
    for name in servers:
        per = [run["servers"][name] for run in runs]

        def whole(
            p: dict[str, Any], key: str, combine: Any = max,
            phases: tuple[str, ...] = ("connecting", "waiting", "serving"),
        ) -> Any:
            values = [p[phase][key] for phase in phases]
            return None if None in values else combine(values)

        # Pauses in wall time: while its own clients connect and while it
        # broadcasts, not while the other servers' clients connect (their
        # handshakes take the same core, and stretch its pauses); CPU time
        # and counts: from its first client to the end.
        own = ("connecting", "serving")
        summary[name] = {
            "longest_pause_ms": median([whole(p, "longest_ms", phases=own) for p in per]),
            "longest_pause_worst_ms": max(whole(p, "longest_ms", phases=own) for p in per),
            "costliest_cpu_ms": median([whole(p, "longest_cpu_ms") for p in per]),
            "full_collections": median([whole(p, "full", sum) for p in per]),
            "serving_longest_pause_ms": median([p["serving"]["longest_ms"] for p in per]),
            "serving_costliest_cpu_ms": median([p["serving"]["longest_cpu_ms"] for p in per]),
            "serving_full_collections": median([p["serving"]["full"] for p in per]),
            "latency_p50_ms": median([p["latency_p50_ms"] for p in per]),
            "latency_p99_ms": median([p["latency_p99_ms"] for p in per]),
            "call_p50_ms": median([p["call_p50_ms"] for p in per]),
            "lost": sum(p["lost"] for p in per),
            "peak_rss_bytes_per_client": median([p["peak_rss_bytes_per_client"] for p in per]),
            "rss_bytes_per_client": median([p["rss_bytes_per_client"] for p in per]),
            "tracked_objects": median([p.get("tracked_objects") for p in per]),
            "frozen_objects": median([p.get("frozen_objects") for p in per]),
            "thaw_cpu_ms": median([p.get("thaw_cpu_ms") for p in per]),
        }
    return summary


def table(summary: dict[str, dict[str, Any]], servers: list[str]) -> str:
    def number(value: Any, fmt: str = "{:.1f}") -> str:
        return "-" if value is None else fmt.format(value)

    rows = [
        "| server | longest GC pause, ms (worst) | costliest collection, CPU ms"
        " | full collections | broadcasting: longest pause, ms (CPU ms) | p50 ms | p99 ms"
        " | lost | peak RSS KB/client | RSS KB/client at end"
        " | objects a full collection walks | frozen objects | a thaw, CPU ms |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name in servers:
        s = summary[name]
        rows.append(
            f"| {name} | {number(s['longest_pause_ms'])} ({number(s['longest_pause_worst_ms'])})"
            f" | {number(s['costliest_cpu_ms'])} | {number(s['full_collections'], '{:.0f}')}"
            f" | {number(s['serving_longest_pause_ms'])}"
            f" ({number(s['serving_costliest_cpu_ms'])})"
            f" | {number(s['latency_p50_ms'])} | {number(s['latency_p99_ms'])} | {s['lost']}"
            f" | {number(s['peak_rss_bytes_per_client'] / 1024, '{:.2f}')}"
            f" | {number(s['rss_bytes_per_client'] / 1024, '{:.2f}')}"
            f" | {number(s['tracked_objects'], '{:,.0f}')} | {number(s['frozen_objects'], '{:,.0f}')}"
            f" | {number(s['thaw_cpu_ms'])} |"
        )
    return "\n".join(rows)


def main() -> int:
    revision = "main"
    if len(sys.argv) > 1 and not sys.argv[1].startswith("-"):
        revision = sys.argv.pop(1)
    env = os.environ.get
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=int(env("BENCH_GC_CLIENTS", "10000")))
    parser.add_argument("--repeat", type=int, default=int(env("BENCH_GC_REPEAT", "3")))
    parser.add_argument("--broadcasts", type=int, default=20)
    parser.add_argument("--interval", type=float, default=1.0,
                        help="seconds between one server's broadcasts")
    parser.add_argument("--warmup", type=int, default=2,
                        help="broadcast rounds before the measured ones")
    parser.add_argument("--servers", default="hub,hub-base,node-ws")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--timeout", type=float, default=15.0)
    parser.add_argument("--server-cpus", default=env("BENCH_SERVER_CPUS", "0"))
    parser.add_argument("--loadgen-cpus", default=env("BENCH_LOADGEN_CPUS", "1"))
    parser.add_argument("--out", default=os.path.join(HERE, "results", "gcpause.json"))
    args = parser.parse_args()
    if env("BENCH_GC", "1") == "0":
        log("BENCH_GC=0: skipping the GC pause benchmark")
        return 0
    args.servers = [s for s in args.servers.split(",") if s]
    args.server_cpus = fanout.parseCpus(args.server_cpus)
    args.loadgen_cpus = fanout.parseCpus(args.loadgen_cpus)
    if (args.server_cpus or args.loadgen_cpus) and (os.cpu_count() or 1) < 2:
        args.server_cpus = args.loadgen_cpus = None

    fanout.signal.signal(fanout.signal.SIGTERM, fanout._interrupted)
    limit = fanout.raiseFileLimit()
    needed = args.clients * len(args.servers) // max(args.workers, 1) + 256
    if limit < needed:
        log(f"RLIMIT_NOFILE is {limit}, a load generator needs about {needed}: use more --workers")
        return 2

    log(f"gcpause: {args.clients} clients, {args.broadcasts} broadcasts {args.interval:g} s apart,"
        f" {args.repeat} repetitions, servers {args.servers} (hub-base = {revision})")
    started = time.time()
    base = tempfile.mkdtemp(prefix="statushub-base-")
    runs = []
    try:
        extract(revision, base)
        for repeat in range(args.repeat):
            log(f"repetition {repeat + 1}/{args.repeat}")
            run = once(args, base, repeat)
            runs.append(run)
            for name in args.servers:
                f = run["servers"][name]
                log(f"  {name:8s} gc serving {f['serving']['longest_ms']:6.1f} ms"
                    f" (gen {f['serving']['generation']}, cpu {f['serving']['longest_cpu_ms']})"
                    f" full {f['serving']['full']}  connecting {f['connecting']['longest_ms']:6.1f} ms"
                    f"  p50 {f['latency_p50_ms']:6.1f} p99 {f['latency_p99_ms']:6.1f} ms"
                    f"  peak rss {f['peak_rss_bytes_per_client'] / 1024:5.2f} KB/client"
                    f"  objects {f.get('tracked_objects')} frozen {f.get('frozen_objects')}")
            log(f"  load average: start {run['load_start']}, serving "
                f"{run['load_serving_start']} -> {run['load_serving_end']}")
    finally:
        shutil.rmtree(base, ignore_errors=True)

    summary = summarise(runs, args.servers)
    report = table(summary, args.servers)
    print(report)
    loads = [run["load_serving_end"][0] for run in runs]
    print("\nload average (1 min) at the end of each repetition's broadcasts: "
          + ", ".join(f"{load:.1f}" for load in loads))
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out + ".tmp", "w") as out:
        json.dump({
            "command": " ".join([os.path.basename(sys.executable)] + sys.argv),
            "revision": revision,
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
            "seconds": round(time.time() - started),
            "machine": fanout.machine(),
            "settings": {k: (sorted(v) if isinstance(v, set) else v) for k, v in vars(args).items()},
            "summary": summary,
            "runs": runs,
            "table": report,
        }, out, indent=1)
    os.replace(args.out + ".tmp", args.out)
    log(f"results in {os.path.relpath(args.out, fanout.ROOT)} ({time.time() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
