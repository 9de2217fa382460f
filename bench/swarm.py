"""
Figures for the Swarm engine, on a private two-node swarm on this machine
(tests/fixtures/swarm.py: two dockerds, manager 127.0.0.1, worker 127.0.0.2).

1. Engine calls per poll, and the time of one poll, at 10 and 100 services:
   the same list the hub's poll makes (statushub.engine.swarm.listSwarm),
   its client's calls counted.
2. Host failure to the hub: a real hub (twistd) with [engine] kind = "swarm",
   two nodes on the worker (one with restart "any"); the worker's dockerd
   SIGKILLed; the time from the kill until the hub's picture shows the node
   on that host C{hostStatus: down}, and until the node with a restart policy
   is C{running} on the manager (GET /api/deployments/NAME every 50 ms: the
   same picture the feed sends at the same moment).

Run: .venv/bin/python bench/swarm.py [--sizes 10,100] [--failovers 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any, Callable

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

import docker  # noqa: E402
from docker.types import ContainerSpec, RestartPolicy, ServiceMode, TaskTemplate  # noqa: E402

from statushub.engine import DEPLOYMENT_LABEL  # noqa: E402
from statushub.engine.docker import API_VERSION  # noqa: E402
from statushub.engine.swarm import listSwarm  # noqa: E402
from tests.fixtures.docker import IMAGE  # noqa: E402
from tests.fixtures.hubprocess import HubProcess  # noqa: E402
from tests.fixtures.swarm import privateSwarm  # noqa: E402


class CountingClient:
    def __init__(self, client: Any) -> None:
        self._client = client
        self.calls = 0

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self._client, name)

        def counted(*args: Any, **kw: Any) -> Any:
            self.calls += 1
            return method(*args, **kw)

        return counted


def waitFor(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.2)


def callsPerPoll(client: Any, sizes: list[int], polls: int = 10) -> list[dict]:
    results = []
    created: list[str] = []
    for size in sizes:
        while len(created) < size:
            index = len(created)
            spec = ContainerSpec(IMAGE, args=["sleep", "infinity"],
                                 labels={DEPLOYMENT_LABEL: "bench"})
            service = client.create_service(
                TaskTemplate(spec, restart_policy=RestartPolicy(condition="none")),
                name=f"bench_n{index}", labels={DEPLOYMENT_LABEL: "bench"},
                mode=ServiceMode("replicated", 1),
            )
            created.append(service["ID"])
        waitFor(
            lambda: sum(s.status == "running" for s in listSwarm(client, {DEPLOYMENT_LABEL: "bench"})) == size,
            600, f"{size} services running",
        )
        counting = CountingClient(client)
        times = []
        for _ in range(polls):
            started = time.perf_counter()
            states = listSwarm(counting, {DEPLOYMENT_LABEL: None})
            times.append(time.perf_counter() - started)
        assert len(states) == size
        results.append({
            "services": size,
            "callsPerPoll": counting.calls / polls,
            "pollMs": round(statistics.median(times) * 1000, 1),
        })
        print(f"{size} services: {counting.calls / polls:g} calls per poll, "
              f"{statistics.median(times) * 1000:.1f} ms per poll (median of {polls})", flush=True)
    for serviceId in created:
        client.remove_service(serviceId)
    waitFor(lambda: not listSwarm(client, {DEPLOYMENT_LABEL: None}), 300, "the services gone")
    return results


def request(method: str, url: str, body: Any = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as response:
        return json.loads(response.read())


def failover(cluster: Any, hub: HubProcess, attempt: int) -> dict:
    name = f"failover{attempt}"
    manager = cluster.manager
    manager.docker("node", "update", "--availability", "pause", manager.nodeId)
    try:
        request("POST", f"{hub.url}/api/deployments", {"name": name, "nodes": [
            {"id": "stays", "image": IMAGE, "command": ["sleep", "infinity"]},
            {"id": "moves", "image": IMAGE, "command": ["sleep", "infinity"], "restart": "any"},
        ]})

        def placed() -> bool:
            nodes = request("GET", f"{hub.url}/api/deployments/{name}")["nodeStatuses"]
            return len(nodes) == 2 and all(
                n["status"] == "running" and n.get("host") == "worker" for n in nodes
            )

        waitFor(placed, 60, "both nodes running on the worker")
    finally:
        manager.docker("node", "update", "--availability", "active", manager.nodeId)
    killed = time.monotonic()
    cluster.worker.kill()
    down = moved = None
    while down is None or moved is None:
        stays, moves = request("GET", f"{hub.url}/api/deployments/{name}")["nodeStatuses"]
        now = time.monotonic() - killed
        if down is None and stays.get("hostStatus") == "down":
            down = now
        if moved is None and moves["status"] == "running" and moves.get("host") == "manager":
            moved = now
        if now > 120:
            raise RuntimeError("the hub did not show the failover within 120 s")
        time.sleep(0.05)
    request("DELETE", f"{hub.url}/api/deployments/{name}")
    waitFor(lambda: name not in [d["deployment"] for d in
                                 request("GET", f"{hub.url}/api/deployments")["deployments"]],
            60, "the teardown")
    cluster.restartWorker()
    print(f"failover {attempt}: host down shown after {down:.1f} s, "
          f"node running on the manager after {moved:.1f} s", flush=True)
    return {"hostDownSeconds": round(down, 2), "movedSeconds": round(moved, 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10,100")
    parser.add_argument("--failovers", type=int, default=3)
    parser.add_argument("--poll-interval", type=float, default=2.0)
    options = parser.parse_args()
    sizes = [int(s) for s in options.sizes.split(",") if s]
    results: dict[str, Any] = {}
    with privateSwarm() as cluster, tempfile.TemporaryDirectory() as workdir:
        client = docker.APIClient(base_url=cluster.host, version=API_VERSION, timeout=60)
        results["callsPerPoll"] = callsPerPoll(client, sizes)
        hub = HubProcess(
            Path(workdir),
            config=(f'[engine]\nkind = "swarm"\nurl = "{cluster.host}"\n'
                    f"[polling]\ninterval = {options.poll_interval}\n"),
        ).start()
        try:
            results["failover"] = [failover(cluster, hub, i) for i in range(options.failovers)]
        finally:
            hub.stop()
    results["pollInterval"] = options.poll_interval
    out = Path(HERE) / "results" / time.strftime("%Y-%m-%dT%H%M-swarm.json", time.gmtime())
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
