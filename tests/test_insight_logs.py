"""
Following logs in memory: the fake engine's streams, a task.Clock, followers
that keep what they are sent.  One engine stream per followed node, the
tail before the live lines with nothing lost or doubled, batches, the line
rate, the linger, the end.
"""

from __future__ import annotations

import pytest
import pytest_twisted
from twisted.internet.defer import ensureDeferred
from twisted.internet.task import Clock
from zope.interface.verify import verifyObject

from statushub.engine import EngineError
from statushub.errors import UnknownDeployment, UnknownNode
from statushub.insight.logs import ILogFollower, LineBuffer, LogHub
from statushub.insight.pumps import IStreamPump, StreamThreads
from statushub.interfaces import IContainerEngine, ILogStream, INodeLocator, IStatsStream
from tests.fakeengine import FakeEngine, FakeStream
from tests.fakeinsight import (
    DeferredPump,
    FakeLocator,
    RecordingFollower,
    callNow,
)


class Setup:
    made: list["Setup"] = []

    def __init__(self, **options) -> None:
        Setup.made.append(self)
        self.clock = Clock()
        self.engine = FakeEngine()
        self.locator = FakeLocator(self.engine)
        self.pump = DeferredPump(options.pop("maximum", 100))
        self.hub = LogHub(self.engine, self.locator, self.clock, self.pump, callNow, **options)
        self.ids = self.locator.deploy("demo", "web", "db")

    def follow(self, node: str = "web", tail: int = 100) -> RecordingFollower:
        follower = RecordingFollower()
        ensureDeferred(self.hub.follow("demo", node, follower, tail))
        return follower

    def print(self, *texts: str, node: str = "web") -> None:
        for text in texts:
            self.engine.printLine(self.ids[node], text)


@pytest.fixture(autouse=True)
def closeEverything():
    """
    Every stream a test left open is closed at its end: a fake stream's
    reader left suspended would be resumed by the GC, in another test.
    """
    yield
    for setup in Setup.made:
        setup.hub.closeAll()
        assert setup.pump.running == 0
        setup.engine.assertStreamsClosed()
    Setup.made.clear()


def test_interfaces() -> None:
    from twisted.internet import reactor

    setup = Setup()
    verifyObject(IContainerEngine, setup.engine)
    verifyObject(INodeLocator, setup.locator)
    verifyObject(IStreamPump, setup.pump)
    verifyObject(IStreamPump, StreamThreads(reactor))
    verifyObject(ILogFollower, RecordingFollower())
    verifyObject(ILogStream, FakeStream("x"))
    verifyObject(IStatsStream, FakeStream("x"))


def test_oneStreamForEveryFollower() -> None:
    """
    However many follow a node, the engine is asked for one stream; every
    follower gets the same batches.
    """
    setup = Setup()
    followers = [setup.follow() for _ in range(5)]
    assert len(setup.engine.openLogStreams()) == 1
    assert setup.hub.streams == 1
    setup.print("one", "two")
    setup.clock.advance(0)
    for follower in followers:
        assert follower.texts() == ["one", "two"]
        assert [m["type"] for m in follower.messages] == ["log", "log"]
        first = follower.messages[0]
        assert (first["deployment"], first["node"], first["lines"]) == ("demo", "web", [])
    # another node: a stream of its own
    setup.follow("db")
    assert len(setup.engine.openLogStreams()) == 2


def test_tailThenLive() -> None:
    """
    The first message is the node's newest lines, oldest first; live lines
    follow.
    """
    setup = Setup()
    setup.print(*[f"line {n}" for n in range(1, 11)])
    follower = setup.follow(tail=3)
    first = follower.messages[0]
    assert first["type"] == "log"
    assert [line["text"] for line in first["lines"]] == ["line 8", "line 9", "line 10"]
    assert set(first["lines"][0]) == {"time", "stream", "text"}
    setup.print("line 11")
    setup.clock.advance(0)
    assert follower.texts() == ["line 8", "line 9", "line 10", "line 11"]
    # tail 0: nothing of the past
    assert setup.follow(tail=0).messages[0]["lines"] == []


def test_nothingLostOrDoubledWhileTheTailIsRead() -> None:
    """
    Lines that reach the stream while a follower's tail is read are held
    for it: after the tail it gets those the tail did not have, once each.
    """
    setup = Setup()
    setup.print("1", "2")
    setup.engine.holdReads = True
    follower = setup.follow(tail=100)
    assert follower.messages == []
    setup.print("3", "4")  # in the stream, and in the log the read will see
    setup.clock.advance(1)
    assert follower.messages == []  # held, not sent before the tail
    setup.engine.releaseReads()
    setup.print("5")
    setup.clock.advance(1)
    assert follower.texts() == ["1", "2", "3", "4", "5"]


