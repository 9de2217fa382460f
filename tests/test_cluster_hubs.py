"""
Several hubs as one, end to end: three real hub processes on one real
Redis (Debian's redis-server on loopback) and the private Docker engine,
real WebSocket clients, the Docker CLI acting behind the hubs' backs.  The
leader is killed (SIGKILL), paused past its lease (SIGSTOP), Redis is
stopped and started again.
"""

from __future__ import annotations

import os
import signal
from typing import Any, Optional

import pytest
import pytest_twisted
from twisted.internet.threads import deferToThread

from tests.hubapi import delete, getJSON, post, topology
from tests.waiting import waitUntil
from tests.wsclient import connectFeed

pytestmark = pytest.mark.docker

LEASE = 2.0


def config(redis: str) -> str:
    return (
        "[polling]\ninterval = 0.5\n[docker]\ntimeout = 3\n"
        f'[cluster]\nredis = "{redis}"\nlease = {LEASE}\n'
    )


async def role(hub: Any) -> Optional[str]:
    """
    What C{/healthz} says of the hub's place in the cluster; L{None} when
    it does not answer.
    """
    if not hub.running:
        return None
    try:
        return (await getJSON(hub, "/healthz")).get("cluster")
    except Exception:
        return None


async def theLeader(hubs: list[Any], timeout: float = 30.0) -> Any:
    """
    Wait until exactly one of C{hubs} says it leads and the others follow;
    return it.
    """
    found: list[Any] = []

    async def one() -> bool:
        roles = [await role(hub) for hub in hubs]
        found[:] = [hub for hub, r in zip(hubs, roles) if r == "leader"]
        return len(found) == 1 and roles.count("follower") == len(hubs) - 1

    await waitUntil(one, timeout, interval=0.1, what="exactly one leader")
    return found[0]


def startCluster(hub_process: Any, docker: Any, redis: Any, count: int = 3) -> list[Any]:
    env = {"DOCKER_HOST": docker.host}
    return [hub_process(config=config(redis.url), env=env) for _ in range(count)]


def node(message: dict, nodeId: str = "n0") -> dict:
    return next(n for n in message["nodeStatuses"] if n["nodeId"] == nodeId)


def deployed(name: str, check: Any = lambda m: True) -> Any:
    def matches(message: dict) -> bool:
        return (
            message["deployment"] == name
            and message["deployStatus"] == "deployed"
            and bool(message["nodeStatuses"])
            and check(message)
        )

    return matches


def allRunning(message: dict) -> bool:
    return all(n["status"] == "running" for n in message["nodeStatuses"])


def bySeq(messages: list[dict], name: str) -> dict[int, dict]:
    """
    The messages about C{name} by seq (seq 0 is no message: the idle
    picture of a name never deployed, stamped when it is shown).
    """
    return {m["seq"]: m for m in messages if m["deployment"] == name and m["seq"]}


def aSimpleTopology(name: str, nodes: int = 2) -> dict:
    body = topology(name=name, nodes=nodes)
    for entry in body["nodes"]:
        del entry["healthcheck"]  # its status alone changes
    return body


