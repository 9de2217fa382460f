"""
Deployments end to end: the real hub process (C{twistd -n statushub}), the
private Docker engine, a real WebSocket client, the Docker CLI acting behind
the hub's back.
"""

from __future__ import annotations

from typing import Any

import pytest
import pytest_twisted
import treq
from twisted.internet.threads import deferToThread

from tests.hubapi import IMAGE, delete, getJSON, post, topology
from tests.waiting import waitUntil
from tests.wsclient import connectFeed

pytestmark = pytest.mark.docker


def nodeStatus(message: dict, index: int) -> Any:
    nodes = message["nodeStatuses"]
    return nodes[index]["status"] if len(nodes) > index else None


def allRunningHealthy(count: int):
    def check(message: dict) -> bool:
        nodes = message["nodeStatuses"]
        return (
            message["deployStatus"] == "deployed"
            and len(nodes) == count
            and all(n["status"] == "running" and n.get("health") == "healthy" for n in nodes)
        )

    return check


def startHub(hub_process, docker, interval: float = 0.5, events: bool = True, timeout: float = 3):
    return hub_process(
        config=(
            f"[polling]\ninterval = {interval}\n"
            f"[events]\nenabled = {'true' if events else 'false'}\n"
            f"[docker]\ntimeout = {timeout}\n"
        ),
        env={"DOCKER_HOST": docker.host},
    )


@pytest_twisted.ensureDeferred
async def test_deployHealthyThenTeardown(hub_process, docker) -> None:
    """
    Three nodes with health checks reach deployed, running and healthy, as a
    real client sees it; teardown ends with a final idle and no container left.
    """
    hub = startHub(hub_process, docker)
    client = await connectFeed(hub.wsUrl)
    try:
        code, body = await post(hub, topology())
        assert code == 202, body
        assert body["deployStatus"] == "deploying"
        deployed = await client.waitFor(allRunningHealthy(3), timeout=30)
        assert [n["nodeId"] for n in deployed["nodeStatuses"]] == ["n0", "n1", "n2"]
        assert len(docker.labelledContainers()) == 3

        code, body = await post(hub, topology())
        assert code == 409, body  # the name exists

        code, body = await delete(hub)
        assert code == 202
        final = await client.waitFor(
            lambda m: m["seq"] > deployed["seq"] and m["deployStatus"] == "idle", timeout=30
        )
        assert final["nodeStatuses"] == []
        assert final is client.messages[-1]
        assert docker.labelledContainers() == []
        code, body = await delete(hub)
        assert code == 200 and body["deployStatus"] == "idle"
        # seq is per deployment: the deployment's own messages, without a gap
        seqs = [m["seq"] for m in client.messages if m["deployment"] == "itest"]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    finally:
        await client.close()


@pytest_twisted.ensureDeferred
async def test_killAndRemoveBehindTheHubsBack(hub_process, docker) -> None:
    """
    With a poll interval far too long to notice, a container killed with the
    Docker CLI shows exited in the feed (the engine's events); one paused
    and unpaused shows paused, then running; a removed one shows missing.
    """
    hub = startHub(hub_process, docker, interval=30)
    client = await connectFeed(hub.wsUrl)
    try:
        code, _ = await post(hub, topology(nodes=2))
        assert code == 202
        deployed = await client.waitFor(
            lambda m: m["deployStatus"] == "deployed"
            and [n["status"] for n in m["nodeStatuses"]] == ["running", "running"],
            timeout=30,
        )
        victim = deployed["nodeStatuses"][0]["containerId"]
        await deferToThread(docker.docker, "kill", victim)
        # well under the 30 s poll interval: only the event stream can do it
        killed = await client.waitFor(
            lambda m: nodeStatus(m, 0) == "exited",
            timeout=5,
        )
        assert killed["nodeStatuses"][1]["status"] == "running"

        other = deployed["nodeStatuses"][1]["containerId"]
        await deferToThread(docker.docker, "pause", other)
        paused = await client.waitFor(lambda m: nodeStatus(m, 1) == "paused", timeout=5)
        await deferToThread(docker.docker, "unpause", other)
        await client.waitFor(
            lambda m: m["seq"] > paused["seq"] and nodeStatus(m, 1) == "running", timeout=5
        )
        await deferToThread(docker.docker, "rm", "-f", other)
        await client.waitFor(
            lambda m: nodeStatus(m, 1) == "missing",
            timeout=5,
        )
    finally:
        await client.close()


@pytest_twisted.ensureDeferred
async def test_removedShowsMissingByPolling(hub_process, docker) -> None:
    """
    Events off: polling alone finds a removed container missing.
    """
    hub = startHub(hub_process, docker, events=False)
    client = await connectFeed(hub.wsUrl)
    try:
        await post(hub, topology(nodes=1))
        deployed = await client.waitFor(
            lambda m: m["deployStatus"] == "deployed" and m["nodeStatuses"], timeout=30
        )
        await deferToThread(docker.docker, "rm", "-f", deployed["nodeStatuses"][0]["containerId"])
        await client.waitFor(
            lambda m: nodeStatus(m, 0) == "missing",
            timeout=10,
        )
    finally:
        await client.close()


@pytest_twisted.ensureDeferred
async def test_invalidTopologyCreatesNothing(hub_process, docker) -> None:
    hub = startHub(hub_process, docker)
    for body, field in [
        (topology(privileged=True), "nodes[0].privileged"),
        ({"name": "x", "nodes": [{"id": "a", "image": IMAGE}, {"id": "a", "image": IMAGE}]},
         "nodes[1].id"),
        ({"nodes": []}, "name"),
    ]:
        code, answer = await post(hub, body)
        assert code == 400
        assert answer["field"] == field
        assert field in answer["error"]
    response = await treq.post(f"{hub.url}/api/deployment", data=b"{nope",
                               headers={"content-type": ["application/json"]})
    assert response.code == 400
    assert (await getJSON(hub, "/api/status"))["deployStatus"] == "idle"
    assert docker.labelledContainers() == []


