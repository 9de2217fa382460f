"""
The benchmarks that need a real Docker engine (issue 5, items 2 and 3).

    .venv/bin/python bench/engine.py [--changes 20] [--poll-sizes 10,100,300]

A private dockerd (tests/fixtures/docker.py: its own data root and socket,
no networking, the statushub/busybox image imported from busybox-static) and
the real hub (bench/server_hub.py: statushub.tap's service tree, orchestrator
included), its engine reached through a counting proxy on a unix socket.

Change-to-client latency: a deployment of three nodes, 100 Node `ws` clients
(bench/loadgen.js), and 20 changes made with the Docker CLI on node "web"
(pause, unpause, kill, start, in turn, each at a random point of the poll
cycle), with the engine's event stream on and with polling alone.  For each
change: from the moment the engine says it happened (the timeNano of its
event, read with `docker events`; CLOCK_REALTIME, turned into
CLOCK_MONOTONIC with the offset between the two taken at start) to the moment
the last of the 100 clients has the first message showing it (loadgen
receipt times, CLOCK_MONOTONIC).  The time from the start of the CLI command
is recorded too.

Polling cost: 10, 100 and 300 labelled containers (created directly on the
engine: a topology has at most 32 nodes; the hub adopts them at start, as it
adopts any deployment it finds), polled once a second by the hub (one list
call a poll) and by the naive reference (bench/naive_poller.py, one inspect
per container), measured the same way: engine API requests per poll counted
by the proxy, CPU time of the polling process per poll.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from typing import Any, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, ROOT)

from fanout import LoadGenerators, Server, log, parseCpus, percentile  # noqa: E402

from statushub.engine import DEPLOYMENT_LABEL, INDEX_LABEL, NODE_LABEL  # noqa: E402
from tests.fixtures.docker import privateEngine  # noqa: E402

IMAGE = "statushub/busybox"
TOPOLOGY = {
    "name": "benchlatency",
    "nodes": [
        {"id": "web", "image": IMAGE, "command": ["sleep", "infinity"]},
        {"id": "db", "image": IMAGE, "command": ["sleep", "infinity"]},
        {"id": "cache", "image": IMAGE, "command": ["sleep", "infinity"]},
    ],
}
# the CLI command, the engine event that says it happened, the status shown
CHANGES = [
    ("pause", "pause", "paused"),
    ("unpause", "unpause", "running"),
    ("kill", "die", "exited"),
    ("start", "start", "running"),
]


class CountingProxy:
    """
    A unix-socket proxy in front of the engine that counts the API requests
    going through it, by method and path (API version and ids taken out).
    """

    REQUEST = re.compile(rb"(GET|POST|PUT|DELETE|HEAD) (/[^ ?]*)[^ ]* HTTP/1\.[01]\r\n")

    def __init__(self, path: str, target: str) -> None:
        self.path = path
        self.target = target
        self.counts: Counter = Counter()
        self._lock = threading.Lock()
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(path)
        self._listener.listen(64)
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def host(self) -> str:
        return f"unix://{self.path}"

    def snapshot(self) -> Counter:
        with self._lock:
            return Counter(self.counts)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            upstream.connect(self.target)
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, count: bool) -> None:
        try:
            while data := source.recv(65536):
                if count:
                    for method, path in self.REQUEST.findall(data):
                        kind = re.sub(rb"^/v[0-9.]+", b"", path)
                        kind = re.sub(rb"/[0-9a-f]{64}", b"/{id}", kind)
                        with self._lock:
                            self.counts[f"{method.decode()} {kind.decode()}"] += 1
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                try:
                    end.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self._listener.close()


class EngineEvents:
    """
    `docker events` for our containers, in a thread: (id, action, monotonic ns).
    """

    def __init__(self, engine: Any) -> None:
        self.queue: queue.Queue = queue.Queue()
        # CLOCK_REALTIME - CLOCK_MONOTONIC, taken as tightly as we can
        self.offset = min(
            (time.time_ns() - time.monotonic_ns() for _ in range(50)), key=abs
        )
        self.process = subprocess.Popen(
            ["docker", "events", "--format", "{{json .}}", "--filter", "type=container",
             "--filter", f"label={DEPLOYMENT_LABEL}"],
            env=engine.env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            event = json.loads(line)
            self.queue.put((event.get("id"), event.get("Action") or event.get("status"),
                            int(event["timeNano"]) - self.offset))

    def drain(self) -> None:
        while not self.queue.empty():
            self.queue.get_nowait()

    def wait(self, containerId: str, action: str, timeout: float = 10) -> Optional[int]:
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                cid, what, at = self.queue.get(timeout=remaining)
            except queue.Empty:
                break
            if cid == containerId and what == action:
                return at
        return None

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(5)


def hubConfig(directory: str, dockerHost: str, events: bool, interval: float) -> str:
    path = os.path.join(directory, f"hub-{'events' if events else 'polling'}-{interval}.toml")
    with open(path, "w") as config:
        config.write(
            f'[docker]\nhost = "{dockerHost}"\n'
            f"[events]\nenabled = {str(events).lower()}\n"
            f"[polling]\ninterval = {interval}\n"
        )
    return path


def http(method: str, url: str, body: Optional[dict] = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def waitFor(what: str, check: Any, timeout: float, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def nodeStatus(body: dict, nodeId: str) -> Optional[str]:
    for node in body.get("nodeStatuses", []):
        if node["nodeId"] == nodeId:
            return node["status"]
    return None


def receipts(loadgen: LoadGenerators, seq: int, clients: int, timeout: float) -> tuple[int, int]:
    """
    How many clients have message C{seq}, and when the last got it: asked
    until all have it or C{timeout} passes.
    """
    deadline = time.monotonic() + timeout
    while True:
        answers = []
        for index in range(len(loadgen.workers)):
            loadgen.send(index, cmd="query", group="hub", seq=seq)
            answers.append(loadgen.answer(index))
        count = sum(a["count"] for a in answers)
        if count >= clients or time.monotonic() > deadline:
            return count, max((int(a["last"]) for a in answers if a["last"]), default=0)
        time.sleep(0.01)


def changeLatency(args: argparse.Namespace, engine: Any, proxy: CountingProxy,
                  workdir: str, events: bool) -> dict[str, Any]:
    """
    One mode (events on or polling alone): 100 clients, 20 changes.
    """
    interval = args.poll_interval
    hub = Server("hub", args.server_cpus,
                 extra=("--config", hubConfig(workdir, proxy.host, events, interval)))
    loadgen: Optional[LoadGenerators] = None
    watcher = EngineEvents(engine)
    try:
        status = f"{hub.url.replace('ws://', 'http://').rsplit('/ws/', 1)[0]}/api/status"
        deployment = status.replace("/api/status", "/api/deployment")
        if waitFor("the hub to reach the engine",
                   lambda: http("GET", status)[1].get("engine") == "reachable" or None,
                   60) and http("GET", status)[1]["deployStatus"] == "idle":
            code, answer = http("POST", deployment, TOPOLOGY)
            if code != 202:
                raise RuntimeError(f"deploy: {code} {answer}")
        picture = waitFor(
            "the deployment to run",
            lambda: (lambda p: p if p["deployStatus"] == "deployed" and all(
                n["status"] == "running" for n in p["nodeStatuses"]) else None)(
                http("GET", status)[1]), 120)
        web = next(n["containerId"] for n in picture["nodeStatuses"] if n["nodeId"] == "web")
        clients = args.latency_clients
        loadgen = LoadGenerators(min(args.workers, 2), args.loadgen_cpus)
        loadgen.connect("hub", hub.url, clients, 8, True)
        for index in range(len(loadgen.workers)):
            loadgen.send(index, cmd="tap", group="hub")
        samples = []
        for i in range(args.changes):
            command, action, shown = CHANGES[i % len(CHANGES)]
            # a random point of the poll cycle
            time.sleep(random.uniform(0.3, 0.3 + interval))
            watcher.drain()
            while not loadgen.messages.empty():
                loadgen.messages.get_nowait()
            cli0 = time.monotonic_ns()
            engine.docker(command, web)
            cli1 = time.monotonic_ns()
            seq = None
            deadline = time.monotonic() + interval * 3 + 10
            while seq is None and time.monotonic() < deadline:
                try:
                    event = loadgen.messages.get(timeout=max(deadline - time.monotonic(), 0.01))
                except queue.Empty:
                    break
                if nodeStatus(json.loads(event["body"]), "web") == shown:
                    seq = event["seq"]
            happened = watcher.wait(web, action)
            if seq is None:
                samples.append({"change": command, "lost": clients, "seq": None})
                continue
            count, last = receipts(loadgen, seq, clients, timeout=10)
            samples.append({
                "change": command,
                "seq": seq,
                "lost": clients - count,
                "from_event_ms": (last - happened) / 1e6 if happened else None,
                "from_cli_ms": (last - cli0) / 1e6,
                "cli_ms": (cli1 - cli0) / 1e6,
            })
        fromEvent = [s["from_event_ms"] for s in samples if s.get("from_event_ms") is not None]
        fromCli = [s["from_cli_ms"] for s in samples if "from_cli_ms" in s]
        return {
            "events": events,
            "poll_interval_s": interval,
            "clients": clients,
            "changes": len(samples),
            "lost": sum(s["lost"] for s in samples),
            "from_event_p50_ms": percentile(fromEvent, 0.5) if fromEvent else None,
            "from_event_p99_ms": percentile(fromEvent, 0.99) if fromEvent else None,
            "from_cli_p50_ms": percentile(fromCli, 0.5) if fromCli else None,
            "from_cli_p99_ms": percentile(fromCli, 0.99) if fromCli else None,
            "samples": samples,
        }
    finally:
        watcher.stop()
        if loadgen is not None:
            loadgen.stop()
        hub.stop()


def createContainers(engine: Any, deployment: str, start: int, stop: int) -> None:
    """
    Labelled like a deployment's containers (so the hub adopts them), no
    network, created and started with the Docker CLI a few at a time.
    """
    def one(index: int) -> None:
        engine.docker(
            "run", "-d", "--network", "none", "--name", f"{deployment}-{index}",
            "--label", f"{DEPLOYMENT_LABEL}={deployment}",
            "--label", f"{NODE_LABEL}=n{index}",
            "--label", f"{INDEX_LABEL}={index}",
            IMAGE, "sleep", "infinity", timeout=120,
        )

    indexes = list(range(start, stop))
    errors: list[BaseException] = []

    def lane() -> None:
        while indexes and not errors:
            try:
                one(indexes.pop(0))
            except BaseException as e:  # noqa: BLE001 - reported below
                errors.append(e)

    lanes = [threading.Thread(target=lane) for _ in range(4)]
    for thread in lanes:
        thread.start()
    for thread in lanes:
        thread.join()
    if errors:
        raise errors[0]


def pollingCost(args: argparse.Namespace, engine: Any, proxy: CountingProxy,
                workdir: str) -> list[dict[str, Any]]:
    deployment = "benchpoll"
    results = []
    created = 0
    interval = 1.0
    for size in args.poll_sizes:
        started = time.monotonic()
        createContainers(engine, deployment, created, size)
        created = size
        log(f"  {size} containers running ({time.monotonic() - started:.0f} s to create)")
        row: dict[str, Any] = {"containers": size}
        for approach in ("hub", "naive"):
            if approach == "hub":
                server = Server("hub", args.server_cpus, extra=(
                    "--config", hubConfig(workdir, proxy.host, False, interval)))
            else:
                server = Server("naive", args.server_cpus, script="naive_poller.py", extra=(
                    "--docker-host", proxy.host, "--deployment", deployment,
                    "--interval", str(interval)))
            try:
                waitFor(f"{approach} to poll twice", lambda: server.counters()["polls"] >= 2,
                        60 + size)
                polls0, cpu0, calls0 = (server.counters()["polls"], server.stats()["cpu"],
                                        proxy.snapshot())
                waitFor(f"{approach} to poll {args.polls} times",
                        lambda: server.counters()["polls"] >= polls0 + args.polls,
                        args.polls * interval * 10 + 60)
                polls1, cpu1, calls1 = (server.counters()["polls"], server.stats()["cpu"],
                                        proxy.snapshot())
                polls = polls1 - polls0
                calls = calls1 - calls0
                row[approach] = {
                    "polls": polls,
                    "api_calls_per_poll": sum(calls.values()) / polls,
                    "calls_by_kind": {k: v / polls for k, v in calls.items()},
                    "cpu_ms_per_poll": (cpu1 - cpu0) / 1e6 / polls,
                }
            finally:
                server.stop()
            log(f"    {approach:5s} {row[approach]['api_calls_per_poll']:6.1f} engine calls "
                f"a poll, {row[approach]['cpu_ms_per_poll']:7.2f} ms CPU a poll")
        results.append(row)
    return results


def main() -> int:
    env = os.environ.get
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--changes", type=int, default=int(env("BENCH_CHANGES", "20")))
    parser.add_argument("--latency-clients", type=int, default=100)
    parser.add_argument("--poll-interval", type=float, default=2.0,
                        help="the hub's poll interval in the latency runs (the default's)")
    parser.add_argument("--poll-sizes", default=env("BENCH_POLL_SIZES", "10,100,300"))
    parser.add_argument("--polls", type=int, default=10, help="polls measured per size")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--server-cpus", default=env("BENCH_SERVER_CPUS", "0"))
    parser.add_argument("--loadgen-cpus", default=env("BENCH_LOADGEN_CPUS", "1"))
    parser.add_argument("--out", default=env("BENCH_ENGINE_OUT",
                                             os.path.join(HERE, "results", "engine.json")))
    args = parser.parse_args()
    args.poll_sizes = [int(s) for s in args.poll_sizes.split(",") if s]
    args.server_cpus = parseCpus(args.server_cpus)
    args.loadgen_cpus = parseCpus(args.loadgen_cpus)

    if env("BENCH_ENGINE", "1") == "0":
        log("BENCH_ENGINE=0: skipping the engine benchmarks")
        return 0
    for tool in ("dockerd", "docker"):
        if shutil.which(tool) is None:
            log(f"{tool} is not installed: skipping the engine benchmarks")
            return 0

    def interrupted(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupted)
    started = time.time()
    workdir = tempfile.mkdtemp(prefix="shbench-", dir="/tmp")
    results: dict[str, Any] = {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                        time.gmtime(started))}
    try:
        with privateEngine() as engine:
            target = engine.host[len("unix://"):]
            proxy = CountingProxy(os.path.join(workdir, "proxy.sock"), target)
            try:
                results["latency"] = []
                for events in (True, False):
                    log(f"change-to-client, events {'on' if events else 'off (polling alone)'}")
                    result = changeLatency(args, engine, proxy, workdir, events)
                    log(f"  from the engine's event: p50 {result['from_event_p50_ms']:.1f} ms, "
                        f"p99 {result['from_event_p99_ms']:.1f} ms; from the CLI call: p50 "
                        f"{result['from_cli_p50_ms']:.1f} ms; lost {result['lost']}")
                    results["latency"].append(result)
                engine.removeLabelled()
                log("polling cost")
                results["polling"] = pollingCost(args, engine, proxy, workdir)
            finally:
                proxy.close()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    results["seconds"] = round(time.time() - started)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out + ".tmp", "w") as out:
        json.dump(results, out, indent=1)
    os.replace(args.out + ".tmp", args.out)
    print(engineTable(results))
    log(f"results in {os.path.relpath(args.out, ROOT)} ({time.time() - started:.0f} s)")
    return 0


def engineTable(results: dict[str, Any]) -> str:
    clients = sorted({r["clients"] for r in results.get("latency", [])})
    rows = [f"| change-to-client ({'/'.join(map(str, clients))} clients) "
            "| p50 ms | p99 ms | from CLI call p50 ms | lost |",
            "|---|---|---|---|---|"]
    for r in results.get("latency", []):
        mode = "events on" if r["events"] else f"polling alone (every {r['poll_interval_s']:g} s)"
        rows.append(f"| {mode} | {r['from_event_p50_ms']:.1f} | {r['from_event_p99_ms']:.1f} | "
                    f"{r['from_cli_p50_ms']:.1f} | {r['lost']} |")
    rows += ["", "| containers | hub: engine calls/poll | hub: CPU ms/poll | naive: engine "
             "calls/poll | naive: CPU ms/poll |", "|---|---|---|---|---|"]
    for r in results.get("polling", []):
        rows.append(f"| {r['containers']} | {r['hub']['api_calls_per_poll']:.1f} | "
                    f"{r['hub']['cpu_ms_per_poll']:.2f} | {r['naive']['api_calls_per_poll']:.1f} | "
                    f"{r['naive']['cpu_ms_per_poll']:.2f} |")
    return "\n".join(rows)


if __name__ == "__main__":
    sys.exit(main())
