"""
The health poller and the event follower on their own, with a L{task.Clock}.
"""

from __future__ import annotations

from twisted.application.internet import backoffPolicy
from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Clock

from statushub.deploy.events import EventFollower
from statushub.deploy.poller import HealthPoller
from statushub.engine import EngineEvent
from tests.fakeengine import FakeEngine, callNow


def test_failingPollDoesNotStopTheLoop() -> None:
    clock = Clock()
    calls = []

    async def poll() -> None:
        calls.append(clock.seconds())
        raise RuntimeError("boom")

    poller = HealthPoller(poll, clock, 1.0)
    poller.startService()
    clock.pump([1.0] * 5)
    assert len(calls) == 6
    assert poller.running
    poller.stopService()
    clock.pump([1.0] * 3)
    assert len(calls) == 6


def test_slowPollIsNotOverlapped() -> None:
    """
    A poll that outlasts the interval delays the next one instead of
    running beside it.
    """
    clock = Clock()
    pending: list[Deferred] = []
    active = []

    async def poll() -> None:
        active.append(1)
        assert len(active) == 1, "two polls at once"
        d: Deferred = Deferred()
        pending.append(d)
        await d
        active.pop()

    poller = HealthPoller(poll, clock, 1.0)
    poller.startService()
    clock.pump([1.0] * 5)
    poller.pollSoon(0)
    clock.advance(0)
    assert len(pending) == 1
    stopped = poller.stopService()
    assert not stopped.called  # waits for the running poll
    pending[0].callback(None)
    assert stopped.called
    assert len(pending) == 1


def test_pollSoon() -> None:
    clock = Clock()
    calls = []
    poller = HealthPoller(lambda: succeed(calls.append(1)), clock, 10.0)
    poller.pollSoon(0)
    clock.advance(0)
    assert calls == []  # not started: nothing to poll
    poller.startService()
    poller.pollSoon(0.5)
    poller.pollSoon(0.5)  # folded into the one already asked for
    clock.advance(0.5)
    assert len(calls) == 2
    poller.stopService()


def test_nothingToPollCostsNothing() -> None:
    """
    While C{active()} says there is nothing to poll, the loop's ticks and
    on-demand polls call nothing and count nothing; they poll again once
    it says there is.
    """
    clock = Clock()
    calls = []
    active = [False]
    durations = []
    poller = HealthPoller(lambda: succeed(calls.append(1)), clock, 1.0,
                          observeDuration=durations.append, active=lambda: active[0])
    poller.startService()
    poller.pollSoon(0)
    clock.pump([1.0] * 3)
    assert (calls, poller.polls, durations) == ([], 0, [])
    active[0] = True
    poller.pollNow()
    clock.advance(1.0)
    assert len(calls) == poller.polls == len(durations) == 2
    poller.stopService()


def test_followerHandsEventsOnAndSurvivesABadHandler() -> None:
    clock = Clock()
    engine = FakeEngine()
    seen = []

    def onEvent(event: EngineEvent) -> None:
        seen.append(event.action)
        if event.action == "bad":
            raise ValueError("handler bug")

    follower = EventFollower(engine, {}, onEvent, clock, runInThread=callNow)
    follower.startService()
    [stream] = engine.streams
    for action in ("start", "bad", "die"):
        stream.push(EngineEvent("c", action))
    assert seen == ["start", "bad", "die"]
    assert follower.connected
    done = follower.stopService()
    assert done.called and stream.closed


def test_followerBacksOffThenReconnects() -> None:
    clock = Clock()
    engine = FakeEngine()
    engine.reachable = False
    connected = []
    follower = EventFollower(engine, {}, lambda e: None, clock,
                             onConnected=lambda: connected.append(clock.seconds()),
                             runInThread=callNow,
                             retryPolicy=backoffPolicy(1.0, 4.0, 2.0, jitter=lambda: 0.0))
    follower.startService()
    attempts = lambda: engine.calls.count("events")  # noqa: E731
    assert attempts() == 1
    clock.advance(1.0)
    assert attempts() == 2
    clock.advance(1.0)
    assert attempts() == 2  # now waiting 2 s
    clock.advance(1.0)
    assert attempts() == 3
    clock.advance(4.0)
    assert attempts() == 4
    clock.advance(4.0)
    assert attempts() == 5  # capped at 4 s
    engine.reachable = True
    clock.advance(4.0)
    assert follower.connected and connected == [clock.seconds()]
    follower.stopService()
    assert engine.streams[0].closed


def test_stopWhileWaitingToReconnect() -> None:
    clock = Clock()
    engine = FakeEngine()
    engine.reachable = False
    follower = EventFollower(engine, {}, lambda e: None, clock, runInThread=callNow)
    follower.startService()
    done = follower.stopService()
    assert done.called
    clock.advance(60)
    assert engine.calls.count("events") == 1
