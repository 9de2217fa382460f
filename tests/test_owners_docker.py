"""
Owners and names on the real engine: two hub processes with different
C{[deploy] owner} on one private engine, deployments whose names join alike,
and containers made before owners.
"""

from __future__ import annotations

import json
import re
from typing import Any, Callable

import pytest
import pytest_twisted
from twisted.internet.threads import deferToThread

from tests.hubapi import IMAGE, delete, getJSON, post
from tests.wsclient import connectFeed

pytestmark = pytest.mark.docker

SLEEPER = {"image": IMAGE, "command": ["sleep", "infinity"]}


def startHub(hub_process: Any, docker: Any, owner: str = "") -> Any:
    return hub_process(
        config="[polling]\ninterval = 0.5\n[docker]\ntimeout = 5\n"
        + (f'[deploy]\nowner = "{owner}"\n' if owner else ""),
        env={"DOCKER_HOST": docker.host},
    )


def running(name: str, count: int) -> Callable[[dict], bool]:
    def check(message: dict) -> bool:
        nodes = message["nodeStatuses"]
        return (
            message["deployment"] == name
            and message["deployStatus"] == "deployed"
            and len(nodes) == count
            and all(n["status"] == "running" for n in nodes)
        )

    return check


def idle(name: str) -> Callable[[dict], bool]:
    return lambda m: m["deployment"] == name and m["deployStatus"] == "idle"


def containers(docker: Any, *filters: str) -> dict[str, dict]:
    """
    Every container the filters match: full id -> its labels, name, state.
    """
    ids = docker.docker("ps", "-aq", "--no-trunc", *(f"--filter={f}" for f in filters)).split()
    if not ids:
        return {}
    return {
        found["Id"]: {"labels": found["Config"]["Labels"], "name": found["Name"].lstrip("/"),
                      "running": found["State"]["Running"]}
        for found in json.loads(docker.docker("inspect", *ids))
    }


def deployments(hub: Any) -> Any:
    return getJSON(hub, "/api/deployments")


@pytest_twisted.ensureDeferred
async def test_twoOwnersOnOneEngine(hub_process, docker) -> None:
    """
    Two hubs with different owners deploy the same name side by side; each
    lists, follows and tears down only its own, and a restarted hub adopts
    nothing of the other's.
    """
    ops = startHub(hub_process, docker, "ops")
    dev = startHub(hub_process, docker, "dev")
    opsFeed = await connectFeed(ops.wsUrl)
    devFeed = await connectFeed(dev.wsUrl)
    shared = {"name": "shared", "nodes": [{"id": "web", **SLEEPER}, {"id": "db", **SLEEPER}]}
    assert (await post(ops, shared, "/api/deployments"))[0] == 202
    assert (await post(dev, shared, "/api/deployments"))[0] == 202
    devOnly = {"name": "devonly", "nodes": [{"id": "web", **SLEEPER}]}
    assert (await post(dev, devOnly, "/api/deployments"))[0] == 202
    opsShared = await opsFeed.waitFor(running("shared", 2), timeout=60)
    devShared = await devFeed.waitFor(running("shared", 2), timeout=60)
    await devFeed.waitFor(running("devonly", 1), timeout=60)

    # each container says whose it is, and no two share a name
    opsContainers = await deferToThread(containers, docker, "label=io.statushub.owner=ops")
    devContainers = await deferToThread(containers, docker, "label=io.statushub.owner=dev")
    assert {c["name"] for c in opsContainers.values()} == {"ops.shared.web", "ops.shared.db"}
    assert {c["name"] for c in devContainers.values()} == {
        "dev.shared.web", "dev.shared.db", "dev.devonly.web"}
    assert {n["containerId"] for n in opsShared["nodeStatuses"]} == set(opsContainers)
    assert {n["containerId"] for n in devShared["nodeStatuses"]} <= set(devContainers)
    assert [d["deployment"] for d in (await deployments(ops))["deployments"]] == ["shared"]
    assert sorted(d["deployment"] for d in (await deployments(dev))["deployments"]) == [
        "devonly", "shared"]

    # a teardown by one owner leaves the other's deployment of that name
    assert (await delete(ops, "shared"))[0] == 202
    await opsFeed.waitFor(idle("shared"), timeout=60)
    assert await deferToThread(containers, docker, "label=io.statushub.owner=ops") == {}
    left = await deferToThread(containers, docker, "label=io.statushub.owner=dev")
    assert set(left) == set(devContainers) and all(c["running"] for c in left.values())

    # a restarted hub adopts its owner's only: here, nothing
    await opsFeed.close()
    ops.stop()
    ops.start()
    assert (await deployments(ops))["deployments"] == []
    # and the other hub saw none of it: its own containers only, throughout
    theirs = {n["containerId"] for m in devFeed.messages for n in m["nodeStatuses"]}
    assert theirs <= set(devContainers)
    assert [m["deployStatus"] for m in devFeed.messages if m["deployment"] == "shared"][-1] == (
        "deployed")
    assert not any(m["deployStatus"] in ("tearing_down", "idle")
                   for m in devFeed.messages if m["deployment"] == "shared")
    await devFeed.close()


