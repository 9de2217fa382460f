"""
Two hubs' cluster parts in one process, on a real Redis: the subscription
feeds a follower's mirror with what the leader wrote (and catches up after
Redis comes back), and a change request made on the follower is carried out
by the leader, once, answered with its outcome, or refused with 503 naming
the cause.  The leader's deployment control is a stand-in (the real one is
the orchestrator's, tested with hub processes).
"""

from __future__ import annotations

from typing import Any

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import Deferred, ensureDeferred, fail, succeed
from zope.interface.verify import verifyObject

from statushub.cluster.connection import RedisConnection
from statushub.cluster.feed import ClusterFeed
from statushub.cluster.handover import (
    ClusterControl,
    RequestServer,
    refusalFromJSON,
    refusalToJSON,
)
from statushub.cluster.history import fetch, readState
from statushub.cluster.lease import RedisLeadership, RedisLeaseStore
from statushub.cluster.mirror import Mirror
from statushub.cluster.writer import FencedWriter
from statushub.errors import (
    DeploymentConflict,
    RequestError,
    Unavailable,
    UnknownDeployment,
    UnknownNode,
)
from statushub.interfaces import IDeploymentControl
from statushub.numbering import PersistentNumbering
from statushub.status import Picture, StatusBoard
from tests.waiting import waitUntil


class Local:
    """
    The leader's own control, a stand-in: records what it is asked.
    """

    def __init__(self) -> None:
        self.asked: list[tuple[str, Any]] = []
        self.answer: Any = None

    def deploy(self, topology: Any) -> Deferred:
        self.asked.append(("deploy", topology))
        if isinstance(self.answer, Exception):
            return fail(self.answer)
        if isinstance(self.answer, Deferred):
            return self.answer
        return succeed({"deployment": topology["name"], "deployStatus": "deploying", "seq": 1})

    def teardown(self, name: str) -> Deferred:
        self.asked.append(("teardown", name))
        return fail(self.answer) if self.answer else succeed({"deployment": name})

    def actOnNode(self, name: str, node: str, action: str) -> Deferred:
        self.asked.append(("actOnNode", (name, node, action)))
        return succeed({"deployment": name, "node": node})

    def act(self, name: str, node: str, action: str) -> Deferred:
        self.asked.append(("act", (name, node, action)))
        if isinstance(self.answer, Exception):
            return fail(self.answer)
        return succeed((action != "start", {"deployment": name, "seq": 3}))


class Hub:
    """
    One hub's cluster parts (no web, no engine).
    """

    def __init__(self, url: str, hubId: str, lease: float = 2.0) -> None:
        self.hubId = hubId
        self.connection = RedisConnection(url, reactor, prefix="t")
        self.leadership = RedisLeadership(
            RedisLeaseStore(self.connection, lambda: "epoch-1"), reactor, hubId, lease=lease
        )
        self.mirror = Mirror(reactor, lambda n, a, u: fetch(self.connection, n, a, u))
        # a topology crosses as a plain document in these tests
        codecs = {"deploy": (lambda t: [t], lambda d: [d])}
        self.control = ClusterControl(
            self.leadership, self.connection, hubId, reactor, codecs, timeout=1.0
        )
        self.server = RequestServer(self.leadership, self.connection, self.control, codecs)
        self.feed = ClusterFeed(
            self.connection, hubId, self.mirror, reactor,
            onRequest=self.server.receiveRequest, onReply=self.control.receiveReply,
        )
        self.local = Local()

    def start(self) -> "Hub":
        self.connection.start()
        self.feed.startService()
        self.leadership.startService()
        return self

    async def stop(self) -> None:
        if self.leadership.running:
            await self.leadership.stopService()
        self.feed.stopService()
        self.connection.stop()

    async def lead(self) -> None:
        await waitUntil(lambda: self.leadership.isLeader, 10, what=f"{self.hubId} leads")
        self.control.local = self.local

    async def subscribed(self) -> None:
        await waitUntil(lambda: self.feed.synced, 10, what=f"{self.hubId} subscribed")


@pytest.fixture
def hubs(redis_server: Any) -> Any:
    server = redis_server()
    started: list[Hub] = []

    def start(hubId: str) -> Hub:
        hub = Hub(server.url, hubId).start()
        started.append(hub)
        return hub

    start.server = server
    yield start
    for hub in started:
        pytest_twisted.blockon(ensureDeferred(hub.stop()))