@pytest_twisted.ensureDeferred
async def test_aDeploySentToAFollowerIsCarriedOutOnceAndEveryHubTellsTheSame(
    hub_process: Any, docker: Any, redis_server: Any
) -> None:
    hubs = startCluster(hub_process, docker, redis_server())
    leader = await theLeader(hubs)
    follower = next(h for h in hubs if h is not leader)
    feeds = [await connectFeed(hub.wsUrl + "?deployment=demo") for hub in hubs]

    code, body = await post(follower, aSimpleTopology("demo", 3), path="/api/deployments")
    assert code == 202, body
    assert body["deployment"] == "demo" and body["deployStatus"] == "deploying"
    for feed in feeds:
        await feed.waitFor(deployed("demo", allRunning), timeout=60)
    # one set of containers on the engine, whoever was asked
    assert len(docker.labelledContainers("demo")) == 3
    # the hub that received the request wrote its audit line
    assert any("audit: deploy of 'demo'" in line and "accepted (202)" in line
               for line in follower.log)
    assert not any("audit: deploy of 'demo'" in line for line in leader.log)
    # the same name again, on another follower: the leader's 409
    other = next(h for h in hubs if h is not leader and h is not follower)
    code, body = await post(other, aSimpleTopology("demo", 3), path="/api/deployments")
    assert code == 409 and body["deployments"] == ["demo"], body

    # a container killed behind the hubs' backs: every feed, same seq, same content
    victim = node(feeds[0].messages[-1], "n1")["containerId"]
    await deferToThread(docker.docker, "kill", victim)
    exited = deployed("demo", lambda m: node(m, "n1")["status"] == "exited")
    seen = [await feed.waitFor(exited, timeout=30) for feed in feeds]
    assert seen[0] == seen[1] == seen[2]
    assert node(seen[0], "n1")["exitCode"] == 137
    # and everything before it too
    await waitUntil(lambda: all(bySeq(f.messages, "demo").keys() >= {seen[0]["seq"]}
                                for f in feeds), 10)
    maps = [bySeq(f.messages, "demo") for f in feeds]
    for seq in maps[0].keys() & maps[1].keys() & maps[2].keys():
        assert maps[0][seq] == maps[1][seq] == maps[2][seq]

    # a node action on a follower: the leader starts the node again
    code, body = await post(follower, {}, path="/api/deployments/demo/nodes/n1/start")
    assert code == 202, body
    assert body["deployment"] == "demo"
    started = deployed("demo", lambda m: node(m, "n1")["status"] == "running"
                       and m["seq"] > seen[0]["seq"])
    for feed in feeds:
        await feed.waitFor(started, timeout=30)
    assert any("audit:" in line and "start" in line and "accepted (202)" in line
               for line in follower.log)

    code, _ = await delete(follower, "demo")
    assert code == 202
    for feed in feeds:
        await feed.waitFor(lambda m: m["deployment"] == "demo" and m["deployStatus"] == "idle"
                           and m["seq"] > seen[0]["seq"], timeout=60)
    assert docker.labelledContainers("demo") == []
    for feed in feeds:
        await feed.close()


@pytest_twisted.ensureDeferred
async def test_theLeaderKilled(hub_process: Any, docker: Any, redis_server: Any) -> None:
    """
    SIGKILL the leader: another hub leads within lease + 2 s; a client of
    the dead hub resumes on a survivor with since/epoch and gets exactly
    what it missed, in order, then the next change; the history API answers
    the same on every survivor.
    """
    hubs = startCluster(hub_process, docker, redis_server())
    leader = await theLeader(hubs)
    survivors = [h for h in hubs if h is not leader]
    code, body = await post(leader, aSimpleTopology("away"), path="/api/deployments")
    assert code == 202, body
    moving = await connectFeed(leader.wsUrl + "?deployment=away")
    witness = await connectFeed(survivors[0].wsUrl + "?deployment=away")
    last = await moving.waitFor(deployed("away", allRunning), timeout=60)
    await witness.waitFor(lambda m: m == last, timeout=30)
    container = node(last)["containerId"]

    leader.kill()
    await moving.waitForClose(10)
    # a change while no hub leads: the next leader finds it when it adopts
    await deferToThread(docker.docker, "pause", container)
    await waitUntil(lambda: theLeaderAmong(survivors), LEASE + 2, interval=0.05,
                    what="another hub leads within lease + 2 s")
    await theLeader(survivors)
    await witness.waitFor(deployed("away", lambda m: node(m)["status"] == "paused"), timeout=30)

    since = max(m["seq"] for m in moving.messages if m["deployment"] == "away")
    resumed = await connectFeed(
        survivors[1].wsUrl + f"?deployment=away&since={since}&epoch={last['epoch']}"
    )
    missed = [m for m in witness.messages if m["seq"] > since]
    await resumed.waitFor(lambda m: m == missed[-1], timeout=30)
    assert resumed.messages[: len(missed)] == missed
    # then the next change, live
    await deferToThread(docker.docker, "unpause", container)
    following = await witness.waitFor(
        deployed("away", lambda m: node(m)["status"] == "running" and m["seq"] > missed[-1]["seq"]),
        timeout=30,
    )
    await resumed.waitFor(lambda m: m == following, timeout=30)
    upTo = [m for m in resumed.messages if m["seq"] <= following["seq"]]
    assert [m["seq"] for m in upTo] == list(range(since + 1, following["seq"] + 1))
    assert upTo == [m for m in witness.messages if since < m["seq"] <= following["seq"]]

    query = f"/api/deployments/away/history?since=0&limit={following['seq']}"
    pages = [await getJSON(h, query) for h in survivors]
    assert pages[0]["messages"] == pages[1]["messages"]
    assert pages[0]["epoch"] == pages[1]["epoch"] == last["epoch"]
    assert [m["seq"] for m in pages[0]["messages"]] == list(range(1, following["seq"] + 1))
    for feed in (witness, resumed):
        await feed.close()