@pytest_twisted.ensureDeferred
async def test_namesThatJoinAlike(hub_process, docker) -> None:
    """
    C{a-b}/C{c} and C{a}/C{b-c} were one container name; now two
    deployments run side by side.
    """
    hub = startHub(hub_process, docker)
    feed = await connectFeed(hub.wsUrl)
    for name, node in (("a-b", "c"), ("a", "b-c")):
        body = {"name": name, "nodes": [{"id": node, **SLEEPER}]}
        code, answer = await post(hub, body, "/api/deployments")
        assert code == 202, answer
    first = await feed.waitFor(running("a-b", 1), timeout=60)
    second = await feed.waitFor(running("a", 1), timeout=60)
    assert first["nodeStatuses"][0]["containerId"] != second["nodeStatuses"][0]["containerId"]
    found = await deferToThread(containers, docker, "label=io.statushub.deployment")
    assert sorted(c["name"] for c in found.values()) == ["statushub.a-b.c", "statushub.a.b-c"]
    assert all(c["running"] for c in found.values())
    await feed.close()


@pytest_twisted.ensureDeferred
async def test_containersFromBeforeOwners(hub_process, docker) -> None:
    """
    Containers without an owner label (as a statushub before owners made
    them) are left alone, and named in the log, by a hub with another
    owner; the default owner's hub adopts and tears them down.
    """
    def legacy(node: str, index: int) -> None:
        docker.docker(
            "run", "-d", "--network", "none", "--name", f"statushub-legacy-{node}",
            "--label", "io.statushub.deployment=legacy", "--label", f"io.statushub.node={node}",
            "--label", f"io.statushub.index={index}", "--label", "io.statushub.nodes=web,db",
            IMAGE, "sleep", "infinity",
        )

    for index, node in enumerate(("web", "db")):
        await deferToThread(legacy, node, index)
    ops = startHub(hub_process, docker, "ops")
    ops.waitForLine(re.compile(r"left alone: deployments made before owners.*\(legacy\)"))
    assert (await deployments(ops))["deployments"] == []

    hub = startHub(hub_process, docker)
    hub.waitForLine(re.compile(r"adopted deployment legacy .*made before owners"))
    [adopted] = (await deployments(hub))["deployments"]
    assert adopted["deployment"] == "legacy" and adopted["deployStatus"] == "deployed"
    feed = await connectFeed(hub.wsUrl)
    await feed.waitFor(running("legacy", 2), timeout=30)
    assert (await delete(hub, "legacy"))[0] == 202
    await feed.waitFor(idle("legacy"), timeout=60)
    assert docker.labelledContainers() == []
    await feed.close()
