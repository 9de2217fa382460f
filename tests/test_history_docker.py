"""
Node detail and the history end to end: the real hub process on the private
Docker engine, real WebSocket clients, the Docker CLI acting behind the
hub's back, the hub stopped and started again on its database.
"""

from __future__ import annotations

from typing import Any

import pytest
import pytest_twisted
from twisted.internet.threads import deferToThread

from tests.hubapi import getJSON, post, topology
from tests.waiting import waitUntil
from tests.wsclient import connectFeed

pytestmark = pytest.mark.docker

CONFIG = "[polling]\ninterval = 0.5\n[docker]\ntimeout = 3\n"


def startHub(hub_process: Any, docker: Any, extra: str = "") -> Any:
    return hub_process(config=CONFIG + extra, env={"DOCKER_HOST": docker.host})


def node(message: dict, nodeId: str = "n0") -> dict:
    return next(n for n in message["nodeStatuses"] if n["nodeId"] == nodeId)


def deployedWith(name: str, check: Any) -> Any:
    def matches(message: dict) -> bool:
        return (
            message["deployment"] == name
            and message["deployStatus"] == "deployed"
            and bool(message["nodeStatuses"])
            and check(message)
        )

    return matches


def running(message: dict) -> bool:
    return all(n["status"] == "running" for n in message["nodeStatuses"])


async def containerOf(hub: Any, name: str, nodeId: str = "n0") -> str:
    current = await getJSON(hub, f"/api/deployments/{name}")
    return node(current, nodeId)["containerId"]


@pytest_twisted.ensureDeferred
async def test_killedShowsExitCode(hub_process, docker) -> None:
    hub = startHub(hub_process, docker)
    feed = await connectFeed(hub.wsUrl + "?deployment=kill")
    code, body = await post(hub, topology(name="kill", nodes=1), path="/api/deployments")
    assert code == 202, body
    first = await feed.waitFor(deployedWith("kill", running), timeout=60)
    assert node(first)["since"].endswith("Z")
    await deferToThread(docker.docker, "kill", node(first)["containerId"])
    exited = await feed.waitFor(
        deployedWith("kill", lambda m: node(m)["status"] == "exited"), timeout=30
    )
    assert node(exited)["exitCode"] == 137
    assert node(exited)["since"] > node(first)["since"]
    await feed.close()


@pytest_twisted.ensureDeferred
async def test_failingCheckShowsItsOutput(hub_process, docker) -> None:
    hub = startHub(hub_process, docker)
    feed = await connectFeed(hub.wsUrl + "?deployment=sick")
    check = "test ! -f /tmp/fail || { echo 'disk on fire:' $(cat /tmp/fail); exit 1; }"
    nodes = topology(name="sick", nodes=1)
    nodes["nodes"][0]["healthcheck"] = {"test": ["CMD-SHELL", check], "interval": 1.0,
                                        "retries": 1}
    code, body = await post(hub, nodes, path="/api/deployments")
    assert code == 202, body
    healthy = await feed.waitFor(
        deployedWith("sick", lambda m: node(m).get("health") == "healthy"), timeout=60
    )
    assert "healthOutput" not in node(healthy)
    await deferToThread(
        docker.docker, "exec", node(healthy)["containerId"], "sh", "-c", "echo 42C > /tmp/fail"
    )
    sick = await feed.waitFor(
        deployedWith("sick", lambda m: "healthOutput" in node(m)), timeout=30
    )
    assert node(sick)["health"] == "unhealthy"
    assert node(sick)["healthOutput"] == "disk on fire: 42C"
    await feed.close()


@pytest_twisted.ensureDeferred
async def test_restartCount(hub_process, docker) -> None:
    """
    A node that keeps failing under C{restart: on-failure}: the engine
    restarts it, and the count shows.
    """
    hub = startHub(hub_process, docker)
    feed = await connectFeed(hub.wsUrl + "?deployment=flaky")
    body = topology(name="flaky", nodes=1, restart="on-failure",
                    command=["sh", "-c", "sleep 0.5; exit 3"])
    del body["nodes"][0]["healthcheck"]
    code, answer = await post(hub, body, path="/api/deployments")
    assert code == 202, answer
    restarted = await feed.waitFor(
        deployedWith("flaky", lambda m: node(m).get("restartCount", 0) >= 2), timeout=60
    )
    assert node(restarted)["restartCount"] >= 2
    exits = [node(m).get("exitCode") for m in feed.messages
             if m["deployStatus"] == "deployed" and node(m)["status"] == "exited"]
    assert exits and set(exits) == {3}
    await feed.close()