def test_nothingDoubledFromTheStreamsLastBatch() -> None:
    """
    Lines the stream had read, but not yet sent as a batch, when a
    follower's tail was read are in both: the follower gets them once.
    """
    setup = Setup()
    setup.print("1")
    setup.engine.holdReads = True
    follower = setup.follow(tail=100)
    setup.print("2", "3")  # read by the stream, their batch not yet sent
    setup.engine.releaseReads()
    assert follower.texts() == ["1", "2", "3"]
    setup.clock.advance(1)  # the batch of 2 and 3 goes out
    setup.print("4")
    setup.clock.advance(1)
    assert follower.texts() == ["1", "2", "3", "4"]
    # a follower that was live before gets every batch as it is
    assert setup.follow(tail=0).texts() == []


def test_aLineStampedEarlierOnTheOtherStream() -> None:
    """
    The engine reads stdout and stderr apart: a stderr line may be stamped
    a little before a stdout line written ahead of it.  Coming after the
    follower's tail, it is not taken for one the tail had.
    """
    setup = Setup()
    web = setup.ids["web"]
    setup.engine.printLine(web, "out 1", time="2026-11-26T08:00:00.000000100Z")
    setup.engine.holdReads = True
    follower = setup.follow(tail=100)
    setup.engine.printLine(web, "out 2", time="2026-11-26T08:00:00.000000300Z")
    setup.engine.releaseReads()
    assert follower.texts() == ["out 1", "out 2"]
    setup.engine.printLine(web, "err 1", "stderr", time="2026-11-26T08:00:00.000000200Z")
    setup.clock.advance(1)
    assert follower.texts() == ["out 1", "out 2", "err 1"]


def test_batchesAtMostEveryInterval() -> None:
    """
    A line after a quiet while goes at once; lines close behind it wait for
    the batch interval and go together.
    """
    setup = Setup(batchInterval=0.1)
    follower = setup.follow(tail=0)
    follower.take()
    setup.print("a")
    setup.clock.advance(0)
    assert [m["lines"][0]["text"] for m in follower.take()] == ["a"]
    for text in "bcd":
        setup.clock.advance(0.02)
        setup.print(text)
    assert follower.take() == []
    setup.clock.advance(0.04)
    [batch] = follower.take()
    assert [line["text"] for line in batch["lines"]] == ["b", "c", "d"]


def test_lineRate() -> None:
    """
    Above C{max_lines_per_second} a node's lines are left out, and every
    follower told how many (C{log_gap}); the rate refills with time.
    """
    setup = Setup(maxLinesPerSecond=10)
    follower = setup.follow(tail=0)
    follower.take()
    setup.print(*[str(n) for n in range(25)])
    setup.clock.advance(0.1)
    messages = follower.take()
    assert [m["type"] for m in messages] == ["log", "log_gap"]
    assert len(messages[0]["lines"]) == 10
    assert messages[1]["dropped"] == 15
    setup.clock.advance(1.0)
    setup.print("after")
    setup.clock.advance(0.1)
    assert [m["type"] for m in follower.take()] == ["log"]


def test_lineBuffer() -> None:
    """
    The buffer says when a batch begins (the reactor is then woken once).
    """
    clock = Clock()
    buffer = LineBuffer(clock, 2)
    from statushub.engine import LogLine

    line = LogLine("t", "stdout", "x")
    assert buffer.add(line) is True
    assert buffer.add(line) is False
    assert buffer.add(line) is False  # left out: over the rate
    assert buffer.take() == ([line, line], 1)
    assert buffer.take() == ([], 0)
    clock.advance(0.5)
    assert buffer.add(line) is True
    assert buffer.take() == ([line], 0)


def test_lingerThenClose() -> None:
    """
    When the last follower leaves, the stream stays open for a while (a
    follower that comes back finds it), then closes: well within 10 s.
    """
    setup = Setup(linger=5.0)
    first, second = setup.follow(), setup.follow()
    setup.hub.unfollow(first)
    setup.hub.unfollow(second)
    setup.clock.advance(4.0)
    assert setup.hub.streams == 1
    back = setup.follow()
    setup.clock.advance(4.0)
    assert len(setup.engine.openLogStreams()) == 1
    setup.print("still here")
    setup.clock.advance(0.1)
    assert back.texts() == ["still here"]
    setup.hub.unfollow(back)
    setup.clock.advance(5.0)
    assert setup.engine.openLogStreams() == []
    assert setup.hub.streams == 0
    assert setup.pump.running == 0
    # following again opens a new stream
    setup.follow()
    assert len(setup.engine.openLogStreams()) == 1


