"""
Leadership on a clock: the lease is taken, renewed every lease/3, and given
up at lease - margin on the hub's own clock when it cannot be renewed;
another holder, a stop, a paused process.  With a stand-in for Redis (the
timing), then the lease script on a real Redis (the semantics).
"""

from __future__ import annotations

from typing import Any

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Clock
from zope.interface.verify import verifyObject

from statushub.cluster.connection import RedisConnection
from statushub.cluster.lease import RedisLeadership, RedisLeaseStore, SoleLeadership
from statushub.interfaces import IHealthCheck, ILeadership
from tests.fixtures.redis import RedisServer


class StandIn:
    """
    A lease store whose answers the test gives: each call waits in
    C{calls} until answered.
    """

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple, Deferred]] = []
        self.released: list[tuple[str, int]] = []

    def acquire(self, hubId: str, term: int, leaseMs: int) -> Deferred:
        d: Deferred = Deferred()
        self.calls.append((hubId, (term, leaseMs), d))
        return d

    def release(self, hubId: str, term: int) -> Deferred:
        self.released.append((hubId, term))
        return succeed(1)

    def answer(self, result: Any) -> tuple:
        hubId, args, d = self.calls.pop(0)
        if isinstance(result, Exception):
            d.errback(result)
        else:
            d.callback(result)
        return args


def leadership(lease: float = 3.0) -> tuple[RedisLeadership, StandIn, Clock, list[bool]]:
    store, clock, told = StandIn(), Clock(), []
    hub = RedisLeadership(store, clock, "hub-a", lease=lease, margin=0.6, retry=0.5)
    hub.addObserver(told.append)
    hub.startService()
    clock.advance(0)
    return hub, store, clock, told


def test_soleLeadershipAlwaysLeads() -> None:
    sole = SoleLeadership()
    verifyObject(ILeadership, sole)
    assert sole.isLeader and sole.term == 1
    sole.addObserver(lambda leading: None)


def test_takesTheLeaseAndRenewsEveryThirdOfIt() -> None:
    hub, store, clock, told = leadership(lease=3.0)
    verifyObject(ILeadership, hub)
    verifyObject(IHealthCheck, hub)
    assert not hub.isLeader and hub.health() == "follower"
    assert store.answer((7, True)) == (0, 3000)
    assert hub.isLeader and hub.term == 7 and told == [True]
    assert hub.health() == "leader"
    clock.advance(0.99)
    assert store.calls == []
    clock.advance(0.01)
    # the renewal names the term held
    assert store.answer((7, False)) == (7, 3000)
    assert hub.isLeader and told == [True]


def test_stepsDownAtLeaseMinusMarginWhenRenewalsFail() -> None:
    hub, store, clock, told = leadership(lease=3.0)
    store.answer((1, True))
    for _ in range(2):
        clock.advance(1.0)
        store.answer(ConnectionError("Redis is away"))
        assert hub.isLeader  # still within its lease
    clock.advance(0.39)
    assert hub.isLeader
    # 2.4 s after the last successful renewal was sent: 3.0 - 0.6
    clock.advance(0.01)
    assert not hub.isLeader and told == [True, False]
    assert hub.health() == "unreachable"


def test_leaseCountsFromWhenTheRenewalWasSent() -> None:
    hub, store, clock, told = leadership(lease=3.0)
    store.answer((1, True))
    clock.advance(1.0)
    # the answer comes 2 s late: the lease was counted from the sending
    clock.advance(2.0)
    store.answer((1, False))
    clock.advance(0)
    assert not hub.isLeader and told == [True, False]


def test_stepsDownWhenAnotherHolds() -> None:
    hub, store, clock, told = leadership()
    store.answer((3, True))
    clock.advance(1.0)
    store.answer((0, "hub-b 4"))
    assert not hub.isLeader and told == [True, False]
    assert hub.holder == "hub-b 4"
    # and tries again as a follower, every retry seconds
    clock.advance(0.5)
    assert store.answer((0, "hub-b 4")) == (0, 3000)


