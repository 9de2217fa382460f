"""
The WAMP path of the fan-out benchmark (issue 6): one status message from the
real hub goes to N direct C{/ws/status} clients and, through a Crossbar.io
router, to N Autobahn JS subscribers, in the same run.

    .venv/bin/python bench/wamp/fanout_wamp.py [--sizes 100,1000] [--broadcasts 20]
        [--router statushub.json|statushub-scaleout.json]

Parts, each its own process: the router (C{make crossbar}'s venv, the
committed node config on free loopback ports), the hub (bench/wamp/server.py:
statushub.tap's service tree with the WAMP sink; a broadcast goes to the
WebSocket hub and then to the WAMP publisher, as the status board sends it),
the direct clients (bench/loadgen.js, the fan-out benchmark's Node C{ws}
load generator, reused through bench/fanout.py) and the WAMP subscribers
(bench/wamp/loadgen.js, Autobahn JS 22.11.1).

Clock: t0 is the hub's CLOCK_MONOTONIC right before the broadcast call, every
receipt is the client's CLOCK_MONOTONIC (both load generators' clocks are
checked against the harness's).  Latencies are "receipt - t0".  Benchmarks
are not tests: nothing here fails on a time.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from typing import Any, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
BENCH = os.path.dirname(HERE)
ROOT = os.path.dirname(BENCH)
sys.path.insert(0, BENCH)

from fanout import (  # noqa: E402
    Child,
    LoadGenerators,
    Server,
    closeWorkers,
    percentile,
    split,
)

CROSSBAR = os.path.join(ROOT, ".crossbar-venv", "bin", "crossbar")
START = os.path.join(ROOT, "etc", "crossbar", "start")
BOOTED = re.compile(r"NODE_BOOT_COMPLETE|local node configuration ran successfully")
CLOCK_TICK_NS = 1e9 / os.sysconf("SC_CLK_TCK")


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def freePort() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Router:
    """
    A Crossbar.io node on a committed config, its ports moved to free ones.
    """

    def __init__(self, config: str, workdir: str) -> None:
        if not os.path.exists(CROSSBAR):
            raise SystemExit(f"{CROSSBAR} is missing: run `make crossbar`")
        with open(os.path.join(ROOT, "etc", "crossbar", config)) as f:
            node = json.load(f)
        ports: dict[int, int] = {}
        for worker in node["workers"]:
            for transport in worker.get("transports", []):
                endpoint = transport.get("endpoint", {})
                if endpoint.get("type") == "tcp":
                    ports.setdefault(endpoint["port"], freePort())
                    endpoint["port"] = ports[endpoint["port"]]
        self.url = f"ws://127.0.0.1:{ports[8081]}/ws"
        self.hubUrl = f"ws://127.0.0.1:{ports.get(8082, ports[8081])}/ws"
        self.ticket = secrets.token_hex(16)
        path = os.path.join(workdir, "config.json")
        with open(path, "w") as f:
            json.dump(node, f)
        cbdir = os.path.join(workdir, "cbdir")
        self.log = open(os.path.join(workdir, "crossbar.log"), "w")
        self.process = subprocess.Popen(
            # the node key, and its public key into the router-to-router links
            [START, path, cbdir],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=dict(os.environ, STATUSHUB_WAMP_TICKET=self.ticket),
            start_new_session=True,
        )
        booted = threading.Event()

        def read() -> None:
            for line in self.process.stdout:
                self.log.write(line)
                if BOOTED.search(line):
                    booted.set()

        threading.Thread(target=read, daemon=True).start()
        if not booted.wait(90):
            self.stop()
            raise RuntimeError(f"crossbar did not start; see {self.log.name}")

    def cpuNs(self) -> float:
        """
        CPU time of the node and all its workers (its session), in ns.
        """
        total = 0
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open(f"/proc/{pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            # after "pid (comm)": state ppid pgrp session ... utime(12) stime(13)
            if int(fields[3]) == self.process.pid:
                total += int(fields[11]) + int(fields[12])
        return total * CLOCK_TICK_NS

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


class WampSubscribers:
    """
    The bench/wamp/loadgen.js processes.
    """

    def __init__(self, count: int) -> None:
        self.done: queue.Queue = queue.Queue()
        self.workers: list[Child] = []
        self.answers: list[queue.Queue] = []
        for _ in range(count):
            worker = Child(["node", os.path.join(HERE, "loadgen.js")], None)
            answers: queue.Queue = queue.Queue()
            threading.Thread(target=self._read, args=(worker, answers), daemon=True).start()
            self.workers.append(worker)
            self.answers.append(answers)

    def _read(self, worker: Child, answers: queue.Queue) -> None:
        for raw in worker.process.stdout:
            event = json.loads(raw)
            (self.done if event.get("ev") == "done" else answers).put(event)
        answers.put({"ev": "exit"})

    def ask(self, index: int, timeout: float = 30, **command: Any) -> dict:
        stdin = self.workers[index].process.stdin
        stdin.write(json.dumps(command).encode() + b"\n")
        stdin.flush()
        try:
            event = self.answers[index].get(timeout=timeout)
        except queue.Empty:
            raise RuntimeError(f"WAMP load generator {index} did not answer in {timeout} s")
        if event["ev"] in ("exit", "error"):
            raise RuntimeError(f"WAMP load generator {index}: {event}")
        return event

    def checkClock(self) -> None:
        for index in range(len(self.workers)):
            before = time.monotonic_ns()
            theirs = int(self.ask(index, cmd="clock")["now"])
            if not before <= theirs <= time.monotonic_ns():
                raise RuntimeError("the WAMP load generator's clock is not CLOCK_MONOTONIC")

    def connect(self, url: str, total: int, concurrency: int) -> None:
        for index, share in enumerate(split(total, len(self.workers))):
            answer = self.ask(
                index, timeout=60 + total / 20, cmd="connect", url=url, realm="statushub",
                prefix="io.statushub", count=share, concurrency=concurrency,
            )
            if answer["failed"] or answer["open"] != share:
                raise RuntimeError(f"WAMP subscribers: {answer} of {share}")

    def cpuUs(self) -> int:
        answers = [self.ask(i, cmd="cpu") for i in range(len(self.workers))]
        return sum(a["user"] + a["system"] for a in answers)

    def waitDone(self, seq: int, timeout: float) -> list[int]:
        """
        Every subscriber's receipt time of C{seq} (fewer if some never came).
        """
        deadline = time.monotonic() + timeout
        receipts: list[int] = []
        finished = 0
        while finished < len(self.workers):
            try:
                event = self.done.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if event["seq"] == seq:
                receipts.extend(int(r) for r in event["receipts"])
                finished += 1
        return receipts

    def stop(self) -> None:
        closeWorkers(self.workers)


def waitJoined(server: Server, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    url = f"http://127.0.0.1:{server.wsPort}/healthz"
    while time.monotonic() < deadline:
        with urllib.request.urlopen(url, timeout=5) as response:
            if json.load(response).get("wamp") == "joined":
                return
        time.sleep(0.2)
    raise RuntimeError("the hub did not join the router")


def runSize(args: argparse.Namespace, n: int) -> dict[str, Any]:
    router: Optional[Router] = None
    server: Optional[Server] = None
    direct: Optional[LoadGenerators] = None
    wamp: Optional[WampSubscribers] = None
    with tempfile.TemporaryDirectory(prefix="statushub-wamp-bench-") as workdir:
        try:
            router = Router(args.router, workdir)
            server = Server(
                "hub", None, extra=("--wamp-url", router.hubUrl), script="wamp/server.py",
                env=dict(os.environ, STATUSHUB_WAMP_TICKET=router.ticket),
            )
            waitJoined(server)
            workers = max(1, min(args.workers, n // 250 or 1))
            direct = LoadGenerators(workers, None)
            direct.checkClock()
            direct.connect("hub", server.url, n, args.concurrency, True)
            wamp = WampSubscribers(workers)
            wamp.checkClock()
            started = time.monotonic()
            wamp.connect(router.url, n, args.concurrency)
            log(f"  {n} direct clients and {n} WAMP subscribers "
                f"(subscribed in {time.monotonic() - started:.1f} s)")

            samples = []
            seq = 1000
            for i in range(args.warmup + args.broadcasts):
                seq += 1
                hubCpu0, routerCpu0 = server.stats()["cpu"], router.cpuNs()
                t0, t1, clients, sent, answered = server.broadcast(seq)
                if not sent <= t0 <= t1 <= answered:
                    raise RuntimeError("the hub's clock is not the harness's CLOCK_MONOTONIC")
                events, complete = direct.waitDone("hub", seq, args.timeout)
                receipts = wamp.waitDone(seq, args.timeout)
                time.sleep(args.settle)
                if i < args.warmup:
                    continue
                lasts = [int(e["last"]) for e in events if e["last"] is not None]
                late = [(r - t0) / 1e6 for r in receipts]
                samples.append({
                    "seq": seq,
                    "direct_last_ms": (max(lasts) - t0) / 1e6 if lasts else None,
                    "direct_lost": n - sum(e["count"] for e in events),
                    "wamp_first_ms": min(late) if late else None,
                    "wamp_p50_ms": percentile(late, 0.5) if late else None,
                    "wamp_p99_ms": percentile(late, 0.99) if late else None,
                    "wamp_last_ms": max(late) if late else None,
                    "wamp_lost": n - len(receipts),
                    "hub_cpu_ms": (server.stats()["cpu"] - hubCpu0) / 1e6,
                    "router_cpu_ms": (router.cpuNs() - routerCpu0) / 1e6,
                })

            def median(key: str) -> Optional[float]:
                values = [s[key] for s in samples if s[key] is not None]
                return percentile(values, 0.5) if values else None

            def mean(key: str) -> float:
                return sum(s[key] for s in samples) / len(samples)

            return {
                "n": n,
                "router": args.router,
                "broadcasts": len(samples),
                "direct_last_p50_ms": median("direct_last_ms"),
                "wamp_subscriber_p50_ms": median("wamp_p50_ms"),
                "wamp_subscriber_p99_ms": median("wamp_p99_ms"),
                "wamp_last_p50_ms": median("wamp_last_ms"),
                # means: the router's CPU clock ticks in 10 ms steps
                "hub_cpu_ms_mean": mean("hub_cpu_ms"),
                "router_cpu_ms_mean": mean("router_cpu_ms"),
                "direct_lost": sum(s["direct_lost"] for s in samples),
                "wamp_lost": sum(s["wamp_lost"] for s in samples),
                "samples": samples,
            }
        finally:
            for part in (wamp, direct, server, router):
                if part is not None:
                    part.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100,1000")
    parser.add_argument("--broadcasts", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--router", default="statushub.json")
    parser.add_argument("--workers", type=int, default=2,
                        help="processes per kind of client (direct, WAMP)")
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument("--settle", type=float, default=0.2)
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    args = parser.parse_args()

    results = []
    for n in [int(s) for s in args.sizes.split(",")]:
        log(f"N = {n} ({args.router})")
        results.append(runSize(args, n))

    # medians over the broadcasts; CPU: mean per broadcast
    header = ("N", "direct last", "WAMP p50", "WAMP p99", "WAMP last", "hub CPU",
              "router CPU", "lost d/w")
    print(" | ".join(header))
    print(" | ".join("---" for _ in header))
    for r in results:
        def ms(value: Optional[float]) -> str:
            return "-" if value is None else f"{value:.1f} ms"
        print(" | ".join([
            str(r["n"]), ms(r["direct_last_p50_ms"]), ms(r["wamp_subscriber_p50_ms"]),
            ms(r["wamp_subscriber_p99_ms"]), ms(r["wamp_last_p50_ms"]),
            ms(r["hub_cpu_ms_mean"]), ms(r["router_cpu_ms_mean"]),
            f"{r['direct_lost']}/{r['wamp_lost']}",
        ]))
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"argv": sys.argv, "results": results}, f, indent=2)


if __name__ == "__main__":
    main()