async def flipMany(docker: Any, containerId: str, count: int) -> None:
    """
    C{count} changes of one node: paused, running, paused...
    """
    for i in range(count):
        await deferToThread(docker.docker, "unpause" if i % 2 else "pause", containerId)


def changesAfter(messages: list[dict], seq: int) -> list[dict]:
    return [m for m in messages if m["seq"] > seq]


@pytest_twisted.ensureDeferred
async def test_resumeAfterFiftyChanges(hub_process, docker) -> None:
    """
    A client away while 50 changes happen gets exactly those, in order,
    then live ones; with a stale epoch, the current picture.
    """
    hub = startHub(hub_process, docker)
    witness = await connectFeed(hub.wsUrl + "?deployment=away")
    away = await connectFeed(hub.wsUrl + "?deployment=away")
    body = topology(name="away", nodes=1)
    del body["nodes"][0]["healthcheck"]  # its status alone changes
    await post(hub, body, path="/api/deployments")
    await away.waitFor(deployedWith("away", running), timeout=60)
    await waitUntil(lambda: witness.messages[-1]["seq"] == away.messages[-1]["seq"],
                    timeout=30, what="both at the same seq")
    ready = away.messages[-1]
    left = ready["seq"]
    await away.close()
    await flipMany(docker, node(ready)["containerId"], 50)
    missed = await waitUntil(
        lambda: len(changesAfter(witness.messages, left)) >= 50 and changesAfter(witness.messages, left),
        timeout=60, what="50 changes",
    )
    await waitUntil(lambda: node(witness.messages[-1])["status"] == "running",
                    what="the last unpause")
    # the 50 changes (and whatever else the hub said meanwhile)
    missed = changesAfter(witness.messages, left)
    assert len(missed) >= 50, [m["seq"] for m in missed]

    back = await connectFeed(
        hub.wsUrl + f"?deployment=away&since={left}&epoch={ready['epoch']}"
    )
    await waitUntil(lambda: len(back.messages) >= len(missed), what="the replay")
    assert back.messages == missed
    await flipMany(docker, node(ready)["containerId"], 1)
    live = await back.waitFor(lambda m: m["seq"] == missed[-1]["seq"] + 1)
    assert node(live)["status"] == "paused"
    assert back.messages[:len(missed)] == missed
    assert [m["seq"] for m in back.messages] == list(range(left + 1, live["seq"] + 1))

    stale = await connectFeed(hub.wsUrl + f"?deployment=away&since={left}&epoch=0000")
    [current] = await waitUntil(lambda: stale.messages, what="the current picture")
    assert current == witness.messages[-1]
    for client in (witness, back, stale):
        await client.close()


