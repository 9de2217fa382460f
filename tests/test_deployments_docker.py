"""
Several deployments at once, end to end: the real hub process, the private
Docker engine, real WebSocket clients on the unfiltered feed and on
filtered ones side by side, the Docker CLI acting behind the hub's back.
"""

from __future__ import annotations

from typing import Any

import pytest
import pytest_twisted
import treq
from twisted.internet.threads import deferToThread

from tests.hubapi import delete, getJSON, post, topology
from tests.waiting import waitUntil
from tests.wsclient import FeedClient, connectFeed

pytestmark = pytest.mark.docker

NAMES = ("alpha", "bravo", "charlie")


def startHub(hub_process, docker, interval: float = 0.5):
    return hub_process(
        config=f"[polling]\ninterval = {interval}\n[docker]\ntimeout = 3\n",
        env={"DOCKER_HOST": docker.host},
    )


def healthy(name: str, count: int = 2):
    def check(message: dict) -> bool:
        nodes = message["nodeStatuses"]
        return (
            message["deployment"] == name
            and message["deployStatus"] == "deployed"
            and len(nodes) == count
            and all(n["status"] == "running" and n.get("health") == "healthy" for n in nodes)
        )

    return check


def assertSeqNeverGoesBack(messages: list[dict]) -> None:
    """
    Within one epoch, each deployment's seq only grows, by one at a time;
    a new connection's snapshot may repeat the message last seen (the
    picture of no deployment, when it connects before the adoption), as it
    was: one seq is one message.
    """
    last: dict[tuple[str, Any], dict] = {}
    for message in messages:
        key = (message["epoch"], message["deployment"])
        if key in last:
            before = last[key]
            assert message["seq"] in (before["seq"], before["seq"] + 1), (key, before, message)
            if message["seq"] == before["seq"]:
                assert message == before
        last[key] = message


async def snapshot(client: FeedClient, count: int) -> list[dict]:
    """
    The first C{count} messages a client got (its snapshot, when nothing
    changes meanwhile).
    """
    await waitUntil(lambda: len(client.messages) >= count, what=f"{count} messages")
    return client.messages[:count]


async def deployThree(hub: Any, everything: FeedClient) -> dict[str, dict]:
    for name in NAMES:
        code, body = await post(hub, topology(name=name, nodes=2), path="/api/deployments")
        assert code == 202, body
        assert (body["deployment"], body["deployStatus"]) == (name, "deploying")
    return {name: await everything.waitFor(healthy(name), timeout=60) for name in NAMES}


@pytest_twisted.ensureDeferred
async def test_threeDeploymentsSideBySide(hub_process, docker) -> None:
    """
    Three topologies at once, followed by the unfiltered feed and by one
    filtered feed each: a duplicate name is refused; a kill in one shows in
    its own feed and in no other deployment's messages; tearing one down
    ends its feed with idle, drops it from the snapshot and leaves the
    others' containers alone.
    """
    hub = startHub(hub_process, docker)
    everything = await connectFeed(hub.wsUrl)
    [idle] = await snapshot(everything, 1)
    assert (idle["deployment"], idle["deployStatus"]) == (None, "idle")
    watchers = {
        name: await connectFeed(f"{hub.wsUrl}?deployment={name}") for name in NAMES
    }
    clients = [everything, *watchers.values()]
    try:
        # the singular paths with no deployment: idle, nothing to tear down
        assert (await getJSON(hub, "/api/status"))["deployment"] is None
        code, body = await delete(hub)
        assert code == 200 and body["deployStatus"] == "idle"
        for name, watcher in watchers.items():
            [first] = await snapshot(watcher, 1)
            assert (first["deployment"], first["deployStatus"]) == (name, "idle")
        deployed = await deployThree(hub, everything)
        for name, watcher in watchers.items():
            await watcher.waitFor(healthy(name), timeout=30)
        code, body = await post(hub, topology(name="bravo", nodes=1), path="/api/deployments")
        assert code == 409 and "'bravo'" in body["error"], body
        assert len(docker.labelledContainers()) == 6

        # snapshot: one message per deployment, in name order
        late = await connectFeed(hub.wsUrl)
        clients.append(late)
        assert [m["deployment"] for m in await snapshot(late, 3)] == list(NAMES)
        listed = await getJSON(hub, "/api/deployments")
        assert [p["deployment"] for p in listed["deployments"]] == list(NAMES)
        # the singular paths with several: ambiguous, and they say among what
        response = await treq.get(f"{hub.url}/api/status")
        assert response.code == 409
        assert (await response.json())["deployments"] == list(NAMES)
        code, body = await delete(hub)
        assert code == 409 and body["deployments"] == list(NAMES)
        assert len(docker.labelledContainers()) == 6
        picked = await getJSON(hub, "/api/status?deployment=charlie")
        assert picked["deployment"] == "charlie" and picked["deployStatus"] == "deployed"

        # a kill in bravo: bravo's feed and the unfiltered one, nobody else's
        victim = deployed["bravo"]["nodeStatuses"][0]["containerId"]
        await deferToThread(docker.docker, "kill", victim)
        killed = await watchers["bravo"].waitFor(
            lambda m: m["nodeStatuses"] and m["nodeStatuses"][0]["status"] == "exited",
            timeout=10,
        )
        assert killed["deployment"] == "bravo"
        await everything.waitFor(lambda m: m["seq"] == killed["seq"]
                                 and m["deployment"] == "bravo")
        for name in ("alpha", "charlie"):
            assert {m["deployment"] for m in watchers[name].messages} == {name}
            assert all(
                n["containerId"] != victim
                for m in everything.messages if m["deployment"] == name
                for n in m["nodeStatuses"]
            )
            assert [n["status"] for n in (await getJSON(hub, f"/api/deployments/{name}"))
                    ["nodeStatuses"]] == ["running", "running"]

        # tearing bravo down leaves alpha's and charlie's containers alone
        others = {name: docker.labelledContainers(name) for name in ("alpha", "charlie")}
        code, _ = await delete(hub, "bravo")
        assert code == 202
        final = await watchers["bravo"].waitFor(lambda m: m["deployStatus"] == "idle"
                                                and m["seq"] > killed["seq"], timeout=30)
        assert final["nodeStatuses"] == [] and final is watchers["bravo"].messages[-1]
        await everything.waitFor(lambda m: m["deployment"] == "bravo"
                                 and m["seq"] == final["seq"])
        assert docker.labelledContainers("bravo") == []
        for name, ids in others.items():
            assert sorted(docker.labelledContainers(name)) == sorted(ids)
        assert (await getJSON(hub, "/api/deployments/bravo")) == {
            "error": "no deployment named 'bravo'"}
        again = await connectFeed(hub.wsUrl)
        clients.append(again)
        assert [m["deployment"] for m in await snapshot(again, 2)] == ["alpha", "charlie"]

        # every deployment torn down: each feed's last message is its idle
        for name in ("alpha", "charlie"):
            code, _ = await delete(hub, name)
            assert code == 202
        for name in ("alpha", "charlie"):
            last = await watchers[name].waitFor(
                lambda m: m["deployStatus"] == "idle" and m["seq"] > 1, timeout=30)
            assert last["nodeStatuses"] == []
        assert docker.labelledContainers() == []
        for client in clients:
            assertSeqNeverGoesBack(client.messages)
    finally:
        for client in clients:
            await client.close()