async def theLeaderAmong(hubs: list[Any]) -> bool:
    return any([await role(hub) == "leader" for hub in hubs])


@pytest_twisted.ensureDeferred
async def test_aPausedLeaderWakesUpAndWritesNothing(
    hub_process: Any, docker: Any, redis_server: Any
) -> None:
    """
    SIGSTOP the leader past its lease, let another take over and number on,
    SIGCONT it: no seq names two messages on any feed (its own clients'
    included), and it follows.
    """
    hubs = startCluster(hub_process, docker, redis_server())
    leader = await theLeader(hubs)
    others = [h for h in hubs if h is not leader]
    code, body = await post(others[0], aSimpleTopology("nap"), path="/api/deployments")
    assert code == 202, body
    feeds = [await connectFeed(hub.wsUrl + "?deployment=nap") for hub in hubs]
    for feed in feeds:
        await feed.waitFor(deployed("nap", allRunning), timeout=60)
    container = node(feeds[0].messages[-1])["containerId"]

    os.kill(leader.pid, signal.SIGSTOP)
    try:
        await waitUntil(lambda: theLeaderAmong(others), LEASE + 10, interval=0.1,
                        what="another hub leads")
        # the new leader numbers changes on while the old one sleeps
        await deferToThread(docker.docker, "pause", container)
        paused = await feeds[1].waitFor(
            deployed("nap", lambda m: node(m)["status"] == "paused"), 30
        )
    finally:
        os.kill(leader.pid, signal.SIGCONT)
    await deferToThread(docker.docker, "unpause", container)
    final = await feeds[1].waitFor(
        deployed("nap", lambda m: node(m)["status"] == "running" and m["seq"] > paused["seq"]),
        30,
    )
    now = await theLeader(hubs)
    assert now is not leader
    assert any("no longer leads" in line for line in leader.log)
    for feed in feeds:
        await feed.waitFor(lambda m: m == final, timeout=30)
    maps = [bySeq(f.messages, "nap") for f in feeds]
    for seq in set().union(*maps):
        assert len({repr(m[seq]) for m in maps if seq in m}) == 1, f"seq {seq} names two messages"
    page = await getJSON(now, f"/api/deployments/nap/history?since=0&limit={final['seq']}")
    assert [m["seq"] for m in page["messages"]] == list(range(1, final["seq"] + 1))
    for message in page["messages"]:  # what Redis kept is what every feed got
        assert all(maps[i].get(message["seq"], message) == message for i in range(3))
    for feed in feeds:
        await feed.close()


@pytest_twisted.ensureDeferred
async def test_redisAwayAndBack(hub_process: Any, docker: Any, redis_server: Any) -> None:
    """
    Redis stopped for longer than the lease: the hubs serve what they have,
    none acts, a change gets 503, /healthz says unreachable; Redis started
    again with its data: one leader, and every feed catches up.
    """
    redis = redis_server(persistent=True)
    hubs = startCluster(hub_process, docker, redis)
    await theLeader(hubs)
    code, body = await post(hubs[0], aSimpleTopology("calm", 1), path="/api/deployments")
    assert code == 202, body
    feeds = [await connectFeed(hub.wsUrl + "?deployment=calm") for hub in hubs]
    for feed in feeds:
        await feed.waitFor(deployed("calm", allRunning), timeout=60)
    container = node(feeds[0].messages[-1])["containerId"]

    redis.stop()
    await waitUntil(lambda: allSay(hubs, "unreachable"), LEASE + 10, interval=0.2,
                    what="every hub says Redis is unreachable")
    for hub in hubs:
        listed = await getJSON(hub, "/api/deployments")
        assert [d["deployment"] for d in listed["deployments"]] == ["calm"]
    code, body = await post(hubs[1], aSimpleTopology("other", 1), path="/api/deployments")
    assert code == 503 and "Redis" in body["error"], body
    # a change no hub may act on now, nor see
    await deferToThread(docker.docker, "kill", container)

    redis.start()
    await theLeader(hubs, timeout=30)
    exited = deployed("calm", lambda m: node(m)["status"] == "exited")
    seen = [await feed.waitFor(exited, timeout=30) for feed in feeds]
    assert seen[0] == seen[1] == seen[2]
    assert all(hub.running for hub in hubs)
    assert docker.labelledContainers("other") == []
    for feed in feeds:
        await feed.close()


async def allSay(hubs: list[Any], word: str) -> bool:
    return all([await role(hub) == word for hub in hubs])