@pytest_twisted.ensureDeferred
async def test_seqGoesOnAcrossHubRestarts(hub_process, docker) -> None:
    """
    The hub stopped and started twice under a deployment: the epoch stays,
    seq goes on, and the history has every message; a new database starts
    a new epoch.  (The database is the default var/statushub.db in the
    directory the hub starts in.)
    """
    hub = startHub(hub_process, docker)
    feed = await connectFeed(hub.wsUrl + "?deployment=stay")
    await post(hub, topology(name="stay", nodes=1), path="/api/deployments")
    first = await feed.waitFor(deployedWith("stay", running), timeout=60)
    epoch = first["epoch"]
    seen = list(feed.messages)
    await feed.close()
    for round in range(2):
        hub.stop()
        assert (hub.workdir / "var" / "statushub.db").exists()
        hub.start()
        feed = await connectFeed(hub.wsUrl + "?deployment=stay")
        adopted = await feed.waitFor(deployedWith("stay", lambda m: True), timeout=30)
        assert adopted["epoch"] == epoch
        assert adopted["seq"] >= seen[-1]["seq"]
        # one change per round, behind the hub's back
        await deferToThread(docker.docker, "pause" if round == 0 else "unpause",
                            node(adopted)["containerId"])
        want = "paused" if round == 0 else "running"
        changed = await feed.waitFor(
            deployedWith("stay", lambda m: node(m)["status"] == want), timeout=30
        )
        assert changed["seq"] > seen[-1]["seq"]
        seen += [m for m in feed.messages if m["seq"] > seen[-1]["seq"]]
        await feed.close()
    history = await getJSON(hub, "/api/deployments/stay/history")
    assert history["epoch"] == epoch and history["first"] == 1
    seqs = [m["seq"] for m in history["messages"]]
    assert seqs == list(range(1, history["last"] + 1))
    byseq = {m["seq"]: m for m in history["messages"]}
    # each message a client got is kept as it was sent, the snapshots a
    # restarted hub gave before it had adopted the deployment too (its last
    # message, not an idle picture under that seq); seq 0 is the snapshot of
    # a deployment not there yet
    for message in (m for m in seen if m["seq"] > 0):
        assert byseq[message["seq"]] == message

    other = startHub(hub_process, docker)  # another directory: a new database
    picture = await getJSON(other, "/api/status?deployment=stay")
    assert picture["epoch"] != epoch


@pytest_twisted.ensureDeferred
async def test_historyApiAndRetention(hub_process, docker) -> None:
    """
    With C{max_messages} small the oldest go, and the API says where the
    history starts; a torn-down deployment still has its history; a name
    never seen is a 404.
    """
    import treq

    hub = startHub(hub_process, docker, "[history]\nmax_messages = 5\n")
    feed = await connectFeed(hub.wsUrl + "?deployment=short")
    body = topology(name="short", nodes=1)
    del body["nodes"][0]["healthcheck"]
    await post(hub, body, path="/api/deployments")
    ready = await feed.waitFor(deployedWith("short", running), timeout=60)
    await flipMany(docker, node(ready)["containerId"], 12)
    last = await feed.waitFor(lambda m: m["seq"] >= ready["seq"] + 12, timeout=30)
    history = await getJSON(hub, "/api/deployments/short/history")
    assert history["last"] >= last["seq"]
    assert history["first"] > 1
    assert [m["seq"] for m in history["messages"]] == list(
        range(history["first"], history["last"] + 1)
    )
    since = await getJSON(hub, f"/api/deployments/short/history?since={history['last'] - 2}&limit=1")
    assert [m["seq"] for m in since["messages"]] == [history["last"] - 1]

    response = await treq.delete(f"{hub.url}/api/deployments/short")
    assert response.code == 202
    await feed.waitFor(lambda m: m["deployStatus"] == "idle" and m["seq"] > 0, timeout=60)
    gone = await getJSON(hub, "/api/deployments/short/history")
    assert gone["messages"][-1]["deployStatus"] == "idle"

    response = await treq.get(f"{hub.url}/api/deployments/never/history")
    assert response.code == 404
    response = await treq.get(f"{hub.url}/api/deployments/short/history?limit=x")
    assert response.code == 400
    health = await getJSON(hub, "/healthz")
    assert health["history"] == "ok"
    await feed.close()


@pytest_twisted.ensureDeferred
async def test_unwritableDatabase(hub_process, docker, tmp_path) -> None:
    """
    A database that cannot be opened: the hub serves on and says so.
    """
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    hub = startHub(hub_process, docker, f'[history]\npath = "{blocker}/h.db"\n')
    health = await getJSON(hub, "/healthz")
    assert health["status"] == "ok"
    assert "cannot open" in health["history"]
    assert any("cannot open" in line for line in hub.log)
    code, body = await post(hub, topology(name="nohistory", nodes=1), path="/api/deployments")
    assert code == 202, body
    feed = await connectFeed(hub.wsUrl + "?deployment=nohistory")
    await feed.waitFor(deployedWith("nohistory", running), timeout=60)
    await feed.close()