@pytest_twisted.ensureDeferred
async def test_restartedHubAdoptsAllThree(hub_process, docker) -> None:
    """
    A restarted hub adopts every deployment, nodes and containers as they
    were, and polls them again; seq per deployment never goes back: the
    history's database keeps the epoch and the counts across the restart.
    """
    hub = startHub(hub_process, docker)
    everything = await connectFeed(hub.wsUrl)
    deployed = await deployThree(hub, everything)
    before = list(everything.messages)
    await everything.close()
    hub.stop()
    assert len(docker.labelledContainers()) == 6
    hub.start()
    everything = await connectFeed(hub.wsUrl)
    try:
        adopted = {name: await everything.waitFor(healthy(name), timeout=30) for name in NAMES}
        for name in NAMES:
            assert [(n["nodeId"], n["containerId"]) for n in adopted[name]["nodeStatuses"]] == [
                (n["nodeId"], n["containerId"]) for n in deployed[name]["nodeStatuses"]]
        late = await connectFeed(hub.wsUrl)
        try:
            assert [m["deployment"] for m in await snapshot(late, 3)] == list(NAMES)
        finally:
            await late.close()
        epochs = {m["epoch"] for m in before} | {m["epoch"] for m in everything.messages}
        assert len(epochs) == 1  # the same database: numbering goes on
        # polling resumed: a kill behind its back shows in its deployment
        victim = adopted["charlie"]["nodeStatuses"][1]["containerId"]
        await deferToThread(docker.docker, "kill", victim)
        await everything.waitFor(
            lambda m: m["deployment"] == "charlie" and m["nodeStatuses"][1]["status"] == "exited",
            timeout=10,
        )
        assertSeqNeverGoesBack(before + everything.messages)
    finally:
        await everything.close()


@pytest_twisted.ensureDeferred
async def test_partlyGoneDeploymentIsAdoptedMissing(hub_process, docker) -> None:
    """
    While the hub is down, one container of a deployment is removed: the
    restarted hub adopts the deployment with that node missing.
    """
    hub = startHub(hub_process, docker)
    everything = await connectFeed(hub.wsUrl)
    code, _ = await post(hub, topology(name="partial", nodes=3))
    assert code == 202
    deployed = await everything.waitFor(healthy("partial", 3), timeout=60)
    await everything.close()
    hub.stop()
    gone = deployed["nodeStatuses"][1]["containerId"]
    await deferToThread(docker.docker, "rm", "-f", gone)
    hub.start()
    watcher = await connectFeed(f"{hub.wsUrl}?deployment=partial")
    try:
        # (before it adopts, the hub answers with the last message it sent)
        adopted = await watcher.waitFor(
            lambda m: m["deployStatus"] == "deployed"
            and [(n["nodeId"], n["status"]) for n in m["nodeStatuses"]] == [
                ("n0", "running"), ("n1", "missing"), ("n2", "running")],
            timeout=30,
        )
        assert adopted["seq"] > deployed["seq"]
        code, _ = await delete(hub)
        assert code == 202
        final = await watcher.waitFor(
            lambda m: m["deployStatus"] == "idle" and m["seq"] > adopted["seq"], timeout=30)
        assert final["nodeStatuses"] == []
        assert docker.labelledContainers() == []
    finally:
        await watcher.close()
