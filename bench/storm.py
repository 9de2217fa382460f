"""
Reconnect storm: N feed clients on a real hub (C{twistd statushub}), the hub
killed with SIGKILL and started again on the same port, and the time until
every client has a fresh snapshot (its first message on a connection begun
after the kill).  The clients (bench/storm.js, Node's C{ws}) reconnect as
the dashboard and C{statushub watch} do: backoff from 0.5 s doubling to
10 s, with jitter.

    python bench/storm.py                            # 5,000 clients, backlog 1024 and 50
    python bench/storm.py --clients 2000 --repeat 1 --backlogs default

C{default} is the hub's own listen endpoint, which names no backlog (the hub
makes it 1024); a number names it in the endpoint (C{backlog=50}: Twisted's
default, the hub before issue 9).  Prints a table; writes every figure to
bench/results/storm.json.  tests/test_storm.py runs the same storm once,
with a generous bound.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import queue
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Optional

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import raiseFileLimit  # noqa: E402
from tests.fixtures.hubprocess import LOOPBACK, HubProcess  # noqa: E402

STORM_JS = HERE / "storm.js"
# Nothing may reach an engine: the hub serves its idle picture.
HUB_CONFIG = '[docker]\nhost = "unix:///nonexistent/docker.sock"\n'


class StormClients:
    """
    The Node process that holds the clients, driven by JSON lines.
    """

    def __init__(self, workdir: Path) -> None:
        self._stderrPath = workdir / "storm-clients.err"
        self._stderr = open(self._stderrPath, "w")
        self.process = subprocess.Popen(
            ["node", str(STORM_JS)],
            cwd=HERE,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            bufsize=1,
        )
        self._events: "queue.Queue[Optional[dict]]" = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._events.put(json.loads(line))
        self._events.put(None)

    def _send(self, **command: Any) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()

    def _waitFor(self, event: str, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no {event!r} from the clients within {timeout} s")
            try:
                answer = self._events.get(timeout=remaining)
            except queue.Empty:
                continue
            if answer is None:
                self.process.wait(10)
                raise RuntimeError(
                    f"the clients' process exited ({self.process.returncode}) before "
                    f"{event!r}: {self._stderrPath.read_text()[-2000:]}"
                )
            if answer["ev"] == event:
                return answer

    def start(
        self,
        url: str,
        count: int,
        timeout: float,
        concurrency: int = 64,
        initial: float = 0.5,
        maximum: float = 10.0,
    ) -> None:
        """
        Connect C{count} clients; return once every one has its snapshot.
        """
        self._send(cmd="start", url=url, count=count, concurrency=concurrency,
                   initial=initial, maximum=maximum)
        self._waitFor("connected", timeout)

    def mark(self) -> int:
        """
        Count fresh snapshots from now on; returns the mark (monotonic ns).
        """
        self._send(cmd="mark")
        return int(self._waitFor("marked", 10)["at"])

    def status(self) -> dict:
        self._send(cmd="status")
        return self._waitFor("status", 10)

    def waitFresh(self, timeout: float) -> dict:
        """
        Wait until every client has a fresh snapshot.

        @raise TimeoutError: not all had one in time; the message says how
            many did.
        """
        try:
            return self._waitFor("fresh", timeout)
        except TimeoutError:
            status = self.status()
            raise TimeoutError(
                f"after {timeout} s only {status['fresh']} clients had a fresh snapshot "
                f"({status['attempts']} attempts, errors {status['errors']})"
            ) from None

    def close(self) -> None:
        """
        Close every client and end the process (killed if it lingers).
        """
        if self.process.poll() is None:
            try:
                self._send(cmd="close")
                self.process.wait(10)
            except (OSError, subprocess.TimeoutExpired):
                self.process.kill()
                self.process.wait()
        self._stderr.close()


def listenOverflows() -> int:
    """
    The kernel's count of connections dropped because an accept queue was
    full (TcpExt ListenOverflows, for this network namespace).
    """
    with open("/proc/net/netstat") as netstat:
        lines = [line.split() for line in netstat if line.startswith("TcpExt:")]
    names, values = lines[0], lines[1]
    return int(values[names.index("ListenOverflows")])


def cpuSeconds(pid: int) -> float:
    """
    User and system CPU time of process C{pid} so far.
    """
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def reconnectStorm(hub: HubProcess, clients: StormClients, timeout: float) -> dict:
    """
    Kill C{hub} (SIGKILL), start it again on the same port, and wait until
    every client of C{clients} has a fresh snapshot.  Times in seconds.
    """
    overflows = listenOverflows()
    markedAt = clients.mark()
    killedAt = time.monotonic_ns()
    hub.kill()
    hub.start(timeout=60)
    servingAt = time.monotonic_ns()
    assert hub.pid is not None
    startupCPU = cpuSeconds(hub.pid)
    fresh = clients.waitFresh(timeout)
    stormCPU = cpuSeconds(hub.pid) - startupCPU
    # the clients' times count from the mark, taken just before the kill
    afterKill = [(markedAt + t - killedAt) / 1e9 for t in fresh["times"]]
    down = (servingAt - killedAt) / 1e9
    afterRestart = [t - down for t in afterKill]
    return {
        "clients": len(afterKill),
        "down_s": down,
        "all_fresh_after_restart_s": afterRestart[-1],
        "p50_after_restart_s": percentile(afterRestart, 50),
        "p99_after_restart_s": percentile(afterRestart, 99),
        "all_fresh_after_kill_s": afterKill[-1],
        "attempts": fresh["attempts"],
        "errors": fresh["errors"],
        "listen_overflows": listenOverflows() - overflows,
        # the restarted hub's CPU from serving until all were back: mostly
        # the handshakes (and attempts that came in but were not completed)
        "hub_cpu_s": stormCPU,
    }


def percentile(sortedValues: list[float], q: float) -> float:
    if not sortedValues:
        return float("nan")
    position = (len(sortedValues) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(sortedValues) - 1)
    return sortedValues[low] + (sortedValues[high] - sortedValues[low]) * (position - low)


def stormOnce(workdir: Path, backlog: str, count: int, timeout: float) -> dict:
    listen = LOOPBACK if backlog == "default" else f"{LOOPBACK}:backlog={backlog}"
    hub = HubProcess(workdir, HUB_CONFIG, listen=listen)
    clients: Optional[StormClients] = None
    try:
        hub.start()
        clients = StormClients(workdir)
        clients.start(hub.wsUrl, count, timeout=300)
        return reconnectStorm(hub, clients, timeout)
    finally:
        if clients is not None:
            clients.close()
        hub.stop()


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def main() -> int:
    env = os.environ.get
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=int(env("BENCH_STORM_CLIENTS", "5000")))
    parser.add_argument("--backlogs", default="default,50",
                        help="comma-separated: 'default' (the hub's own) or a number")
    parser.add_argument("--repeat", type=int, default=int(env("BENCH_STORM_REPEAT", "3")))
    parser.add_argument("--timeout", type=float, default=120.0,
                        help="seconds to wait for every client to have a fresh snapshot")
    parser.add_argument("--out", default=str(HERE / "results" / "storm.json"))
    args = parser.parse_args()
    if env("BENCH_STORM", "1") == "0":
        log("BENCH_STORM=0: skipping the reconnect storm")
        return 0

    limit = raiseFileLimit()
    if limit < args.clients + 1024:
        log(f"RLIMIT_NOFILE is {limit}: too low for {args.clients} clients")
        return 2
    runs: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory(prefix="storm-") as tmp:
        for backlog in args.backlogs.split(","):
            runs[backlog] = []
            for repeat in range(args.repeat):
                workdir = Path(tmp) / f"{backlog}-{repeat}"
                workdir.mkdir()
                load = os.getloadavg()[0]
                result = stormOnce(workdir, backlog, args.clients, args.timeout)
                result["load_before"] = load
                result["load_after"] = os.getloadavg()[0]
                runs[backlog].append(result)
                log(
                    f"backlog {backlog} run {repeat + 1}: all {result['clients']} fresh "
                    f"{result['all_fresh_after_restart_s']:.2f} s after the restart "
                    f"({result['all_fresh_after_kill_s']:.2f} s after the kill, hub down "
                    f"{result['down_s']:.2f} s), p50 {result['p50_after_restart_s']:.2f} s, "
                    f"overflows {result['listen_overflows']}, hub CPU "
                    f"{result['hub_cpu_s']:.2f} s, load {load:.1f}"
                )

    print(table(runs, args.clients))
    report = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "kernel": platform.release(),
                    "somaxconn": Path("/proc/sys/net/core/somaxconn").read_text().strip()},
        "clients": args.clients,
        "file_limit": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
        "runs": runs,
    }
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(report, f, indent=1)
    log(f"figures: {args.out}")
    return 0


def table(runs: dict[str, list[dict]], clients: int) -> str:
    def median(values: list[float]) -> float:
        return percentile(sorted(values), 50)

    lines = [
        f"Reconnect storm, {clients} clients, hub killed (SIGKILL) and restarted "
        "(median of the runs; worst in brackets)",
        "",
        "| backlog | all fresh after restart, s | p50 after restart, s | all fresh after "
        "kill, s | hub down, s | hub CPU, s | ListenOverflows | load |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for backlog, results in runs.items():
        name = "1024 (default)" if backlog == "default" else backlog

        def figure(key: str) -> str:
            values = [r[key] for r in results]
            return f"{median(values):.2f} ({max(values):.2f})"

        overflows = ", ".join(str(r["listen_overflows"]) for r in results)
        load = ", ".join(f"{r['load_before']:.1f}" for r in results)
        lines.append(
            f"| {name} | {figure('all_fresh_after_restart_s')} | "
            f"{figure('p50_after_restart_s')} | {figure('all_fresh_after_kill_s')} | "
            f"{figure('down_s')} | {figure('hub_cpu_s')} | {overflows} | {load} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