async def pair(hubs: Any) -> tuple[Hub, Hub]:
    leader = hubs("leader")
    await leader.lead()
    follower = hubs("follower")
    await follower.subscribed()
    await leader.subscribed()
    return leader, follower


@pytest_twisted.ensureDeferred
async def test_aNodeActionCrossesWithItsPair(hubs: Any) -> None:
    leader, follower = await pair(hubs)
    assert await follower.control.act("demo", "web", "restart") == (
        True, {"deployment": "demo", "seq": 3},
    )
    assert await follower.control.act("demo", "web", "start") == (
        False, {"deployment": "demo", "seq": 3},
    )
    leader.local.answer = UnknownNode("demo", "nope")
    with pytest.raises(UnknownNode):
        await follower.control.act("demo", "nope", "stop")
    assert [a[0] for a in leader.local.asked] == ["act", "act", "act"]


def test_refusalsCrossAsTheyWereRaised() -> None:
    for error in (
        DeploymentConflict("deployment 'a' exists (deployed)", ["a"]),
        UnknownDeployment("a"),
        UnknownNode("a", "web"),
        Unavailable("no leader"),
        RequestError("bad"),
    ):
        again = refusalFromJSON(refusalToJSON(error))
        assert type(again) is type(error)
        assert (str(again), again.code) == (str(error), error.code)
    assert refusalFromJSON(refusalToJSON(DeploymentConflict("x", ["a", "b"]))).deployments == [
        "a", "b",
    ]
    # a kind this hub does not know: its code and text
    odd = RequestError("too large")
    odd.code = 413
    data = {**refusalToJSON(odd), "kind": "SomethingNew"}
    again = refusalFromJSON(data)
    assert (type(again), again.code, str(again)) == (RequestError, 413, "too large")


@pytest_twisted.ensureDeferred
async def test_aRequestToTheFollowerIsCarriedOutByTheLeaderOnce(hubs: Any) -> None:
    leader, follower = await pair(hubs)
    verifyObject(IDeploymentControl, follower.control)
    assert not follower.leadership.isLeader
    picture = await follower.control.deploy({"name": "demo"})
    assert picture == {"deployment": "demo", "deployStatus": "deploying", "seq": 1}
    assert leader.local.asked == [("deploy", {"name": "demo"})]
    assert follower.local.asked == []
    # the request and its reply leave nothing behind but the reply (expiring)
    keys = await leader.connection.call(lambda c: sorted(c.keys("t:re*")))
    assert [k.split(":")[1] for k in keys] == ["reply"]
    assert await leader.connection.call(lambda c: c.pttl(keys[0])) > 0
    # on the leader itself: at once
    await leader.control.teardown("demo")
    assert leader.local.asked[-1] == ("teardown", "demo")


@pytest_twisted.ensureDeferred
async def test_theLeadersRefusalIsTheFollowersAnswer(hubs: Any) -> None:
    leader, follower = await pair(hubs)
    leader.local.answer = DeploymentConflict("deployment 'demo' exists (deployed)", ["demo"])
    with pytest.raises(DeploymentConflict) as refused:
        await follower.control.deploy({"name": "demo"})
    assert refused.value.code == 409 and refused.value.deployments == ["demo"]
    leader.local.answer = UnknownDeployment("gone")
    with pytest.raises(UnknownDeployment) as refused:
        await follower.control.teardown("gone")
    assert str(refused.value) == "no deployment named 'gone'"


@pytest_twisted.ensureDeferred
async def test_noLeader503AtOnce(hubs: Any) -> None:
    leader, follower = await pair(hubs)
    await leader.leadership.stopService()  # gives the lease up
    with pytest.raises(Unavailable) as refused:
        await follower.control.deploy({"name": "demo"})
    assert "no hub leads the cluster" in str(refused.value)
    assert leader.local.asked == []


@pytest_twisted.ensureDeferred
async def test_aLeaderThatDoesNotAnswer(hubs: Any) -> None:
    leader, follower = await pair(hubs)
    leader.local.answer = Deferred()  # never fires
    with pytest.raises(Unavailable) as refused:
        await follower.control.deploy({"name": "demo"})
    assert "may have been carried out" in str(refused.value)
    assert len(leader.local.asked) == 1


