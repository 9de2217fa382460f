"""
What a node may take of the host, on the real engine: the limits every
container gets (read back with C{docker inspect}), a node killed for going
past its memory while the others run on, and topologies refused before
anything is created.  The real hub process, the private Docker engine.
"""

from __future__ import annotations

import json
from typing import Any, Callable

import pytest
import pytest_twisted
import treq
from twisted.internet.threads import deferToThread

from statushub.resources import MIB
from tests.hubapi import IMAGE, post
from tests.wsclient import connectFeed

pytestmark = pytest.mark.docker

SLEEPER = {"image": IMAGE, "command": ["sleep", "infinity"]}
CAPPED_LOG = {"Type": "json-file", "Config": {"max-size": "10m", "max-file": "3"}}


def startHub(hub_process: Any, docker: Any, config: str = "") -> Any:
    return hub_process(
        config="[polling]\ninterval = 0.5\n[docker]\ntimeout = 5\n" + config,
        env={"DOCKER_HOST": docker.host},
    )


def inspect(docker: Any, containerId: str) -> dict:
    return json.loads(docker.docker("inspect", containerId))[0]


def deployedWith(name: str, check: Callable[[dict], bool]) -> Callable[[dict], bool]:
    def matches(message: dict) -> bool:
        return (
            message.get("deployment") == name
            and message["deployStatus"] == "deployed"
            and check({n["nodeId"]: n for n in message["nodeStatuses"]})
        )

    return matches


@pytest_twisted.ensureDeferred
async def test_everyContainerHasLimits(hub_process, docker) -> None:
    """
    A node that sets no resources runs under the hub's defaults (512 MiB
    with no swap beyond, one CPU); one that sets them under its own; every
    container's log is capped.
    """
    hub = startHub(hub_process, docker)
    feed = await connectFeed(hub.wsUrl + "?deployment=limits")
    body = {"name": "limits", "nodes": [
        {"id": "plain", **SLEEPER},
        {"id": "small", **SLEEPER, "resources": {"memory": "64m", "cpus": 0.5}},
    ]}
    code, answer = await post(hub, body, "/api/deployments")
    assert code == 202, answer
    deployed = await feed.waitFor(
        deployedWith("limits", lambda n: len(n) == 2 and all(
            x["status"] == "running" for x in n.values())),
        timeout=60,
    )
    ids = {n["nodeId"]: n["containerId"] for n in deployed["nodeStatuses"]}
    plain = (await deferToThread(inspect, docker, ids["plain"]))["HostConfig"]
    assert (plain["Memory"], plain["MemorySwap"], plain["NanoCpus"]) == (
        512 * MIB, 512 * MIB, 10**9)
    assert plain["LogConfig"] == CAPPED_LOG
    small = (await deferToThread(inspect, docker, ids["small"]))["HostConfig"]
    assert (small["Memory"], small["MemorySwap"], small["NanoCpus"]) == (
        64 * MIB, 64 * MIB, 5 * 10**8)
    assert small["LogConfig"] == CAPPED_LOG
    await feed.close()


@pytest_twisted.ensureDeferred
async def test_aNodePastItsMemoryIsKilledAlone(hub_process, docker) -> None:
    """
    A node that takes more memory than its limit (busybox's C{tail} keeps
    the one endless line of /dev/zero) is killed by the kernel's OOM killer
    (exit code 137); the node beside it runs on.
    """
    hub = startHub(hub_process, docker)
    feed = await connectFeed(hub.wsUrl + "?deployment=hungry")
    body = {"name": "hungry", "nodes": [
        {"id": "calm", **SLEEPER},
        {"id": "hog", "image": IMAGE, "command": ["tail", "/dev/zero"],
         "resources": {"memory": "16m"}},
    ]}
    code, answer = await post(hub, body, "/api/deployments")
    assert code == 202, answer
    killed = await feed.waitFor(
        deployedWith("hungry", lambda n: n.get("hog", {}).get("status") == "exited"),
        timeout=60,
    )
    nodes = {n["nodeId"]: n for n in killed["nodeStatuses"]}
    assert nodes["hog"]["exitCode"] == 137
    assert nodes["calm"]["status"] == "running"
    hog = await deferToThread(inspect, docker, nodes["hog"]["containerId"])
    assert hog["State"]["OOMKilled"] is True
    assert hog["HostConfig"]["Memory"] == 16 * MIB
    calm = await deferToThread(inspect, docker, nodes["calm"]["containerId"])
    assert calm["State"]["Running"] is True and calm["State"]["OOMKilled"] is False
    await feed.close()


@pytest_twisted.ensureDeferred
async def test_refusedTopologiesCreateNothing(hub_process, docker) -> None:
    """
    Over real sockets, as JSON: a trailing newline, a number that is not
    finite, a NUL, a health check too often, resources above this hub's
    maxima: each is 400 naming the field, and no container is made.
    """
    hub = startHub(hub_process, docker, "[deploy]\nmax_memory = \"1g\"\nmax_cpus = 1.5\n")
    node = {"id": "web", **SLEEPER}
    cases = [
        ({"name": "abc\n", "nodes": [node]}, "name"),
        ({"name": "abc", "nodes": [{**node, "id": "a\n"}]}, "nodes[0].id"),
        ({"name": "abc", "nodes": [{**node, "image": IMAGE + "\n"}]}, "nodes[0].image"),
        ({"name": "abc", "nodes": [{**node, "env": {"A\n": "x"}}]}, "nodes[0].env.A\n"),
        ({"name": "abc", "nodes": [{**node, "healthcheck": {
            "test": ["CMD", "true"], "interval": float("nan")}}]}, "nodes[0].healthcheck.interval"),
        ({"name": "abc", "nodes": [{**node, "healthcheck": {
            "test": ["CMD", "true"], "timeout": float("inf")}}]}, "nodes[0].healthcheck.timeout"),
        ({"name": "abc", "nodes": [{**node, "healthcheck": {
            "test": ["CMD", "true"], "interval": 0.1}}]}, "nodes[0].healthcheck.interval"),
        ({"name": "abc", "nodes": [{**node, "env": {"A": "x\x00"}}]}, "nodes[0].env.A"),
        ({"name": "abc", "nodes": [{**node, "resources": {"memory": "2g"}}]},
         "nodes[0].resources.memory"),
        ({"name": "abc", "nodes": [{**node, "resources": {"cpus": 2}}]},
         "nodes[0].resources.cpus"),
        ({"name": "abc", "nodes": [{**node, "resources": {"cpus": float("nan")}}]},
         "nodes[0].resources.cpus"),
    ]
    for body, field in cases:
        # Python writes NaN and Infinity as JavaScript does; JSON has neither
        response = await treq.post(
            f"{hub.url}/api/deployments", data=json.dumps(body).encode(),
            headers={"content-type": ["application/json"]},
        )
        answer = json.loads(await response.content())
        assert (response.code, answer.get("field")) == (400, field), answer
    listing = await treq.get(f"{hub.url}/api/deployments")
    assert json.loads(await listing.content())["deployments"] == []
    assert docker.labelledContainers() == []
