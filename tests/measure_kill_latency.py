"""
Measure kill-to-feed latency: how long after a container is killed behind
the hub's back a feed client hears of it, with the engine's event stream on
and with polling alone.  Not a test (it asserts nothing); run it as

    .venv/bin/python -m tests.measure_kill_latency [ROUNDS] [POLL_INTERVAL]

It starts a private dockerd and the real hub (C{twistd -n statushub}) as the
tests do, deploys one node, and ROUNDS times: starts the container again if
needed, waits for the feed to say running, takes the time, kills the
container through the engine's API, and takes the time again when the feed
client receives the message saying C{exited}.  Each kill comes at a random
point of the poll cycle.  Times are the client's
monotonic clock (the reactor's); the kill call itself is included.
"""

from __future__ import annotations

import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import docker as dockersdk
from twisted.internet import task
from twisted.internet.threads import deferToThread

import treq

from tests.fixtures.docker import IMAGE, privateEngine
from tests.fixtures.hubprocess import HubProcess
from tests.wsclient import connectFeed

TOPOLOGY = {"name": "latency", "nodes": [
    {"id": "victim", "image": IMAGE, "command": ["sleep", "infinity"]}]}


def nodeStatus(message: dict) -> Any:
    nodes = message["nodeStatuses"]
    return nodes[0]["status"] if nodes else None


async def measure(reactor: Any, engine: Any, events: bool, rounds: int, interval: float) -> list[float]:
    workdir = Path(tempfile.mkdtemp(prefix="latency-"))
    hub = HubProcess(
        workdir,
        f"[polling]\ninterval = {interval}\n[events]\nenabled = {str(events).lower()}\n",
        {"DOCKER_HOST": engine.host},
    ).start()
    client = await connectFeed(hub.wsUrl)
    api = dockersdk.APIClient(base_url=engine.host, version="1.41")
    samples = []
    try:
        response = await treq.post(f"{hub.url}/api/deployment",
                                   data=json.dumps(TOPOLOGY).encode(),
                                   headers={"content-type": ["application/json"]})
        assert response.code == 202, await response.text()
        running = await client.waitFor(
            lambda m: m["deployStatus"] == "deployed" and nodeStatus(m) == "running", 30)
        containerId = running["nodeStatuses"][0]["containerId"]
        for _ in range(rounds):
            await client.waitFor(lambda m: m is client.messages[-1]
                                 and nodeStatus(m) == "running", 30)
            # kill at a random point of the poll cycle: right after the poll
            # that showed "running" would measure the worst case every time
            await task.deferLater(reactor, random.uniform(0, interval), lambda: None)
            seen = len(client.messages)
            started = time.monotonic()
            await deferToThread(api.kill, containerId)
            await client.waitFor(
                lambda m: client.messages.index(m) >= seen and nodeStatus(m) == "exited", 30)
            samples.append(time.monotonic() - started)
            await deferToThread(api.start, containerId)
        await treq.delete(f"{hub.url}/api/deployment")
        await client.waitFor(lambda m: m["deployStatus"] == "idle"
                             and client.messages.index(m) > 0, 30)
    finally:
        await client.close()
        hub.stop()
        api.close()
    return samples


def summary(samples: list[float]) -> str:
    ms = sorted(s * 1000 for s in samples)
    return (f"n={len(ms)} median={statistics.median(ms):.0f} ms "
            f"min={ms[0]:.0f} ms max={ms[-1]:.0f} ms "
            f"mean={statistics.mean(ms):.0f} ms")


async def main(reactor: Any, rounds: str = "10", interval: str = "2.0") -> None:
    with privateEngine() as engine:
        for events in (True, False):
            samples = await measure(reactor, engine, events, int(rounds), float(interval))
            label = "events on " if events else "polling only"
            print(f"{label} (poll interval {interval} s): {summary(samples)}", flush=True)


if __name__ == "__main__":
    task.react(main, sys.argv[1:])