@pytest_twisted.ensureDeferred
async def test_aRequestNotTakenIsWithdrawnUndone(hubs: Any) -> None:
    leader, follower = await pair(hubs)
    # the leader hears the request but no longer leads: it leaves it there
    leader.leadership._validUntil = 0
    with pytest.raises(Unavailable) as refused:
        await follower.control.deploy({"name": "demo"})
    assert "did not take the request" in str(refused.value) and "nothing was done" in str(
        refused.value
    )
    assert leader.local.asked == []
    assert await leader.connection.call(lambda c: c.keys("t:request:*")) == []


@pytest_twisted.ensureDeferred
async def test_aMethodOutsideTheContractIsRefused(hubs: Any) -> None:
    leader, follower = await pair(hubs)
    follower.control._codecs = {}
    with pytest.raises(RequestError) as refused:
        await follower.control._handOver("removeEverything", [])
    assert "not a change request" in str(refused.value)
    assert leader.local.asked == []


@pytest_twisted.ensureDeferred
async def test_redisAway503(hubs: Any) -> None:
    leader, follower = await pair(hubs)
    hubs.server.stop()
    with pytest.raises(Unavailable) as refused:
        await follower.control.deploy({"name": "demo"})
    assert "Redis cannot be reached" in str(refused.value)


@pytest_twisted.ensureDeferred
async def test_theFeedReachesTheFollowerAndCatchesUpAfterRedisReturns(redis_server: Any) -> None:
    server = redis_server(persistent=True)
    leader = Hub(server.url, "leader").start()
    follower = Hub(server.url, "follower")
    try:
        await leader.lead()
        follower.start()
        await follower.subscribed()
        state = await readState(leader.connection)
        board = StatusBoard(reactor, PersistentNumbering(state.epoch, state.last))
        writer = FencedWriter(
            leader.connection, "leader", leader.leadership.term, state.epoch,
            deliver=leader.mirror.receive, refused=leader.leadership.stepDown, clock=reactor,
        )
        board.addSink(writer)
        board.update(Picture("deploying", deployment="web"))
        board.update(Picture("deployed", deployment="web"))
        await waitUntil(lambda: follower.mirror.last("web") == 2, 5, what="the follower's mirror")
        assert follower.mirror.current("web") == leader.mirror.current("web")

        # Redis goes away; the leader (still within its lease) writes on
        # after it returns; the follower's subscription broke meanwhile
        server.stop()
        board.update(Picture("failed", deployment="web", error="x"))
        await waitUntil(lambda: follower.connection.reachable is False, 10, what="noticed")
        server.start()
        await waitUntil(lambda: follower.mirror.last("web") == 3, 15, what="caught up")
        assert follower.mirror.current("web")["error"] == "x"
    finally:
        await leader.stop()
        await follower.stop()


@pytest_twisted.ensureDeferred
async def test_aMethodTheContractGainsCrossesToo(hubs: Any, monkeypatch: Any) -> None:
    """
    When the contract grows (node actions), its new method is handed over
    as it is, with no change here.
    """
    from statushub.cluster import handover

    monkeypatch.setattr(handover, "METHODS", handover.METHODS | {"actOnNode"})
    leader, follower = await pair(hubs)
    answer = await follower.control.actOnNode("demo", "web", "restart")
    assert answer == {"deployment": "demo", "node": "web"}
    assert leader.local.asked == [("actOnNode", ("demo", "web", "restart"))]


def test_aTopologyCrossesAsItsDocument() -> None:
    """
    What the leader deploys is what the follower validated, resources and
    all (the document crosses, and is validated again with the policy).
    """
    import json

    from statushub.cluster.handover import topologyCodecs
    from statushub.resources import ResourcePolicy
    from statushub.topology import validateTopology

    document = {"name": "demo", "nodes": [
        {"id": "web", "image": "statushub/busybox", "command": ["sleep", "1"],
         "env": {"A": "1"}, "restart": "on-failure",
         "resources": {"memory": "64m", "cpus": 0.5},
         "healthcheck": {"test": ["CMD", "true"], "interval": 1.5}},
        {"id": "db", "image": "statushub/busybox"},
    ]}
    policy = ResourcePolicy()
    topology = validateTopology(document, policy)
    encode, decode = topologyCodecs(policy)["deploy"]
    crossed = json.loads(json.dumps(encode(topology)))
    assert decode(*crossed) == [topology]
