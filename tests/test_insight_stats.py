"""
Resource use in memory: streams only while watched, one message a second
per deployment, the linger, nodes that stop, hosts out of reach, the API's
read.
"""

from __future__ import annotations

import pytest
from twisted.application.internet import TimerService
from twisted.internet.defer import ensureDeferred
from twisted.internet.task import Clock
from zope.interface.verify import verifyObject

from statushub.errors import UnknownDeployment
from statushub.insight.stats import FIRST_SAMPLE_WAIT, IStatsWatcher, StatsHub
from tests.fakeengine import FakeEngine
from tests.fakeinsight import DeferredPump, FakeLocator, RecordingFollower, callNow

MiB = 2**20


class Setup:
    made: list["Setup"] = []

    def __init__(self, **options) -> None:
        Setup.made.append(self)
        self.clock = Clock()
        self.engine = FakeEngine()
        self.locator = FakeLocator(self.engine)
        self.pump = DeferredPump()
        self.hub = StatsHub(self.engine, self.locator, self.clock, self.pump, callNow, **options)
        # the rounds, as the insight service runs them
        self.rounds = TimerService(self.hub.interval, self.hub.tick)
        self.rounds.clock = self.clock
        self.rounds.startService()
        self.ids = self.locator.deploy("demo", "web", "db")

    def watch(self, deployment="demo") -> RecordingFollower:
        watcher = RecordingFollower()
        self.hub.watch(watcher, deployment)
        return watcher


@pytest.fixture(autouse=True)
def closeEverything():
    yield
    for setup in Setup.made:
        setup.rounds.stopService()
        setup.hub.closeAll()
        assert setup.pump.running == 0
        setup.engine.assertStreamsClosed()
    Setup.made.clear()


def test_interfaces() -> None:
    verifyObject(IStatsWatcher, RecordingFollower())


def test_streamsOnlyWhileWatched() -> None:
    """
    No stream before anyone watches; one per running node while watched,
    however many watch; all closed a linger after the last one left.
    """
    setup = Setup(linger=5.0)
    assert setup.engine.statsStreams == []
    watchers = [setup.watch() for _ in range(3)]
    assert len(setup.engine.openStatsStreams()) == 2
    assert setup.hub.streams == 2
    for watcher in watchers:
        setup.hub.unwatch(watcher)
    setup.clock.advance(4.0)
    assert setup.hub.streams == 2
    setup.clock.advance(2.0)
    assert setup.engine.openStatsStreams() == []
    assert setup.hub.streams == 0
    # nothing left to do: a round asks nothing of anyone
    calls = len(setup.engine.calls)
    setup.clock.advance(10.0)
    assert len(setup.engine.calls) == calls and setup.hub.streams == 0


def test_aMessageASecond() -> None:
    """
    Each watcher gets its deployment's running nodes, in topology order,
    about once a second: CPU in percent of a core, memory and its limit.
    """
    setup = Setup()
    watcher = setup.watch()
    setup.engine.sample(setup.ids["web"], 150.5, 20 * MiB, 64 * MiB, "2026-11-26T08:00:01Z")
    setup.engine.sample(setup.ids["db"], 1.0, 30 * MiB)
    watcher.take()
    setup.clock.advance(1.0)
    [message] = watcher.take()
    assert message == {
        "type": "stats",
        "deployment": "demo",
        "nodes": [
            {"nodeId": "web", "cpu": 150.5, "memoryBytes": 20 * MiB,
             "memoryLimitBytes": 64 * MiB, "time": "2026-11-26T08:00:01Z"},
            {"nodeId": "db", "cpu": 1.0, "memoryBytes": 30 * MiB,
             "memoryLimitBytes": 512 * MiB, "time": "2026-11-26T08:00:00.000000000Z"},
        ],
    }
    setup.clock.advance(1.0)
    assert len(watcher.take()) == 1


def test_nodeThatStops() -> None:
    """
    A node that stops leaves the message and its stream is closed; the
    other nodes go on.
    """
    setup = Setup()
    watcher = setup.watch()
    setup.engine.sample(setup.ids["web"], 1.0, MiB)
    setup.engine.sample(setup.ids["db"], 2.0, MiB)
    setup.engine.exit(setup.ids["db"], 137)
    assert setup.hub.streams == 1
    watcher.take()
    setup.clock.advance(1.0)
    [message] = watcher.take()
    assert [n["nodeId"] for n in message["nodes"]] == ["web"]
    assert len(setup.engine.openStatsStreams()) == 1


def test_unreachableHost() -> None:
    """
    A node whose resource use cannot be read is in the message, marked
    unavailable with the reason.
    """
    setup = Setup()
    setup.engine.statsUnavailable[setup.ids["db"]] = "runs on host worker, out of reach"
    watcher = setup.watch()
    setup.engine.sample(setup.ids["web"], 1.0, MiB)
    setup.clock.advance(1.0)
    db = watcher.messages[-1]["nodes"][1]
    assert db["nodeId"] == "db"
    assert db["unavailable"] == "runs on host worker, out of reach"
    assert db["cpu"] is None and db["memoryBytes"] is None


def test_everyDeployment() -> None:
    """
    A watcher of no one deployment gets a message for each.
    """
    setup = Setup()
    other = setup.locator.deploy("other", "api")
    watcher = setup.watch(None)
    setup.engine.sample(other["api"], 3.0, MiB)
    setup.clock.advance(1.0)
    last = watcher.messages[-2:]
    assert [m["deployment"] for m in last] == ["demo", "other"]
    assert last[1]["nodes"][0]["nodeId"] == "api"
    assert len(setup.engine.openStatsStreams()) == 3


def test_unknownDeployment() -> None:
    setup = Setup()
    with pytest.raises(UnknownDeployment):
        setup.hub.watch(RecordingFollower(), "nope")


def test_apiRead() -> None:
    """
    The API's read opens the streams for the while, answers once every
    running node has a sample, and the streams close after the linger.
    """
    setup = Setup(linger=5.0)
    answer = ensureDeferred(setup.hub.current("demo"))
    assert not answer.called
    setup.engine.sample(setup.ids["web"], 5.0, MiB)
    setup.clock.advance(0.1)
    assert not answer.called
    setup.engine.sample(setup.ids["db"], 6.0, MiB)
    setup.clock.advance(0.1)
    body = answer.result
    assert body["deployment"] == "demo"
    assert [(n["nodeId"], n["cpu"]) for n in body["nodes"]] == [("web", 5.0), ("db", 6.0)]
    setup.clock.advance(6.0)
    assert setup.engine.openStatsStreams() == []


def test_apiReadGivesUp() -> None:
    """
    A node that gives no sample does not hold the answer up for long.
    """
    setup = Setup()
    answer = ensureDeferred(setup.hub.current("demo"))
    setup.engine.sample(setup.ids["web"], 5.0, MiB)
    setup.clock.pump([0.1] * int(FIRST_SAMPLE_WAIT / 0.1 + 2))
    assert [n["nodeId"] for n in answer.result["nodes"]] == ["web"]
