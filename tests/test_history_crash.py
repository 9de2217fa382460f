"""
No C{(epoch, seq)} names two different messages, whatever happens to the
hub: killed (SIGKILL) while messages it has sent are still unwritten (the
test holds the database's write lock, so the writer cannot write them), or
asked about a deployment before it has adopted it again.  The real hub
process on the private Docker engine, real WebSocket clients, the real
database read by the hub's own API.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any, Iterable

import pytest
import pytest_twisted
from twisted.internet.threads import deferToThread

from tests.hubapi import getJSON, post, topology
from tests.waiting import waitUntil
from tests.wsclient import connectFeed

pytestmark = pytest.mark.docker

# [docker] timeout: a hub that cannot reach its engine says so soon
CONFIG = "[polling]\ninterval = 0.5\n[docker]\ntimeout = 3\n"


def startHub(hub_process: Any, docker: Any, database: Path) -> Any:
    return hub_process(config=CONFIG + f'[history]\npath = "{database}"\n',
                       env={"DOCKER_HOST": docker.host})


def quietTopology(name: str) -> dict:
    body = topology(name=name, nodes=1)
    del body["nodes"][0]["healthcheck"]  # only what the test does changes it
    return body


def status(message: dict) -> Any:
    nodes = message["nodeStatuses"]
    return (message["deployStatus"], nodes[0]["status"] if nodes else None)


def assertOneMessageEach(*streams: Iterable[dict]) -> int:
    """
    Every C{(epoch, deployment, seq)} seen in any of C{streams} is one
    message: the same everywhere it was seen.

    @return: how many such names were seen in more than one place.
    """
    seen: dict[tuple, dict] = {}
    shared = 0
    for stream in streams:
        for message in stream:
            key = (message["epoch"], message["deployment"], message["seq"])
            if key in seen:
                assert seen[key] == message, (key, seen[key], message)
                shared += 1
            seen[key] = message
    return shared


async def written(hub: Any, name: str, seq: int) -> None:
    async def upTo() -> bool:
        return (await getJSON(hub, f"/api/deployments/{name}/history"))["last"] >= seq

    await waitUntil(upTo, timeout=30, what=f"seq {seq} of {name} written")


@pytest_twisted.ensureDeferred
async def test_killedWithMessagesUnwritten(hub_process, docker, tmp_path) -> None:
    """
    The hub sends two changes that its writer cannot write (the test holds
    the database's lock) and is killed.  Started again, it tells no one a
    different story under an C{(epoch, seq)} a client already saw: not the
    messages it sends on, nor its history, nor a client's resume.
    """
    database = tmp_path / "history.db"
    hub = startHub(hub_process, docker, database)
    live = await connectFeed(hub.wsUrl + "?deployment=crash")
    code, body = await post(hub, quietTopology("crash"), path="/api/deployments")
    assert code == 202, body
    ready = await live.waitFor(lambda m: status(m) == ("deployed", "running"), timeout=60)
    await written(hub, "crash", ready["seq"])
    containerId = ready["nodeStatuses"][0]["containerId"]

    lock = sqlite3.connect(database, isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")  # the writer waits, then gives up
    # what is written: nothing more is, while the lock is held
    [kept] = lock.execute("SELECT last FROM counters WHERE deployment = 'crash'").fetchone()
    try:
        await deferToThread(docker.docker, "pause", containerId)
        paused = await live.waitFor(lambda m: status(m) == ("deployed", "paused"), timeout=30)
        await deferToThread(docker.docker, "unpause", containerId)
        await live.waitFor(
            lambda m: m["seq"] > paused["seq"] and status(m) == ("deployed", "running"),
            timeout=30,
        )
        hub.kill()
    finally:
        lock.rollback()
        lock.close()
    unwritten = [m for m in live.messages if m["seq"] > kept]
    assert len(unwritten) >= 2
    await live.waitForClose(timeout=30)

    hub.start()
    after = await connectFeed(hub.wsUrl + "?deployment=crash")
    # the first message of the restarted hub (before it, its snapshot may be
    # the last message it kept)
    adopted = await after.waitFor(lambda m: m["seq"] > kept, timeout=60)
    assertOneMessageEach(live.messages, after.messages)
    # a client that saw the paused message, and one that left before it
    resumedLate = await connectFeed(
        hub.wsUrl + f"?deployment=crash&since={unwritten[0]['seq']}&epoch={ready['epoch']}"
    )
    resumedEarly = await connectFeed(
        hub.wsUrl + f"?deployment=crash&since={kept}&epoch={ready['epoch']}"
    )
    for client in (resumedLate, resumedEarly):
        await client.waitFor(lambda m: status(m) == ("deployed", "running"), timeout=30)
    # the hub goes on: one more change after the restart
    await deferToThread(docker.docker, "pause", containerId)
    changed = await after.waitFor(lambda m: status(m) == ("deployed", "paused"), timeout=30)
    await written(hub, "crash", changed["seq"])
    history = await getJSON(hub, "/api/deployments/crash/history")

    assertOneMessageEach(
        live.messages, after.messages, resumedLate.messages, resumedEarly.messages,
        history["messages"],
    )
    # the hub could not prove its numbering complete: a new epoch
    assert adopted["epoch"] != ready["epoch"]
    assert changed["epoch"] == adopted["epoch"] == history["epoch"]
    # what it did keep is still there, as it was sent
    byseq = {m["seq"]: m for m in history["messages"]}
    for message in live.messages:
        if 0 < message["seq"] <= kept:
            assert byseq[message["seq"]] == message
    for client in (live, after, resumedLate, resumedEarly):
        await client.close()


@pytest_twisted.ensureDeferred
async def test_beforeAdoptionTheStoredMessage(hub_process, docker, tmp_path) -> None:
    """
    Restarted where it cannot reach its engine (so it never adopts), the
    hub answers about a deployment with the last message it sent about
    it, as it was sent, not an idle picture under that message's seq; once
    the engine is back and the deployment is not there any more, its end
    is a new message.
    """
    database = tmp_path / "history.db"
    hub = startHub(hub_process, docker, database)
    live = await connectFeed(hub.wsUrl + "?deployment=kept")
    code, body = await post(hub, quietTopology("kept"), path="/api/deployments")
    assert code == 202, body
    ready = await live.waitFor(lambda m: status(m) == ("deployed", "running"), timeout=60)
    await written(hub, "kept", ready["seq"])
    hub.stop()
    await live.waitForClose(timeout=30)
    last = live.messages[-1]

    hub.env["DOCKER_HOST"] = f"unix://{tmp_path}/no-engine.sock"
    hub.start()
    await waitUntil(lambda: any("unreachable" in line for line in hub.log[-50:]), timeout=30,
                    what="the engine found unreachable")
    again = await connectFeed(hub.wsUrl + "?deployment=kept")
    [first] = await waitUntil(lambda: again.messages, what="the snapshot")
    assert first == last
    assert await getJSON(hub, "/api/status?deployment=kept") == last
    everything = await connectFeed(hub.wsUrl)
    await waitUntil(lambda: everything.messages, what="the unfiltered snapshot")
    assertOneMessageEach(live.messages, again.messages, everything.messages)
    for client in (again, everything):
        await client.close()
    hub.stop()

    # the engine back, the deployment's container gone meanwhile
    for containerId in docker.labelledContainers("kept"):
        await deferToThread(docker.docker, "rm", "-f", containerId)
    hub.env["DOCKER_HOST"] = docker.host
    hub.start()
    back = await connectFeed(hub.wsUrl + "?deployment=kept")
    ended = await back.waitFor(lambda m: m["deployStatus"] == "idle", timeout=30)
    assert ended["seq"] == last["seq"] + 1 and ended["epoch"] == last["epoch"]
    assert await getJSON(hub, "/api/status?deployment=kept") == ended
    assertOneMessageEach(live.messages, again.messages, back.messages)
    await back.close()
