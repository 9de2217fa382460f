"""
The fan-out and idle benchmarks (issue 5): statushub's hub beside two
references, on the same load, in the same run.

    .venv/bin/python bench/fanout.py [--sizes 1000,5000,10000] [--repeat 3]

Each server under test runs in its own process (bench/server_hub.py,
bench/ref_autobahn.py, bench/ref_websockets.py) and is driven through a
line-based control socket on loopback (bench/common.py).  The clients are
Node `ws` clients held by separate load-generator processes
(bench/loadgen.js).  Per size N, every server gets N clients at once; then
the broadcasts go round-robin (hub, autobahn, websockets, rotating who goes
first), so that a burst of background load hits all three alike.

Clock domain: the server takes t0 with time.monotonic_ns() right before its
broadcast call; each client's receipt is taken with process.hrtime.bigint().
Both read CLOCK_MONOTONIC on this host, so "last receipt - t0" is one clock's
difference across processes; the harness checks the clocks agree (each t0
must fall between the harness's send and answer times, and so must each load
generator's clock reading).

Results: a table on stdout and a JSON file (--out).  Benchmarks are not
tests: nothing here fails on a time.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import platform
import queue
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from typing import Any, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

from common import messageSize, raiseFileLimit  # noqa: E402

SERVERS = {
    "hub": "server_hub.py",
    # the same hub with [metrics] enabled = false: what counting costs
    # (--servers hub,hub-nometrics; BENCHMARKS.md)
    "hub-nometrics": "server_hub.py --metrics off",
    # the same hub with [history] enabled = false: what keeping every
    # message in SQLite costs the broadcast (--servers hub,hub-nohistory)
    "hub-nohistory": "server_hub.py --history off",
    # the same hub while 100 clients follow a node's log, 1,000 lines a
    # second (--servers hub,hub-logs; issue 19, BENCHMARKS.md)
    "hub-logs": "server_hub.py --busy-logs 100",
    "autobahn": "ref_autobahn.py",
    "websockets": "ref_websockets.py",
    "node-ws": "ref_node_ws.js",
}

_libc = ctypes.CDLL(None, use_errno=True)
PR_SET_PDEATHSIG = 1


def _dieWithParent(cpus: Optional[set[int]]) -> Any:
    def prepare() -> None:
        # the child gets SIGTERM when the harness dies, however it dies
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if cpus:
            os.sched_setaffinity(0, cpus)

    return prepare


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


class Child:
    """
    A process this run started, and stops.
    """

    def __init__(
        self, argv: list[str], cpus: Optional[set[int]], env: Optional[dict[str, str]] = None
    ) -> None:
        self.argv = argv
        self.process = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            preexec_fn=_dieWithParent(cpus),
            cwd=ROOT,
            env=env,
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        for stream in (self.process.stdin, self.process.stdout):
            try:
                stream.close()
            except OSError:
                pass


class Server(Child):
    """
    One server under test, with its control channel.
    """

    def __init__(
        self, name: str, cpus: Optional[set[int]], extra: tuple[str, ...] = (),
        script: Optional[str] = None, env: Optional[dict[str, str]] = None,
    ) -> None:
        script, *options = (script or SERVERS[name]).split()
        script = os.path.join(HERE, script)
        runner = "node" if script.endswith(".js") else sys.executable
        super().__init__([runner, script, *options, *extra], cpus, env)
        self.name = name
        # a hub with busy logs starts a dockerd and its followers first
        line = self._readReady(timeout=180 if "--busy-logs" in options else 30)
        words = line.split()
        if len(words) != 3 or words[0] != "READY":
            raise RuntimeError(f"{name}: expected READY, got {line!r}")
        self.wsPort, controlPort = int(words[1]), int(words[2])
        self.url = f"ws://127.0.0.1:{self.wsPort}" + ("/ws/status" if name.startswith("hub") else "")
        self._control = socket.create_connection(("127.0.0.1", controlPort), timeout=60)
        self._lines = self._control.makefile("rwb")

    def _readReady(self, timeout: float) -> str:
        result: list[bytes] = []
        reader = threading.Thread(
            target=lambda: result.append(self.process.stdout.readline()), daemon=True
        )
        reader.start()
        reader.join(timeout)
        if not result:
            raise RuntimeError(f"{self.name} did not start within {timeout} s")
        return result[0].decode().strip()

    def command(self, line: str) -> list[str]:
        self._lines.write(line.encode() + b"\n")
        self._lines.flush()
        answer = self._lines.readline().decode().split()
        if not answer or answer[0] == "ERROR":
            raise RuntimeError(f"{self.name}: {line} -> {answer}")
        return answer

    def broadcast(self, seq: int, deployment: str = "") -> tuple[int, int, int, int, int]:
        sent = time.monotonic_ns()
        _, t0, t1, clients = self.command(f"BROADCAST {seq} {deployment}".rstrip())
        answered = time.monotonic_ns()
        return int(t0), int(t1), int(clients), sent, answered

    def counters(self) -> dict[str, Any]:
        return json.loads(self.command("COUNTERS")[1])

    def stats(self) -> dict[str, int]:
        _, cpu, rss, clients, gcCount, gcTotal, gcMax = self.command("STATS")
        return {
            "cpu": int(cpu),
            "rss": int(rss),
            "clients": int(clients),
            "gcCount": int(gcCount),
            "gcTotal": int(gcTotal),
            "gcMax": int(gcMax),
        }

    def stop(self) -> None:
        try:
            self._lines.write(b"QUIT\n")
            self._lines.flush()
            # closing 10,000 connections takes a loaded box a while
            self.process.wait(20)
        except (OSError, AttributeError, subprocess.TimeoutExpired):
            pass
        super().stop()


class LoadGenerators:
    """
    The Node load-generator processes; their unprompted "done" events go to
    one queue, answers to commands to one queue per process.
    """

    def __init__(self, count: int, cpus: Optional[set[int]]) -> None:
        self.done: queue.Queue = queue.Queue()
        self.messages: queue.Queue = queue.Queue()
        self.workers: list[Child] = []
        self.answers: list[queue.Queue] = []
        try:
            for index in range(count):
                worker = Child(["node", os.path.join(HERE, "loadgen.js")], cpus)
                answers: queue.Queue = queue.Queue()
                threading.Thread(
                    target=self._read, args=(worker, answers), daemon=True
                ).start()
                self.workers.append(worker)
                self.answers.append(answers)
        except BaseException:
            self.stop()
            raise

    def _read(self, worker: Child, answers: queue.Queue) -> None:
        for raw in worker.process.stdout:
            event = json.loads(raw)
            if event.get("ev") == "done":
                self.done.put(event)
            elif event.get("ev") == "msg":
                self.messages.put(event)
            else:
                answers.put(event)
        answers.put({"ev": "exit"})

    def send(self, index: int, **command: Any) -> None:
        stdin = self.workers[index].process.stdin
        stdin.write(json.dumps(command).encode() + b"\n")
        stdin.flush()

    def answer(self, index: int, timeout: float = 30) -> dict:
        try:
            event = self.answers[index].get(timeout=timeout)
        except queue.Empty:
            raise RuntimeError(f"load generator {index} did not answer within {timeout} s")
        if event["ev"] in ("exit", "error"):
            raise RuntimeError(f"load generator {index}: {event}")
        return event

    def ask(self, **command: Any) -> list[dict]:
        for index in range(len(self.workers)):
            self.send(index, **command)
        return [self.answer(index) for index in range(len(self.workers))]

    def cpu(self) -> int:
        """
        CPU time of all load generators together, in microseconds.
        """
        return sum(a["user"] + a["system"] for a in self.ask(cmd="cpu"))

    def checkClock(self) -> None:
        for index in range(len(self.workers)):
            before = time.monotonic_ns()
            self.send(index, cmd="clock")
            theirs = int(self.answer(index)["now"])
            after = time.monotonic_ns()
            if not before <= theirs <= after:
                raise RuntimeError(
                    "the load generator's clock is not CLOCK_MONOTONIC: "
                    f"{before} <= {theirs} <= {after} does not hold"
                )

    def connect(self, group: str, url: str, total: int, concurrency: int, light: bool) -> None:
        shares = split(total, len(self.workers))
        for index, share in enumerate(shares):
            self.send(index, cmd="connect", group=group, url=url, count=share,
                      concurrency=concurrency, light=light)
        timeout = 60 + total / 100
        for index, share in enumerate(shares):
            answer = self.answer(index, timeout=timeout)
            if answer["failed"] or answer["open"] != share:
                raise RuntimeError(
                    f"{group}: load generator {index} opened {answer['open']} of "
                    f"{share} clients ({answer['failed']} failed: {answer['error']})"
                )

    def waitDone(self, group: str, seq: int, timeout: float) -> tuple[list[dict], bool]:
        """
        The "done" event of every load generator for C{seq}, or, after
        C{timeout}, each one's count so far.
        """
        deadline = time.monotonic() + timeout
        got: dict[int, dict] = {}
        wanted = len(self.workers)
        byWorker: list[dict] = []
        while len(got) < wanted:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                event = self.done.get(timeout=remaining)
            except queue.Empty:
                break
            if event["group"] == group and event["seq"] == seq:
                got[len(got)] = event
        if len(got) == wanted:
            return list(got.values()), True
        for index in range(len(self.workers)):
            self.send(index, cmd="query", group=group, seq=seq)
            byWorker.append(self.answer(index))
        return byWorker, False

    def stop(self) -> None:
        closeWorkers(self.workers)


def closeWorkers(workers: list[Child]) -> None:
    """
    Ask every load-generator process to close its clients, give each a moment
    to do so, then stop it.
    """
    for worker in workers:
        try:
            worker.process.stdin.write(b'{"cmd": "close"}\n')
            worker.process.stdin.flush()
        except OSError:
            pass
    for worker in workers:
        try:
            worker.process.wait(5)
        except subprocess.TimeoutExpired:
            pass
        worker.stop()


def split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def percentile(values: list[float], q: float) -> float:
    """
    Linear interpolation between closest ranks (numpy's default).
    """
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def measureBroadcast(
    server: Server, loadgen: LoadGenerators, seq: int, n: int, settle: float, timeout: float
) -> dict[str, Any]:
    before = server.stats()
    loadCpu0 = loadgen.cpu()
    t0, t1, clients, sent, answered = server.broadcast(seq)
    if not sent <= t0 <= t1 <= answered:
        raise RuntimeError(f"{server.name}'s clock is not the harness's CLOCK_MONOTONIC")
    events, complete = loadgen.waitDone(server.name, seq, timeout)
    # let the server finish what it does after the last send (Twisted's
    # stopWriting and the like) before reading its CPU time
    time.sleep(settle)
    after = server.stats()
    loadCpu = loadgen.cpu() - loadCpu0
    received = sum(e["count"] for e in events)
    lasts = [int(e["last"]) for e in events if e["last"] is not None]
    firsts = [int(e["first"]) for e in events if e["first"] is not None]
    latency = (max(lasts) - t0) / 1e6 if lasts else float("nan")
    cpu = (after["cpu"] - before["cpu"]) / 1e3  # microseconds
    return {
        "seq": seq,
        "clients": clients,
        "complete": complete,
        "lost": n - received,
        "latency_ms": latency,
        "first_ms": (min(firsts) - t0) / 1e6 if firsts else float("nan"),
        "call_ms": (t1 - t0) / 1e6,
        "cpu_us": cpu,
        "cpu_us_per_client": cpu / n,
        "busy": (cpu / 1e3) / latency if latency == latency and latency > 0 else None,
        "loadgen_us_per_msg": loadCpu / max(received, 1),
        "gc_count": after["gcCount"],
        "gc_max_ms": after["gcMax"] / 1e6,
    }


def summarise(samples: list[dict], rssPerClient: float) -> dict[str, Any]:
    latencies = [s["latency_ms"] for s in samples]
    return {
        "broadcasts": len(samples),
        "latency_p50_ms": percentile(latencies, 0.50),
        "latency_p99_ms": percentile(latencies, 0.99),
        "first_p50_ms": percentile([s["first_ms"] for s in samples], 0.50),
        "call_p50_ms": percentile([s["call_ms"] for s in samples], 0.50),
        "lost": sum(s["lost"] for s in samples),
        "cpu_us_per_client_p50": percentile([s["cpu_us_per_client"] for s in samples], 0.5),
        "rss_bytes_per_client": rssPerClient,
        "busy_p50": percentile([s["busy"] or 0 for s in samples], 0.5),
        "loadgen_us_per_msg_p50": percentile([s["loadgen_us_per_msg"] for s in samples], 0.5),
        "gc_collections": sum(s["gc_count"] for s in samples),
        "gc_max_pause_ms": max(s["gc_max_ms"] for s in samples),
    }


def fanoutOnce(args: argparse.Namespace, n: int, repeat: int) -> dict[str, Any]:
    """
    One size, one repetition: all servers up with N clients each, then
    round-robin broadcasts.
    """
    servers: dict[str, Server] = {}
    loadgen: Optional[LoadGenerators] = None
    profilers: list[subprocess.Popen] = []
    try:
        # The servers start, and get their clients, in an order that rotates
        # with each repetition: the first server's clients were measured ~9%
        # slower than the second's (the same hub both ways: BENCHMARKS.md).
        first = repeat % len(args.servers)
        for name in args.servers[first:] + args.servers[:first]:
            servers[name] = Server(name, args.server_cpus)
        baseline = {name: s.stats()["rss"] for name, s in servers.items()}
        loadgen = LoadGenerators(min(args.workers, n), args.loadgen_cpus)
        loadgen.checkClock()
        for name, server in servers.items():
            started = time.monotonic()
            loadgen.connect(name, server.url, n, args.concurrency, args.reader == "light")
            deadline = time.monotonic() + 30
            while server.stats()["clients"] != n and time.monotonic() < deadline:
                time.sleep(0.1)
            log(f"  {name}: {n} clients connected in {time.monotonic() - started:.1f} s")
        seq = 1000
        # warm-up: first-time allocations, not measured
        for _ in range(args.warmup):
            for name, server in servers.items():
                seq += 1
                measureBroadcast(server, loadgen, seq, n, args.settle, args.timeout)
        rssPerClient = {
            name: (s.stats()["rss"] - baseline[name]) / n for name, s in servers.items()
        }
        samples: dict[str, list[dict]] = {name: [] for name in servers}
        order = list(servers)
        if args.profile:
            for name, server in servers.items():
                profilers.append(profile(args.profile, name, n, repeat, server))
        for i in range(args.broadcasts):
            turn = order[i % len(order):] + order[: i % len(order)]
            for name in turn:
                seq += 1
                sample = measureBroadcast(servers[name], loadgen, seq, n, args.settle,
                                          args.timeout)
                samples[name].append(sample)
        stopProfilers(profilers)
        result = {name: summarise(samples[name], rssPerClient[name]) for name in servers}
        for name in servers:
            result[name]["samples"] = samples[name]
        return result
    finally:
        stopProfilers(profilers)
        if loadgen is not None:
            loadgen.stop()
        for server in servers.values():
            server.stop()


def profile(directory: str, name: str, n: int, repeat: int, server: Server) -> subprocess.Popen:
    """
    py-spy on one server during the measured broadcasts: collapsed stacks
    (one line a stack, with its sample count), summarised by
    bench/profile_summary.py.
    """
    os.makedirs(directory, exist_ok=True)
    output = os.path.join(directory, f"{name}-{n}-{repeat + 1}.txt")
    return subprocess.Popen(
        [os.path.join(os.path.dirname(sys.executable), "py-spy"), "record", "--pid",
         str(server.process.pid), "--rate", "250", "--format", "raw", "--nonblocking",
         "--output", output],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        preexec_fn=_dieWithParent(None),
    )


def stopProfilers(profilers: list[subprocess.Popen]) -> None:
    while profilers:
        profiler = profilers.pop()
        profiler.send_signal(signal.SIGINT)
        try:
            profiler.wait(30)
        except subprocess.TimeoutExpired:
            profiler.kill()
            profiler.wait()


def idleOnce(args: argparse.Namespace) -> dict[str, Any]:
    """
    The hub with its configured ping interval, M clients, nothing changing:
    what crosses the wire per client per second, and that no status message
    does.
    """
    from statushub import config as configuration

    feed = configuration.load(os.path.join(ROOT, "etc", "statushub.toml"))["feed"]
    interval = float(feed["ping_interval"])
    window = interval * args.idle_rounds
    server = Server("hub", args.server_cpus)
    loadgen: Optional[LoadGenerators] = None
    try:
        m = args.idle_clients
        loadgen = LoadGenerators(min(args.workers, m), args.loadgen_cpus)
        loadgen.connect("hub", server.url, m, args.concurrency, args.reader == "light")
        time.sleep(1)  # the current picture every client gets on connect
        before = loadgen.ask(cmd="traffic", group="hub")
        stats0 = server.stats()
        log(f"  idle: {m} clients, watching for {window:.0f} s "
            f"({args.idle_rounds} ping intervals of {interval:g} s)")
        time.sleep(window)
        after = loadgen.ask(cmd="traffic", group="hub")
        stats1 = server.stats()

        def total(answers: list[dict], key: str) -> int:
            return sum(a[key] for a in answers)

        read = total(after, "read") - total(before, "read")
        written = total(after, "written") - total(before, "written")
        return {
            "clients": m,
            "ping_interval_s": interval,
            "window_s": window,
            "status_messages": total(after, "messages") - total(before, "messages"),
            "pings_per_client": (total(after, "pings") - total(before, "pings")) / m,
            "dropped": total(after, "closed"),
            "bytes_per_s_per_client_down": read / window / m,
            "bytes_per_s_per_client_up": written / window / m,
            "bytes_per_s_per_client": (read + written) / window / m,
            "hub_cpu_us_per_s_per_client": (stats1["cpu"] - stats0["cpu"]) / 1e3 / window / m,
        }
    finally:
        if loadgen is not None:
            loadgen.stop()
        server.stop()


def median(values: list[float]) -> float:
    return statistics.median(values)


def combine(runs: list[dict[str, Any]], servers: list[str]) -> dict[str, Any]:
    """
    Medians over repetitions, of the figures and of the ratios hub/reference
    taken within each run.
    """
    keys = [k for k in runs[0][servers[0]] if k != "samples"]
    figures = {
        name: {key: median([run[name][key] for run in runs]) for key in keys}
        for name in servers
    }
    for name in servers:
        figures[name]["lost"] = sum(run[name]["lost"] for run in runs)
        figures[name]["gc_max_pause_ms"] = max(run[name]["gc_max_pause_ms"] for run in runs)
    ratios: dict[str, dict[str, float]] = {}
    if "hub" in servers:
        for ref in servers:
            if ref == "hub":
                continue
            ratios[ref] = {}
            for key in ("latency_p50_ms", "latency_p99_ms", "cpu_us_per_client_p50",
                        "rss_bytes_per_client"):
                per = [run["hub"][key] / run[ref][key] for run in runs if run[ref][key]]
                ratios[ref][key] = median(per) if per else float("nan")
    return {"figures": figures, "ratios": ratios}


def table(sizes: list[int], combined: dict[int, dict], servers: list[str]) -> str:
    rows = [
        "| N | server | last-client p50 ms | p99 ms | lost | CPU µs/client/broadcast"
        " | RSS KB/client | call p50 ms | server busy | loadgen µs/msg | max GC pause ms |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for n in sizes:
        figures, ratios = combined[n]["figures"], combined[n]["ratios"]
        for name in servers:
            f = figures[name]

            def withRatio(key: str, scale: float = 1.0, fmt: str = "{:.1f}") -> str:
                text = fmt.format(f[key] * scale)
                if name != "hub" and name in ratios:
                    text += f" (hub {ratios[name][key]:.2f}×)"
                return text

            rows.append(
                f"| {n:,} | {name} | {withRatio('latency_p50_ms')} | "
                f"{withRatio('latency_p99_ms')} | {f['lost']:.0f} | "
                f"{withRatio('cpu_us_per_client_p50')} | "
                f"{withRatio('rss_bytes_per_client', 1 / 1024)} | "
                f"{f['call_p50_ms']:.1f} | {f['busy_p50']:.2f} | {f['loadgen_us_per_msg_p50']:.1f} | "
                f"{f['gc_max_pause_ms']:.0f} |"
            )
    return "\n".join(rows)


def goals(combined: dict[int, dict]) -> list[str]:
    if 10000 not in combined or "hub" not in combined[10000]["figures"]:
        return ["goals: judged at N=10,000, which this run did not measure"]
    f = combined[10000]["figures"]["hub"]
    r = combined[10000]["ratios"]
    checks = []
    if "websockets" in r:
        checks.append(("p50 <= 0.85x websockets", r["websockets"]["latency_p50_ms"] <= 0.85,
                       f"{r['websockets']['latency_p50_ms']:.2f}x"))
    if "node-ws" in r:
        checks.append(("p50 below Node ws", r["node-ws"]["latency_p50_ms"] < 1,
                       f"{r['node-ws']['latency_p50_ms']:.2f}x"))
    if "autobahn" in r:
        checks.append(("p50 <= 0.5x textbook Autobahn", r["autobahn"]["latency_p50_ms"] <= 0.5,
                       f"{r['autobahn']['latency_p50_ms']:.2f}x"))
    checks += [
        ("p99 < 300 ms", f["latency_p99_ms"] < 300, f"{f['latency_p99_ms']:.0f} ms"),
        ("<= 15 µs CPU/client/broadcast", f["cpu_us_per_client_p50"] <= 15,
         f"{f['cpu_us_per_client_p50']:.1f} µs"),
        ("0 lost", f["lost"] == 0, f"{f['lost']:.0f}"),
        ("<= 10 KB RSS/client", f["rss_bytes_per_client"] <= 10 * 1024,
         f"{f['rss_bytes_per_client'] / 1024:.1f} KB"),
    ]
    return [f"{'MET' if ok else 'NOT MET'}: {what} ({value})" for what, ok, value in checks]


def machine() -> dict[str, Any]:
    model = ""
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as meminfo:
        memory = int(meminfo.readline().split()[1]) // 1024
    node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    import autobahn
    import twisted
    import websockets

    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "memory_mb": memory,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "node": node,
        "twisted": twisted.__version__,
        "autobahn": autobahn.__version__,
        "websockets": websockets.__version__,
        "load_average_at_end": os.getloadavg(),
    }


def _interrupted(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def parseCpus(text: str) -> Optional[set[int]]:
    return {int(c) for c in text.split(",")} if text else None


def main() -> int:
    env = os.environ.get
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default=env("BENCH_SIZES", "1000,5000,10000"),
                        help="client counts N, comma-separated (env BENCH_SIZES)")
    parser.add_argument("--repeat", type=int, default=int(env("BENCH_REPEAT", "3")),
                        help="repetitions per N; figures are their medians (env BENCH_REPEAT)")
    parser.add_argument("--broadcasts", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--servers", default=env("BENCH_SERVERS", "hub,autobahn,websockets,node-ws"),
                        help="servers to measure, hub first (env BENCH_SERVERS)")
    parser.add_argument("--workers", type=int, default=int(env("BENCH_WORKERS", "4")),
                        help="load-generator processes")
    parser.add_argument("--reader", choices=("light", "ws"), default=env("BENCH_READER", "light"),
                        help="how the load generator reads frames after ws's handshake")
    parser.add_argument("--concurrency", type=int, default=8,
                        help="handshakes in flight per load generator")
    parser.add_argument("--settle", type=float, default=0.05,
                        help="seconds after the last receipt before reading server CPU")
    parser.add_argument("--timeout", type=float, default=15.0,
                        help="seconds to wait for every client to have a broadcast")
    parser.add_argument("--server-cpus", default=env("BENCH_SERVER_CPUS", "0"),
                        help="CPUs the servers are pinned to ('' for none)")
    parser.add_argument("--loadgen-cpus", default=env("BENCH_LOADGEN_CPUS", "1"),
                        help="CPUs the load generators are pinned to ('' for none)")
    parser.add_argument("--idle-clients", type=int, default=int(env("BENCH_IDLE_CLIENTS", "1000")))
    parser.add_argument("--idle-rounds", type=int, default=int(env("BENCH_IDLE_ROUNDS", "2")),
                        help="ping intervals to watch an idle hub for (0: skip)")
    parser.add_argument("--profile", default=env("BENCH_PROFILE", ""),
                        help="directory: record each server with py-spy during the broadcasts")
    parser.add_argument("--out", default=env("BENCH_OUT", os.path.join(HERE, "results",
                                                                        "latest.json")))
    args = parser.parse_args()
    args.sizes = [int(s) for s in args.sizes.split(",") if s]
    args.servers = [s for s in args.servers.split(",") if s]
    args.server_cpus = parseCpus(args.server_cpus)
    args.loadgen_cpus = parseCpus(args.loadgen_cpus)
    if (args.server_cpus or args.loadgen_cpus) and os.cpu_count() < 2:
        args.server_cpus = args.loadgen_cpus = None

    # SIGTERM (make interrupted, CI timeout) unwinds like ^C: every child stopped
    signal.signal(signal.SIGTERM, _interrupted)
    limit = raiseFileLimit()
    needed = max(args.sizes, default=0) * len(args.servers) // max(args.workers, 1) + 256
    if limit < needed:
        log(f"RLIMIT_NOFILE is {limit}, a load generator needs about {needed}: "
            "use more --workers")
        return 2

    log(f"fan-out: sizes {args.sizes}, {args.repeat} repetitions, {args.broadcasts} "
        f"broadcasts each, message {messageSize()} bytes, servers {args.servers}")
    started = time.time()
    loadAtStart = os.getloadavg()
    runs: dict[int, list[dict]] = {n: [] for n in args.sizes}
    combined: dict[int, dict] = {}
    for n in args.sizes:
        for repeat in range(args.repeat):
            log(f"N={n} run {repeat + 1}/{args.repeat}")
            runs[n].append(fanoutOnce(args, n, repeat))
            for name in args.servers:
                s = runs[n][-1][name]
                log(f"  {name:10s} p50 {s['latency_p50_ms']:7.1f} ms  p99 "
                    f"{s['latency_p99_ms']:7.1f} ms  lost {s['lost']}  cpu "
                    f"{s['cpu_us_per_client_p50']:5.1f} µs/client  rss "
                    f"{s['rss_bytes_per_client'] / 1024:5.1f} KB/client  busy "
                    f"{s['busy_p50']:.2f}  loadgen {s['loadgen_us_per_msg_p50']:.1f} µs/msg"
                    f"  gc max {s['gc_max_pause_ms']:.0f} ms")
        combined[n] = combine(runs[n], args.servers)

    idle = idleOnce(args) if args.idle_rounds > 0 else None

    report = table(args.sizes, combined, args.servers)
    verdicts = goals(combined)
    print(report)
    print()
    for verdict in verdicts:
        print(verdict)
    if idle is not None:
        print(
            f"\nidle ({idle['clients']} clients, {idle['window_s']:.0f} s, ping every "
            f"{idle['ping_interval_s']:g} s): {idle['bytes_per_s_per_client']:.2f} bytes/s "
            f"per client ({idle['bytes_per_s_per_client_down']:.2f} down, "
            f"{idle['bytes_per_s_per_client_up']:.2f} up), status messages "
            f"{idle['status_messages']}, pings per client {idle['pings_per_client']:.2f}, "
            f"hub CPU {idle['hub_cpu_us_per_s_per_client']:.2f} µs/s per client"
        )

    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    results = {
        "command": " ".join([os.path.basename(sys.executable)] + sys.argv),
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "seconds": round(time.time() - started),
        "machine": {**machine(), "load_average_at_start": loadAtStart},
        "settings": {
            k: (sorted(v) if isinstance(v, set) else v) for k, v in vars(args).items()
        },
        "message_bytes": messageSize(),
        "fanout": {str(n): {"median": combined[n], "runs": runs[n]} for n in args.sizes},
        "idle": idle,
        "goals_at_10000": verdicts,
        "table": report,
    }
    with open(args.out + ".tmp", "w") as out:
        json.dump(results, out, indent=1)
    os.replace(args.out + ".tmp", args.out)
    log(f"results in {os.path.relpath(args.out, ROOT)} ({time.time() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