@pytest_twisted.ensureDeferred
async def test_missingImageLeavesNothing(hub_process, docker) -> None:
    hub = startHub(hub_process, docker)
    body = topology(nodes=3)
    body["nodes"][2]["image"] = "statushub/no-such-image"
    code, _ = await post(hub, body)
    assert code == 202
    failed = await waitUntil(
        lambda: _status(hub, "failed"), timeout=30, interval=0.1, what="deploy failed"
    )
    assert "n2" in failed["error"] and "no-such-image" in failed["error"]
    assert docker.labelledContainers() == []
    # failed is not a dead end: deploying again works
    code, _ = await post(hub, topology(nodes=1))
    assert code == 202
    await waitUntil(lambda: _status(hub, "deployed"), timeout=30, interval=0.1)


async def _status(hub: Any, wanted: str) -> Any:
    picture = await getJSON(hub, "/api/status")
    return picture if picture["deployStatus"] == wanted else None


@pytest_twisted.ensureDeferred
async def test_engineRestartUnderDeployment(hub_process, docker) -> None:
    """
    The engine stops under a running deployment: the hub keeps serving and
    says the engine is unreachable (nodes unknown); the engine comes back:
    the hub sees it again by itself.
    """
    hub = startHub(hub_process, docker, timeout=2)
    client = await connectFeed(hub.wsUrl)
    try:
        await post(hub, topology(nodes=2))
        await client.waitFor(allRunningHealthy(2), timeout=30)
        await deferToThread(docker.stop)
        down = await client.waitFor(lambda m: m["engine"] == "unreachable", timeout=30)
        assert down["deployStatus"] == "deployed"
        assert (await getJSON(hub, "/healthz"))["engine"] == "unreachable"
        await client.waitFor(
            lambda m: [n["status"] for n in m["nodeStatuses"]] == ["unknown", "unknown"],
            timeout=30,
        )
        await deferToThread(docker.start)
        back = await client.waitFor(
            lambda m: m["seq"] > down["seq"] and m["engine"] == "reachable", timeout=30
        )
        # the engine stopped the containers with it; the hub says so
        assert all(n["status"] in ("exited", "running") for n in back["nodeStatuses"])
        assert (await getJSON(hub, "/healthz")) ["engine"] == "reachable"
        code, _ = await delete(hub)
        assert code == 202
        await client.waitFor(
            lambda m: m["seq"] > back["seq"] and m["deployStatus"] == "idle", timeout=60
        )
        assert docker.labelledContainers() == []
    finally:
        await client.close()


@pytest_twisted.ensureDeferred
async def test_hubRestartAdopts(hub_process, docker) -> None:
    hub = startHub(hub_process, docker)
    client = await connectFeed(hub.wsUrl)
    deployed = await _deployAndWait(hub, client, 2)
    await client.close()
    hub.stop()
    assert len(docker.labelledContainers()) == 2  # stopping the hub keeps them
    hub.start()
    client = await connectFeed(hub.wsUrl)
    try:
        adopted = await client.waitFor(allRunningHealthy(2), timeout=30)
        assert adopted["deployment"] == "itest"
        assert [(n["nodeId"], n["containerId"]) for n in adopted["nodeStatuses"]] == [
            (n["nodeId"], n["containerId"]) for n in deployed["nodeStatuses"]
        ]
        # and polling resumed: a change behind its back still shows
        await deferToThread(docker.docker, "kill", adopted["nodeStatuses"][1]["containerId"])
        await client.waitFor(
            lambda m: nodeStatus(m, 1) == "exited",
            timeout=10,
        )
    finally:
        await client.close()


async def _deployAndWait(hub: Any, client: Any, nodes: int) -> dict:
    code, _ = await post(hub, topology(nodes=nodes))
    assert code == 202
    return await client.waitFor(allRunningHealthy(nodes), timeout=30)


@pytest_twisted.ensureDeferred
async def test_healthFlipThroughEvents(hub_process, docker) -> None:
    """
    A health check that starts failing shows unhealthy, and healthy again
    when it recovers, long before a 30 s poll would notice.
    """
    hub = startHub(hub_process, docker, interval=30)
    client = await connectFeed(hub.wsUrl)
    try:
        body = {"name": "flip", "nodes": [{
            "id": "web", "image": IMAGE,
            "command": ["sh", "-c", "touch /tmp/ok; trap 'exit 0' TERM; sleep infinity & wait"],
            "healthcheck": {"test": ["CMD", "test", "-f", "/tmp/ok"], "interval": 1.0,
                            "retries": 1},
        }]}
        code, _ = await post(hub, body)
        assert code == 202
        healthy = await client.waitFor(allRunningHealthy(1), timeout=30)
        containerId = healthy["nodeStatuses"][0]["containerId"]
        await deferToThread(docker.docker, "exec", containerId, "rm", "/tmp/ok")
        sick = await client.waitFor(
            lambda m: m["nodeStatuses"] and m["nodeStatuses"][0].get("health") == "unhealthy",
            timeout=10,
        )
        assert sick["nodeStatuses"][0]["status"] == "running"
        await deferToThread(docker.docker, "exec", containerId, "touch", "/tmp/ok")
        await client.waitFor(
            lambda m: m["seq"] > sick["seq"] and allRunningHealthy(1)(m), timeout=10
        )
    finally:
        await client.close()
