"""
Following a node's log (issue 19): line-to-client latency, the hub's CPU per
line per client, lines dropped.

    .venv/bin/python bench/logs.py [--clients 100] [--duration 20] [--rate 1000]

A private dockerd (tests/fixtures/docker.py), the real hub (twistd
statushub, as tests/fixtures/hubprocess.py starts it), a deployment of one
node that prints consecutive numbers, --rate lines a second (in bursts of
50), and --clients followers of its log at /ws/logs
(bench/logclients.py, a process of their own).

Latency: from the engine's time on a line (when dockerd read it from the
container) to its receipt by a client; over every line of every client
after a warm-up.  Hub CPU: the hub process's user+system time over the same
window (/proc/PID/stat), divided by the lines delivered (lines x clients).
Dropped: numbers a client never got, and what log_gap messages said.

Prints a table and writes bench/results/logs.json.  Not a test: nothing
fails on a time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

from tests.fixtures.docker import IMAGE, privateEngine  # noqa: E402
from tests.fixtures.hubprocess import HubProcess  # noqa: E402

_TICKS = os.sysconf("SC_CLK_TCK")


def talker(rate: int) -> str:
    """
    A shell loop printing C{rate} consecutive numbers a second, in bursts of
    50 spread over each second (busybox has no sub-second clock: each
    second is counted out with C{date +%s}).
    """
    bursts = max(rate // 50, 1)
    pause = int(900_000 / bursts)  # microseconds; the rest is the bursts' own time
    return (
        "i=0; while :; do s=$(date +%s); k=0; "
        f"while [ $k -lt {bursts} ]; do seq $((i+1)) $((i+50)); i=$((i+50)); k=$((k+1)); "
        f"usleep {pause}; done; "
        'while [ "$(date +%s)" = "$s" ]; do usleep 5000; done; done'
    )


def cpuSeconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def loadAverage() -> float:
    return os.getloadavg()[0]


def post(url: str, body: dict) -> dict:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read())


def get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as answer:
        return json.loads(answer.read())


def waitFor(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not happen within {timeout} s")


def run(args: argparse.Namespace) -> dict:
    with privateEngine() as engine, tempfile.TemporaryDirectory(prefix="statushub-bench-") as tmp:
        hub = HubProcess(Path(tmp), "", env={"DOCKER_HOST": engine.host})
        hub.start()
        try:
            post(f"{hub.url}/api/deployments", {
                "name": "benchlogs",
                "nodes": [{"id": "talker", "image": IMAGE,
                           "command": ["sh", "-c", talker(args.rate)]}],
            })
            waitFor(
                lambda: get(f"{hub.url}/api/deployments/benchlogs")["deployStatus"] == "deployed",
                60, "the deployment",
            )
            url = f"{hub.wsUrl.rsplit('/ws/', 1)[0]}/ws/logs?deployment=benchlogs&node=talker&tail=0"
            clients = subprocess.Popen(
                [sys.executable, os.path.join(HERE, "logclients.py"), url,
                 "--clients", str(args.clients), "--duration", str(args.duration),
                 "--warmup", str(args.warmup)],
                stdout=subprocess.PIPE, cwd=ROOT,
            )
            time.sleep(args.warmup)
            load = [loadAverage()]
            cpu0 = cpuSeconds(hub.pid)
            started = time.monotonic()
            output, _ = clients.communicate(timeout=args.duration + 60)
            cpu = cpuSeconds(hub.pid) - cpu0
            window = time.monotonic() - started
            load.append(loadAverage())
            result = json.loads(output)
            metrics = urllib.request.urlopen(f"{hub.url}/metrics", timeout=10).read().decode()
        finally:
            hub.stop()
    delivered = max(result["lines_received"], 1)
    result.update({
        "rate_asked": args.rate,
        "rate_seen_per_client": result["lines_received"] / max(result["opened"], 1)
        / args.duration,
        "hub_cpu_s": cpu,
        "hub_cpu_share": cpu / window,
        "hub_cpu_us_per_line_per_client": cpu * 1e6 / delivered,
        "load_average": load,
        "log_streams_gauge": [line for line in metrics.splitlines()
                              if line.startswith("statushub_log_streams ")],
    })
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--rate", type=int, default=1000, help="lines a second the node prints")
    parser.add_argument("--out", default=os.path.join(HERE, "results", "logs.json"))
    args = parser.parse_args()
    if os.environ.get("BENCH_LOGS", "1") == "0":
        print("BENCH_LOGS=0: skipping the log benchmark", file=sys.stderr)
        return
    result = run(args)
    result["machine"] = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
    print(f"{args.clients} followers of one node printing {args.rate} lines/s, "
          f"{args.duration:.0f} s measured (load average {result['load_average'][0]:.1f}"
          f" -> {result['load_average'][1]:.1f}):")
    print("| clients | lines/s seen | line-to-client p50 ms | p99 ms | hub CPU µs/line/client "
          "| hub CPU share | lines missed | log_gap told | clients dropped |")
    print("|---|---|---|---|---|---|---|---|---|")
    print(f"| {result['opened']} | {result['rate_seen_per_client']:.0f} "
          f"| {result['latency_p50_ms']:.1f} | {result['latency_p99_ms']:.1f} "
          f"| {result['hub_cpu_us_per_line_per_client']:.2f} | {result['hub_cpu_share']:.2f} "
          f"| {result['lines_missed']} | {result['gaps_told']} | {result['dropped']} |")


if __name__ == "__main__":
    main()
