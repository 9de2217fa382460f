"""
Failover of several hubs as one (issue 21): how long the feed stays without
a leader when the leader dies.

    .venv/bin/python bench/failover.py [--runs 5] [--lease 5] [--hubs 3]

A private dockerd (tests/fixtures/docker.py), a Redis of its own
(tests/fixtures/redis.py: Debian's redis-server on loopback, nothing kept on
disk) and three real hub processes (`twistd -n statushub`, as
tests/fixtures/hubprocess.py starts them) with the same `[cluster] redis`
and `[cluster] lease`.  A deployment of one node runs; a WebSocket client
(the `websockets` library) follows it on every hub.

Each run: the leader is killed (SIGKILL) and, at once, the node's container
is paused with the Docker CLI: a change only a leader can see (it is found
by the engine's events or a poll, which only the leader makes).  Measured
from the SIGKILL (CLOCK_MONOTONIC, in this process, which also reads the
clients' receipts):

  - leader: until a survivor's /healthz says "leader" (polled every 20 ms);
  - change: until the message showing the node paused reaches the last
    survivor's client.

Then the container is unpaused, the killed hub started again (a follower
now), and the next run kills whoever leads.  The goal: change <= lease + 2 s.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

from websockets.sync.client import connect  # noqa: E402

from tests.fixtures.docker import privateEngine  # noqa: E402
from tests.fixtures.hubprocess import HubProcess  # noqa: E402
from tests.fixtures.redis import RedisServer  # noqa: E402

IMAGE = "statushub/busybox"
TOPOLOGY = {
    "name": "failover",
    "nodes": [{"id": "web", "image": IMAGE, "command": ["sleep", "infinity"]}],
}


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def getJSON(hub: HubProcess, path: str) -> Any:
    with urllib.request.urlopen(hub.url + path, timeout=2) as response:
        return json.loads(response.read())


def role(hub: HubProcess) -> Optional[str]:
    try:
        return getJSON(hub, "/healthz").get("cluster")
    except Exception:
        return None


def waitFor(predicate: Any, timeout: float, what: str, interval: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not within {timeout} s")
        time.sleep(interval)


class Watcher:
    """
    A feed client of one hub, in a thread: every message with its receipt
    time (CLOCK_MONOTONIC).
    """

    def __init__(self, hub: HubProcess) -> None:
        self.received: list[tuple[int, dict]] = []
        self._socket = connect(hub.wsUrl + "?deployment=failover", open_timeout=10)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        try:
            for text in self._socket:
                self.received.append((time.monotonic_ns(), json.loads(text)))
        except Exception:
            pass

    def first(self, status: str, after: int) -> Optional[int]:
        for at, message in list(self.received):
            nodes = message["nodeStatuses"]
            if at >= after and nodes and nodes[0]["status"] == status:
                return at
        return None

    def close(self) -> None:
        self._socket.close()


def post(hub: HubProcess, body: dict) -> int:
    request = urllib.request.Request(
        hub.url + "/api/deployments", data=json.dumps(body).encode(),
        headers={"content-type": "application/json"}, method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--lease", type=float, default=5.0)
    parser.add_argument("--hubs", type=int, default=3)
    parser.add_argument("--out", default=os.path.join(HERE, "results", "failover.json"))
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))

    scratch = Path(tempfile.mkdtemp(prefix="statushub-failover-"))
    hubs: list[HubProcess] = []
    watchers: dict[HubProcess, Watcher] = {}
    redis = RedisServer(scratch / "redis")
    runs: list[dict[str, float]] = []
    with privateEngine() as docker:
        try:
            redis.start()
            config = (f'[cluster]\nredis = "{redis.url}"\nlease = {args.lease}\n'
                      "[polling]\ninterval = 2\n")
            for index in range(args.hubs):
                workdir = scratch / f"hub{index}"
                workdir.mkdir()
                hubs.append(HubProcess(workdir, config, env={"DOCKER_HOST": docker.host}).start())
            leader = waitFor(lambda: next((h for h in hubs if role(h) == "leader"), None),
                             30, "a leader")
            assert post(hubs[0], TOPOLOGY) == 202
            for hub in hubs:
                watchers[hub] = Watcher(hub)
            waitFor(lambda: all(w.first("running", 0) for w in watchers.values()), 60,
                    "the node running on every hub")
            container = [m for _, m in watchers[hubs[0]].received][-1]["nodeStatuses"][0][
                "containerId"]
            for run in range(args.runs):
                leader = waitFor(lambda: next((h for h in hubs if role(h) == "leader"), None),
                                 30, "a leader")
                survivors = [h for h in hubs if h is not leader]
                killed = time.monotonic_ns()
                leader.kill()  # SIGKILL
                docker.docker("pause", container)
                waitFor(
                    lambda: next((h for h in survivors if role(h) == "leader"), None),
                    args.lease + 30, "a new leader",
                )
                led = time.monotonic_ns()

                def arrived() -> Optional[list[int]]:
                    times = [watchers[h].first("paused", killed) for h in survivors]
                    return times if all(times) else None

                arrivals = waitFor(arrived, args.lease + 30, "the change on every survivor")
                runs.append({
                    "leader_s": (led - killed) / 1e9,
                    "change_s": (max(arrivals) - killed) / 1e9,
                })
                log(f"run {run + 1}: a new leader after {runs[-1]['leader_s']:.2f} s, "
                    f"the change on every survivor after {runs[-1]['change_s']:.2f} s")
                # back to three hubs, the node running again
                watchers.pop(leader).close()
                leader.start()
                watchers[leader] = Watcher(leader)
                unpaused = time.monotonic_ns()
                docker.docker("unpause", container)
                waitFor(lambda: all(w.first("running", unpaused) for w in watchers.values()),
                        60, "the node running again everywhere")
        finally:
            try:
                for watcher in watchers.values():
                    watcher.close()
                for hub in hubs:
                    hub.stop()
            finally:
                redis.stop()
                shutil.rmtree(scratch, ignore_errors=True)
    changes = sorted(r["change_s"] for r in runs)
    result = {
        "lease_s": args.lease,
        "hubs": args.hubs,
        "runs": runs,
        "change_median_s": changes[len(changes) // 2] if changes else None,
        "change_max_s": changes[-1] if changes else None,
        "goal_s": args.lease + 2,
        "load_average_at_end": os.getloadavg(),
    }
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as out:
        json.dump(result, out, indent=2)
    print(json.dumps({k: v for k, v in result.items() if k != "runs"}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