def test_pausedProcessKnowsAtOnce() -> None:
    """
    After a pause (SIGSTOP) past its lease, the hub reads C{isLeader} false
    before any timer has run.
    """
    hub, store, clock, told = leadership(lease=3.0)
    store.answer((1, True))
    clock.rightNow += 10  # time passed, no timer ran
    assert not hub.isLeader
    clock.advance(0)
    assert told == [True, False]


def test_aLateRenewalAfterSteppingDownDoesNotRestoreIt() -> None:
    hub, store, clock, told = leadership(lease=3.0)
    store.answer((1, True))
    clock.advance(1.0)  # renewal sent, unanswered
    clock.advance(1.5)  # past 2.4: stepped down
    assert told == [True, False]
    store.answer((1, False))  # the renewal's late answer
    clock.advance(0)
    assert not hub.isLeader
    # the next try asks as a follower: a new term
    assert store.answer((2, True)) == (0, 3000)
    assert hub.isLeader and hub.term == 2 and told == [True, False, True]


def test_stopGivesTheLeaseUp() -> None:
    hub, store, clock, told = leadership()
    store.answer((5, True))
    hub.stopService()
    assert store.released == [("hub-a", 5)]
    assert told == [True, False] and not hub.isLeader
    clock.advance(10)
    assert store.calls == []  # no more tries


# -- the script, on a real Redis ------------------------------------------------


@pytest.fixture
def connection(redis_server: Any) -> Any:
    server: RedisServer = redis_server()
    connection = RedisConnection(server.url, reactor, prefix="t")
    connection.start()
    yield connection
    connection.stop()


@pytest_twisted.ensureDeferred
async def test_leaseScriptTermsAndHolders(connection: RedisConnection, redis_server: Any) -> None:
    store = RedisLeaseStore(connection, lambda: "e1")
    assert await store.acquire("a", 0, 60_000) == (1, True)
    # another hub finds it held
    assert await store.acquire("b", 0, 60_000) == (0, "a 1")
    # the holder renews in its term
    assert await store.acquire("a", 1, 60_000) == (1, False)
    # the epoch was set once, with the first leadership
    assert await connection.call(lambda c: c.get("t:epoch")) == "e1"
    # released by its holder only
    assert await store.release("b", 1) == 0
    assert await store.release("a", 1) == 1
    assert await store.acquire("b", 0, 60_000) == (2, True)
    assert await connection.call(lambda c: c.get("t:epoch")) == "e1"
    # a hub that let its term go takes it anew, in a new term
    assert await store.acquire("b", 0, 60_000) == (3, True)
    assert await connection.call(lambda c: c.get("t:lease")) == "b 3"


@pytest_twisted.ensureDeferred
async def test_leaseEndsInRedis(connection: RedisConnection) -> None:
    store = RedisLeaseStore(connection, lambda: "e1")
    assert await store.acquire("a", 0, 100) == (1, True)
    ttl = await connection.call(lambda c: c.pttl("t:lease"))
    assert 0 < ttl <= 100
    # a renewal for a term that is not the lease's does not renew it
    await connection.call(lambda c: c.set("t:lease", "b 9", px=60_000))
    assert await store.acquire("a", 1, 60_000) == (0, "b 9")


@pytest_twisted.ensureDeferred
async def test_twoHubsOneLeaderOnRealRedis(connection: RedisConnection) -> None:
    """
    Two leaderships on one Redis and the real reactor's clock: exactly one
    leads; when it stops, the other takes over.
    """
    from tests.waiting import waitUntil

    a = RedisLeadership(RedisLeaseStore(connection, lambda: "e"), reactor, "a", lease=1.0)
    b = RedisLeadership(RedisLeaseStore(connection, lambda: "e"), reactor, "b", lease=1.0)
    a.startService()
    await waitUntil(lambda: a.isLeader, 5, what="a leads")
    b.startService()
    try:
        await b.tryNow()
        assert not b.isLeader and b.holder == f"a {a.term}"
        await a.stopService()
        await waitUntil(lambda: b.isLeader, 5, what="b takes over")
        assert b.term == a.term + 1
    finally:
        for hub in (a, b):
            if hub.running:
                await hub.stopService()
