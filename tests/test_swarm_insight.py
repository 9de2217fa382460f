"""
Logs and resource use on the real two-node swarm (tests/fixtures/swarm.py):
the log of every node comes from its service, wherever its task runs;
resource use where the hub reaches the host's engine, marked unavailable
elsewhere.  The real hub process, real WebSocket clients.
"""

from __future__ import annotations

from typing import Any

import pytest
import pytest_twisted

from tests.fixtures.docker import IMAGE
from tests.fixtures.swarm import HOST_LABEL
from tests.hubapi import delete, getJSON, post
from tests.waiting import waitUntil
from tests.wsclient import connectFeed

pytestmark = pytest.mark.docker

COUNTER = "i=1; while :; do echo $i; i=$((i+1)); usleep 50000; done"


def startHub(hub_process: Any, swarm: Any, hosts: str = "") -> Any:
    return hub_process(config=(
        f'[engine]\nkind = "swarm"\nurl = "{swarm.host}"\n{hosts}'
        "[polling]\ninterval = 0.5\n[docker]\ntimeout = 5\n"
    ))


def numbers(client) -> list[int]:
    return [int(line["text"]) for m in client.messages if m["type"] == "log"
            for line in m["lines"]]


def consecutive(values: list[int]) -> bool:
    return values == list(range(values[0], values[0] + len(values))) if values else True


@pytest_twisted.ensureDeferred
async def test_logsAndStatsOnASwarm(hub_process, swarm) -> None:
    """
    A node on each host printing a numbered line every 50 ms: two followers
    of the worker's node get the same consecutive numbers; stats: the
    manager's node has them, the worker's is marked unavailable, until the
    hub is told where the worker's engine is; a teardown ends the logs.
    """
    hub = startHub(hub_process, swarm)
    code, body = await post(hub, {"name": "swarmlogs", "nodes": [
        {"id": host, "image": IMAGE, "command": ["sh", "-c", COUNTER],
         "constraints": [f"node.labels.{HOST_LABEL}=={host}"]}
        for host in ("manager", "worker")
    ]}, path="/api/deployments")
    assert code == 202, body

    async def running():
        picture = await getJSON(hub, "/api/deployments/swarmlogs")
        nodes = picture["nodeStatuses"]
        return picture["deployStatus"] == "deployed" and len(nodes) == 2 and all(
            n["status"] == "running" for n in nodes)

    await waitUntil(running, timeout=90, interval=0.3, what="both nodes running")
    base = hub.wsUrl.rsplit("/ws/", 1)[0]
    url = f"{base}/ws/logs?deployment=swarmlogs&node=worker&tail=5"
    first, second = await connectFeed(url), await connectFeed(url)
    try:
        await waitUntil(lambda: len(numbers(first)) >= 40 and len(numbers(second)) >= 40,
                        timeout=60, what="two seconds of lines to both")
        for client in (first, second):
            assert consecutive(numbers(client)), numbers(client)
            assert {m["type"] for m in client.messages} == {"log"}
        tail = await getJSON(hub, "/api/deployments/swarmlogs/nodes/manager/logs?tail=5")
        got = [int(line["text"]) for line in tail["lines"]]
        assert len(got) == 5 and consecutive(got)

        async def stats():
            body = await getJSON(hub, "/api/deployments/swarmlogs/stats")
            byNode = {n["nodeId"]: n for n in body["nodes"]}
            return byNode if {"manager", "worker"} <= set(byNode) else None

        byNode = await waitUntil(stats, timeout=30, interval=0.5, what="stats of both")
        assert byNode["manager"]["memoryBytes"] > 0 and byNode["manager"]["cpu"] >= 0
        assert byNode["worker"]["cpu"] is None
        assert "host worker" in byNode["worker"]["unavailable"]

        # told where the worker's engine is, a hub reads it there too
        other = startHub(hub_process, swarm,
                         f'[engine.hosts]\nworker = "{swarm.worker.host}"\n')

        async def both():
            body = await getJSON(other, "/api/deployments/swarmlogs/stats")
            # (404 until it has adopted the deployment)
            byNode = {n["nodeId"]: n for n in body.get("nodes", [])}
            ready = all(byNode.get(h, {}).get("memoryBytes") for h in ("manager", "worker"))
            return byNode if ready else None

        await waitUntil(both, timeout=60, interval=0.5, what="stats of the worker's node")

        code, body = await delete(hub, "swarmlogs")
        assert code == 202, body
        for client in (first, second):
            await client.waitFor(lambda m: m["type"] == "log_end", timeout=60)
    finally:
        await first.close()
        await second.close()
