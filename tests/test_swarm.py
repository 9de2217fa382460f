"""
The hub on a real two-node Docker Swarm (tests/fixtures/swarm.py): nodes
spread over both hosts and pinned by constraints, a host that dies, deploys
that fail, a hub restarted; real hub process, real WebSocket clients.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import pytest_twisted
from twisted.internet.threads import deferToThread

from statushub.resources import MIB
from tests.fixtures.docker import IMAGE
from tests.fixtures.swarm import HOST_LABEL
from tests.hubapi import SERVICE, delete, getJSON, post, topology
from tests.waiting import waitUntil
from tests.wsclient import connectFeed

pytestmark = pytest.mark.docker

POLL = 0.5


def startHub(hub_process: Any, swarm: Any) -> Any:
    return hub_process(
        config=(
            f'[engine]\nkind = "swarm"\nurl = "{swarm.host}"\n'
            f"[polling]\ninterval = {POLL}\n[docker]\ntimeout = 5\n"
        ),
    )


def running(name: str, count: int):
    def check(message: dict) -> bool:
        nodes = message["nodeStatuses"]
        return (
            message["deployment"] == name
            and message["deployStatus"] == "deployed"
            and len(nodes) == count
            and all(n["status"] == "running" and n.get("hostStatus") == "ready" for n in nodes)
        )

    return check


def status(name: str, word: str):
    return lambda m: m["deployment"] == name and m["deployStatus"] == word


async def nothingLeft(swarm: Any) -> None:
    """
    No labelled service on the swarm, no labelled container on either host.
    """
    def left() -> bool:
        return not (
            swarm.services()
            or swarm.manager.labelledContainers()
            or (swarm.worker.process.poll() is None and swarm.worker.labelledContainers())
        )

    await waitUntil(lambda: deferToThread(left), timeout=30, interval=0.3, what="nothing left")


@pytest_twisted.ensureDeferred
async def test_spreadAndPinned(hub_process, swarm) -> None:
    """
    Four nodes spread over both hosts, each with its service and host; a
    node pinned by a constraint lands there; teardown leaves nothing.
    """
    hub = startHub(hub_process, swarm)
    feed = await connectFeed(hub.wsUrl)
    code, body = await post(hub, topology("spread", nodes=4), path="/api/deployments")
    assert code == 202, body
    pinned = topology("pinned", nodes=1, constraints=[f"node.labels.{HOST_LABEL}==worker"])
    code, body = await post(hub, pinned, path="/api/deployments")
    assert code == 202, body

    spread = await feed.waitFor(running("spread", 4), timeout=90)
    assert {n["host"] for n in spread["nodeStatuses"]} == {"manager", "worker"}
    assert all(n["health"] == "healthy" for n in spread["nodeStatuses"])
    services = await deferToThread(swarm.services)
    names = await deferToThread(
        lambda: swarm.manager.docker("service", "ls", "--format", "{{.Name}}").split()
    )
    assert len(services) == 5
    # <deployment>_<node>_<digest of the owner, deployment and node>
    assert sorted(name.rsplit("_", 1)[0] for name in names) == [
        "pinned_n0", "spread_n0", "spread_n1", "spread_n2", "spread_n3"]
    # the node's containerId is its task's container, on the host it names
    for node in spread["nodeStatuses"]:
        engine = swarm.manager if node["host"] == "manager" else swarm.worker
        ids = await deferToThread(engine.labelledContainers, "spread")
        assert node["containerId"][:12] in ids

    [node] = (await feed.waitFor(running("pinned", 1), timeout=60))["nodeStatuses"]
    assert node["host"] == "worker"

    for name in ("spread", "pinned"):
        assert (await delete(hub, name))[0] == 202
        await feed.waitFor(status(name, "idle"), timeout=60)
    await nothingLeft(swarm)


@pytest_twisted.ensureDeferred
async def test_failedDeploysRollBack(hub_process, swarm) -> None:
    """
    An image that one host lacks, a constraint no host meets: the deploy
    fails saying why and removes the services it had created; a constraint
    that is not Swarm syntax is refused before anything is created.
    """
    await deferToThread(swarm.manager.docker, "tag", IMAGE, "statushub/manager-only")
    hub = startHub(hub_process, swarm)
    feed = await connectFeed(hub.wsUrl)

    noImage = topology("noimage", nodes=1)
    noImage["nodes"].append({
        "id": "lacking", "image": "statushub/manager-only", "command": SERVICE,
        "constraints": [f"node.labels.{HOST_LABEL}==worker"],
    })
    assert (await post(hub, noImage, path="/api/deployments"))[0] == 202
    failed = await feed.waitFor(status("noimage", "failed"), timeout=90)
    assert "lacking" in failed["error"] and "no such image" in failed["error"].lower(), failed
    await nothingLeft(swarm)

    nowhere = topology("nowhere", nodes=2)
    nowhere["nodes"][1]["constraints"] = [f"node.labels.{HOST_LABEL}==elsewhere"]
    assert (await post(hub, nowhere, path="/api/deployments"))[0] == 202
    failed = await feed.waitFor(status("nowhere", "failed"), timeout=90)
    assert "n1" in failed["error"] and "cannot be placed" in failed["error"], failed
    await nothingLeft(swarm)

    code, body = await post(
        hub, topology("bad", nodes=1, constraints=["hostname is b"]), path="/api/deployments"
    )
    assert code == 400 and "nodes[0].constraints[0]" in body["error"], body
    assert await deferToThread(swarm.services) == []
    for name in ("noimage", "nowhere"):
        await delete(hub, name)


@pytest_twisted.ensureDeferred
async def test_hostDies(hub_process, swarm) -> None:
    """
    The worker's dockerd SIGKILLed: its node without a restart policy turns
    unknown on a host that is down; the one with restart any runs again on
    the manager, in a new container; teardown still ends idle, with no
    service left (the dead host's tasks are not waited for).
    """
    hub = startHub(hub_process, swarm)
    feed = await connectFeed(hub.wsUrl)
    # place both nodes on the worker: the manager takes no new task meanwhile
    await deferToThread(
        swarm.manager.docker, "node", "update", "--availability", "pause", swarm.manager.nodeId
    )
    try:
        body = {"name": "fragile", "nodes": [
            {"id": "stays", "image": IMAGE, "command": SERVICE},
            {"id": "moves", "image": IMAGE, "command": SERVICE, "restart": "any"},
        ]}
        assert (await post(hub, body, path="/api/deployments"))[0] == 202
        before = await feed.waitFor(running("fragile", 2), timeout=60)
    finally:
        await deferToThread(
            swarm.manager.docker, "node", "update", "--availability", "active",
            swarm.manager.nodeId,
        )
    assert {n["host"] for n in before["nodeStatuses"]} == {"worker"}
    oldMoves = before["nodeStatuses"][1]["containerId"]

    await deferToThread(swarm.worker.kill)

    def hostDown(message: dict) -> bool:
        if not running("fragile", 2)(message) and len(message["nodeStatuses"]) != 2:
            return False
        stays, moves = message["nodeStatuses"]
        return (stays.get("hostStatus"), stays["status"], stays.get("host")) == ("down", "unknown", "worker")

    await feed.waitFor(hostDown, timeout=60)

    def moved(message: dict) -> bool:
        if message["deployment"] != "fragile" or len(message["nodeStatuses"]) != 2:
            return False
        moves = message["nodeStatuses"][1]
        return (moves["status"], moves.get("host"), moves.get("hostStatus")) == ("running", "manager", "ready")

    after = (await feed.waitFor(moved, timeout=90))["nodeStatuses"][1]
    assert after["containerId"] != oldMoves
    assert after["containerId"][:12] in await deferToThread(swarm.manager.labelledContainers)

    assert (await delete(hub, "fragile"))[0] == 202
    await feed.waitFor(status("fragile", "idle"), timeout=60)
    assert await deferToThread(swarm.services) == []
    assert (await getJSON(hub, "/api/deployments"))["deployments"] == []


@pytest_twisted.ensureDeferred
async def test_adoptedAfterRestart(hub_process, swarm) -> None:
    """
    A hub started on a swarm where its services run adopts them.
    """
    first = startHub(hub_process, swarm)
    feed = await connectFeed(first.wsUrl)
    assert (await post(first, topology("kept", nodes=2), path="/api/deployments"))[0] == 202
    before = await feed.waitFor(running("kept", 2), timeout=60)
    first.stop()

    second = startHub(hub_process, swarm)
    again = await connectFeed(second.wsUrl)
    adopted = await again.waitFor(running("kept", 2), timeout=30)
    assert [n["containerId"] for n in adopted["nodeStatuses"]] == [
        n["containerId"] for n in before["nodeStatuses"]
    ]
    assert (await delete(second, "kept"))[0] == 202
    await again.waitFor(status("kept", "idle"), timeout=60)
    await nothingLeft(swarm)


@pytest_twisted.ensureDeferred
async def test_managerEvents(swarm) -> None:
    """
    The manager's event stream tells of a service created: an event about
    no one container, which makes the hub poll at once.
    """
    from twisted.internet import reactor

    from statushub.engine.swarm import SwarmEngine

    engine = SwarmEngine(reactor, host=swarm.host)
    stream = await engine.events({"io.statushub.deployment": None})
    try:
        await deferToThread(
            swarm.manager.docker, "service", "create", "--detach", "--name", "events_probe",
            "--label", "io.statushub.deployment=events", "--restart-condition", "none",
            IMAGE, "sleep", "infinity",
        )
        # closing the stream (below) ends a read that times out
        event = await deferToThread(stream.next).addTimeout(30, reactor)
        assert (event.containerId, event.action) == ("", "service create")
    finally:
        stream.close()
        engine.stop()


@pytest_twisted.ensureDeferred
async def test_limitsOnTheSwarm(hub_process, swarm) -> None:
    """
    A service's task runs under the same limits as a container on one
    engine: the defaults, or the node's own; a node past its memory is
    killed by the OOM killer on its host while the other runs on.
    """
    hub = startHub(hub_process, swarm)
    feed = await connectFeed(hub.wsUrl)
    body = {"name": "capped", "nodes": [
        {"id": "calm", "image": IMAGE, "command": ["sleep", "infinity"]},
        # after a while: a task that fails before it is seen running fails
        # the deploy
        {"id": "hog", "image": IMAGE, "command": ["sh", "-c", "sleep 2; exec tail /dev/zero"],
         "resources": {"memory": "16m", "cpus": 0.5}},
    ]}
    assert (await post(hub, body, path="/api/deployments"))[0] == 202

    def hogDied(message: dict) -> bool:
        nodes = {n["nodeId"]: n for n in message["nodeStatuses"]}
        return (
            message["deployment"] == "capped"
            and message["deployStatus"] == "deployed"
            and nodes.get("hog", {}).get("status") == "failed"
        )

    died = await feed.waitFor(hogDied, timeout=90)
    nodes = {n["nodeId"]: n for n in died["nodeStatuses"]}
    assert nodes["calm"]["status"] == "running"
    assert "137" in nodes["hog"]["error"], nodes["hog"]

    def inspectOn(hostName: str, *what: str) -> dict:
        engine = swarm.manager if hostName == "manager" else swarm.worker
        return json.loads(engine.docker("inspect", *what))[0]

    def containerOf(serviceLabel: str) -> tuple[str, str]:
        for engine, name in ((swarm.manager, "manager"), (swarm.worker, "worker")):
            ids = engine.docker(
                "ps", "-aq", "--filter", f"label=io.statushub.node={serviceLabel}"
            ).split()
            if ids:
                return name, ids[0]
        raise AssertionError(f"no container of {serviceLabel}")

    for nodeId, memory, nanoCpus in (("calm", 512 * MIB, 10**9), ("hog", 16 * MIB, 5 * 10**8)):
        host, containerId = await deferToThread(containerOf, nodeId)
        found = await deferToThread(inspectOn, host, containerId)
        assert (found["HostConfig"]["Memory"], found["HostConfig"]["NanoCpus"]) == (
            memory, nanoCpus)
        assert found["HostConfig"]["LogConfig"] == {
            "Type": "json-file", "Config": {"max-size": "10m", "max-file": "3"}}
        if nodeId == "hog":
            assert found["State"]["OOMKilled"] is True
            assert found["State"]["ExitCode"] == 137
        else:
            assert found["State"]["Running"] is True

    assert (await delete(hub, "capped"))[0] == 202
    await feed.waitFor(status("capped", "idle"), timeout=60)
    await nothingLeft(swarm)
