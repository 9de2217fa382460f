"""
The fenced write, on a real Redis: a leader's messages are stored, numbered
on from the stored seq, published, pruned; a writer whose term has passed,
whose epoch is not the cluster's, or whose seq does not follow writes
nothing and stops (the hub steps down).  The writer's clock is a
L{task.Clock} (its retries); Redis's commands run in the connection's
threads.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.task import Clock, deferLater
from zope.interface.verify import verifyObject

from statushub.cluster.connection import RedisConnection
from statushub.cluster.history import RedisHistory, fetch, readState
from statushub.cluster.lease import RedisLeaseStore
from statushub.cluster.mirror import Mirror
from statushub.cluster.writer import FencedWriter, stampedAt
from statushub.historypage import HistoryUnavailable
from statushub.interfaces import IHistory, IStatusSink
from statushub.numbering import PersistentNumbering
from statushub.status import Picture, StatusBoard
from tests.waiting import waitUntil


@pytest.fixture
def connection(redis_server: Any) -> Any:
    server = redis_server()
    connection = RedisConnection(server.url, reactor, prefix="t")
    connection.start()
    connection.server = server
    yield connection
    connection.stop()


class Leader:
    """
    A leader of one term: its lease taken, a board numbering on from
    Redis, a fenced writer as the board's sink.
    """

    def __init__(self, connection: RedisConnection, hubId: str, term: int, epoch: str,
                 state: Any, **writer: Any) -> None:
        self.delivered: list[dict] = []
        self.refusals: list[str] = []
        self.clock = Clock()
        self.board = StatusBoard(self.clock, PersistentNumbering(epoch, state.last))
        self.writer = FencedWriter(
            connection, hubId, term, epoch,
            deliver=self.delivered.append,
            refused=self.refusals.append,
            clock=self.clock, **writer,
        )
        self.board.addSink(self.writer)

    async def settled(self) -> None:
        await waitUntil(lambda: not self.writer._writing and not self.writer._queue
                        or self.writer.stopped, 5, what="the writes are done")


async def lead(connection: RedisConnection, hubId: str, **writer: Any) -> Leader:
    term, taken = await RedisLeaseStore(connection, lambda: "epoch-1").acquire(hubId, 0, 60_000)
    assert taken is True
    state = await readState(connection)
    return Leader(connection, hubId, term, state.epoch, state, **writer)


def picture(name: str, status: str = "deployed", **changes: Any) -> Picture:
    return Picture(deployStatus=status, deployment=name, engine="reachable", **changes)


def test_stampedAt() -> None:
    assert stampedAt({"timestamp": "2026-11-26T08:00:00.123Z"}, 0) == pytest.approx(
        1795680000.123
    )
    assert stampedAt({"timestamp": "garbage"}, 5.0) == 5.0


@pytest_twisted.ensureDeferred
async def test_writesStoresPublishesAndDelivers(connection: RedisConnection) -> None:
    leader = await lead(connection, "a")
    verifyObject(IStatusSink, leader.writer)
    pubsub = connection.newClient().pubsub()
    pubsub.subscribe("t:feed")
    for status in ("deploying", "deployed", "tearing_down", "idle"):
        leader.board.update(picture("web", status))
    await leader.settled()
    assert [m["seq"] for m in leader.delivered if m["deployment"] == "web"] == [1, 2, 3, 4]
    state = await readState(connection)
    assert state.epoch == "epoch-1" and state.last["web"] == 4
    assert "web" not in state.current  # its last message was idle: it ended
    stored = await fetch(connection, "web", 0, 100)
    assert [m["deployStatus"] for m in stored] == ["deploying", "deployed", "tearing_down", "idle"]
    published = []
    for _ in range(10):
        event = pubsub.get_message(timeout=1)
        if event and event["type"] == "message":
            published.append(json.loads(event["data"].lstrip("q")))
    pubsub.close()
    assert [m["seq"] for m in published if m["deployment"] == "web"] == [1, 2, 3, 4]
    assert leader.refusals == []


@pytest_twisted.ensureDeferred
async def test_aNewLeaderNumbersOnFromRedis(connection: RedisConnection) -> None:
    first = await lead(connection, "a")
    first.board.update(picture("web", "deploying"))
    first.board.update(picture("web"))
    await first.settled()
    await connection.call(lambda c: c.delete("t:lease"))
    second = await lead(connection, "b")
    assert second.writer.term == first.writer.term + 1
    second.board.update(picture("web", "tearing_down"))
    await second.settled()
    assert [m["seq"] for m in second.delivered] == [3]
    assert second.refusals == []


@pytest_twisted.ensureDeferred
async def test_aLeaderWhoseTermPassedWritesNothing(connection: RedisConnection) -> None:
    """
    The paused leader: it still believes it leads, but the lease went to
    another hub meanwhile, which wrote seq 2; its own seq 2 is refused and it
    writes nothing more.
    """
    old = await lead(connection, "a")
    old.board.update(picture("web", "deploying"))
    await old.settled()
    await connection.call(lambda c: c.delete("t:lease"))
    new = await lead(connection, "b")
    new.board.update(picture("web"))
    await new.settled()

    old.board.update(picture("web", "failed", error="late"))
    old.board.update(picture("web", "tearing_down"))
    await old.settled()
    assert old.writer.stopped and len(old.refusals) == 1
    assert "the lease is b" in old.refusals[0]
    stored = await fetch(connection, "web", 0, 100)
    assert [(m["seq"], m["deployStatus"]) for m in stored] == [(1, "deploying"), (2, "deployed")]
    assert [m["seq"] for m in old.delivered] == [1]
    # and after stopping it takes nothing more
    old.board.update(picture("web", "deploying"))
    assert old.writer._queue == []


@pytest_twisted.ensureDeferred
async def test_aSeqThatDoesNotFollowIsRefused(connection: RedisConnection) -> None:
    leader = await lead(connection, "a")
    leader.board._numbering._last["web"] = 5  # numbering gone astray
    leader.board.update(picture("web", "deploying"))
    await leader.settled()
    assert leader.writer.stopped
    assert "does not follow the stored 0" in leader.refusals[0]
    assert (await readState(connection)).last == {}


@pytest_twisted.ensureDeferred
async def test_anotherEpochIsRefused(connection: RedisConnection) -> None:
    leader = await lead(connection, "a")
    # Redis lost its data and a new numbering began
    await connection.call(lambda c: c.set("t:epoch", "epoch-2"))
    leader.board.update(picture("web", "deploying"))
    await leader.settled()
    assert leader.writer.stopped and "epoch is epoch-2" in leader.refusals[0]


@pytest_twisted.ensureDeferred
async def test_aWriteRetriedAfterItsAnswerWasLostCountsAsWritten(connection: RedisConnection) -> None:
    leader = await lead(connection, "a")
    leader.board.update(picture("web", "deploying"))
    await leader.settled()
    message = leader.delivered[0]
    # the same message again (its first answer lost): no refusal, no new entry
    leader.writer._queue.append((message, ""))
    leader.writer._write()
    await leader.settled()
    assert leader.refusals == []
    assert len(await fetch(connection, "web", 0, 100)) == 1
    # a different message with that seq is refused
    leader.writer._queue.append(({**message, "error": "other"}, ""))
    leader.writer._write()
    await leader.settled()
    assert leader.writer.stopped


@pytest_twisted.ensureDeferred
async def test_whileRedisIsAwayWritesWaitAndAreRetried(connection: RedisConnection) -> None:
    leader = await lead(connection, "a", retry=0.1)
    server = connection.server
    server.persistent = True  # nothing was written yet: the restart keeps the lease
    server.stop()
    server.start()
    await connection.call(lambda c: c.set("t:epoch", "epoch-1"))
    await connection.call(lambda c: c.set("t:lease", f"a {leader.writer.term}", px=60_000))
    server.stop()
    leader.board.update(picture("web", "deploying"))
    await waitUntil(lambda: leader.writer._retrying is not None, 10, what="a failed write")
    assert leader.delivered == [] and not leader.writer.stopped
    server.start()
    async def written() -> bool:
        leader.clock.advance(0.1)
        return bool(leader.delivered)
    await waitUntil(written, 10, what="the write retried")
    assert [m["seq"] for m in leader.delivered] == [1]


@pytest_twisted.ensureDeferred
async def test_theIdlePictureChangedUnseenIsShownWhenTheLastDeploymentEnds(connection: RedisConnection) -> None:
    leader = await lead(connection, "a")
    board = leader.board
    board.change(None, engine="reachable")  # shown: written and published
    board.update(picture("web"))
    board.change(None, engine="unreachable")  # not shown: the board emits nothing
    board.update(picture("web", "idle"))
    await leader.settled()
    # numbered only when shown again, like any other message: written and published
    idle = [(m["seq"], m["engine"]) for m in leader.delivered if m["deployment"] is None]
    assert idle == [(1, "reachable"), (2, "unreachable")]
    state = await readState(connection)
    assert state.current[None]["engine"] == "unreachable" and state.last[None] == 2


@pytest_twisted.ensureDeferred
async def test_retentionByCountAcrossDeployments(connection: RedisConnection) -> None:
    leader = await lead(connection, "a", maxMessages=5)
    for i in range(4):
        leader.board.update(picture("one", error=str(i)))
        leader.board.update(picture("two", error=str(i)))
    await leader.settled()
    one = await fetch(connection, "one", 0, 100)
    two = await fetch(connection, "two", 0, 100)
    assert len(one) + len(two) == 5
    # the oldest went first, whatever their deployment
    assert [m["seq"] for m in one] == [3, 4] and [m["seq"] for m in two] == [2, 3, 4]
    assert (await readState(connection)).last == {"one": 4, "two": 4}


@pytest_twisted.ensureDeferred
async def test_retentionByAge(connection: RedisConnection) -> None:
    # a tenth of a second kept
    leader = await lead(connection, "a", keepDays=0.1 / 86400)
    leader.board.update(picture("web", "deploying"))
    await leader.settled()
    await deferLater(reactor, 0.2, lambda: None)  # let Redis's clock pass the age
    leader.board.update(picture("web"))
    await leader.settled()
    assert [m["seq"] for m in await fetch(connection, "web", 0, 100)] == [2]


@pytest_twisted.ensureDeferred
async def test_historyPages(connection: RedisConnection) -> None:
    leader = await lead(connection, "a")
    for i in range(10):
        leader.clock.advance(60)  # a minute between messages
        leader.board.update(picture("web", error=str(i)))
    await leader.settled()
    history = RedisHistory(connection)
    verifyObject(IHistory, history)
    page = await history.page("web", since=3, limit=4)
    assert (page.first, page.last) == (1, 10)
    assert [json.loads(b)["seq"] for b in page.bodies] == [4, 5, 6, 7]
    # after: stamped after the 6th message's time
    sixth = json.loads((await history.page("web", since=5, limit=1)).bodies[0])
    after = stampedAt(sixth, 0)
    page = await history.page("web", since=0, limit=100, after=after)
    assert [json.loads(b)["seq"] for b in page.bodies] == [7, 8, 9, 10]
    page = await history.page("web", since=8, limit=100, after=after)
    assert [json.loads(b)["seq"] for b in page.bodies] == [9, 10]
    never = await history.page("nothing")
    assert (never.first, never.last, never.bodies) == (0, 0, [])
    assert history.health() == "ok"


@pytest_twisted.ensureDeferred
async def test_historyPageStopsAtWhatTheMirrorShows(connection: RedisConnection) -> None:
    leader = await lead(connection, "a")
    for i in range(5):
        leader.board.update(picture("web", error=str(i)))
    await leader.settled()
    mirror = Mirror(Clock())
    mirror.sync(await readState(connection))
    mirror._last["web"] = 3  # two still on their way to this hub
    page = await RedisHistory(connection, mirror).page("web", since=1)
    assert page.last == 3 and [json.loads(b)["seq"] for b in page.bodies] == [2, 3]


@pytest_twisted.ensureDeferred
async def test_historyUnavailableWithoutRedis(connection: RedisConnection) -> None:
    connection.server.stop()
    history = RedisHistory(connection)
    with pytest.raises(HistoryUnavailable):
        await history.page("web")
    assert history.health() == "unreachable"