def test_endWhenTheContainerStops() -> None:
    """
    The stream ends with the container: every follower is told, after the
    last lines; following the stopped node gives its tail, then the end.
    """
    setup = Setup()
    follower = setup.follow()
    setup.print("last words")
    setup.engine.exit(setup.ids["web"], 137)
    assert follower.texts() == ["last words"]
    assert follower.ended
    assert setup.hub.streams == 0
    late = setup.follow(tail=5)
    assert late.texts() == ["last words"]
    assert late.ended
    assert setup.hub.followers == 0


def test_nodeWithoutContainer() -> None:
    setup = Setup()
    setup.locator.nodes["demo"].append(("gone", "f" * 64))
    follower = setup.follow("gone")
    assert follower.messages[0]["lines"] == []
    assert follower.ended


@pytest_twisted.ensureDeferred
async def test_unknownDeploymentOrNode() -> None:
    setup = Setup()
    with pytest.raises(UnknownDeployment):
        await setup.hub.follow("nope", "web", RecordingFollower())
    with pytest.raises(UnknownNode):
        await setup.hub.follow("demo", "nope", RecordingFollower())
    with pytest.raises(UnknownNode):
        await setup.hub.tail("demo", "nope", 10)
    assert setup.engine.logStreams == []


@pytest_twisted.ensureDeferred
async def test_tailForTheAPI() -> None:
    setup = Setup()
    setup.print("a", "b", "c")
    lines = await setup.hub.tail("demo", "web", 2)
    assert [line.text for line in lines] == ["b", "c"]
    assert await setup.hub.tail("demo", "web", 0) == []
    assert setup.engine.logStreams == []  # a read, no stream


def test_engineRefuses() -> None:
    """
    A stream the engine cannot open fails every follower waiting for it,
    with the reason; the next follower tries again.
    """
    setup = Setup()
    setup.engine.failNext["followLogs"] = EngineError("follow the log: the engine broke")
    follower = setup.follow()
    assert follower.failed == "follow the log: the engine broke"
    assert setup.hub.streams == 0 and setup.hub.followers == 0
    assert setup.follow().failed is None
    assert setup.hub.streams == 1


def test_tooManyStreams() -> None:
    """
    Past the bound on streams, a follower of another node is refused (the
    stream is closed, not queued); followers of an open stream still join.
    """
    setup = Setup(maximum=1)
    setup.follow("web")
    refused = setup.follow("db")
    assert "max_streams" in refused.failed or "streams already" in refused.failed
    assert len(setup.engine.openLogStreams()) == 1
    assert setup.follow("web").failed is None


def test_leavingWhileTheTailIsRead() -> None:
    setup = Setup()
    setup.engine.holdReads = True
    follower = setup.follow()
    setup.hub.unfollow(follower)
    setup.engine.releaseReads()
    setup.clock.advance(1)
    assert follower.messages == []
    setup.clock.advance(10)
    assert setup.engine.openLogStreams() == []


def test_endWhenTheNodeIsGone() -> None:
    """
    A status message about a deployment whose followed node has lost its
    container (torn down, recreated) ends that log, whether or not the
    engine ended its stream (a swarm's service log does not); the other
    nodes' logs go on.
    """
    setup = Setup()
    web, db = setup.follow("web"), setup.follow("db")
    setup.hub.broadcast({"deployment": "demo", "deployStatus": "deployed"})
    assert not web.ended and not db.ended
    # recreated: the node has another container now
    setup.locator.nodes["demo"][0] = ("web", "a" * 64)
    setup.hub.broadcast({"deployment": "other", "deployStatus": "deployed"})
    assert not web.ended
    setup.hub.broadcast({"deployment": "demo", "deployStatus": "deployed"})
    assert web.ended and not db.ended
    assert setup.hub.streams == 1
    # torn down: the deployment is gone
    del setup.locator.nodes["demo"]
    setup.hub.broadcast({"deployment": "demo", "deployStatus": "idle"})
    assert db.ended
    assert setup.hub.streams == 0 and setup.engine.openLogStreams() == []
