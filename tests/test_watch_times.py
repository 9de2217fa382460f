"""
C{statushub watch}'s FOR column and its end, in unit tests: FOR counts from
each node's C{since} (the hub's word) and moves on between messages; asked
to stop, it is done within a second even when the hub never answers the
close.  The command in a child process is in tests/test_watch_stop.py.
"""

from __future__ import annotations

import io
from datetime import datetime

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock

from statushub.cli.displays import NodeClock, Table
from statushub.cli.feed import Watcher

SINCE = "2026-11-26T08:00:00.000Z"
SINCE_SECONDS = datetime.fromisoformat(SINCE).timestamp()


def picture(nodes: list[dict], seq: int = 1) -> dict:
    return {
        "type": "status_update", "deployStatus": "deployed", "nodeStatuses": nodes,
        "deployment": "demo", "engine": "reachable", "error": None, "seq": seq,
        "epoch": "e", "timestamp": SINCE,
    }


def test_forCountsFromTheNodesSince() -> None:
    """
    A node that says since when it is in its state is counted from then,
    not from when watch first saw it; one that does not, from then.
    """
    clock = NodeClock()
    nodes = [{"nodeId": "web", "status": "running", "since": SINCE},
             {"nodeId": "old", "status": "running"}]
    seen = SINCE_SECONDS + 12 * 60
    clock.update(nodes, now=seen)
    assert clock.seconds("web", now=seen) == 12 * 60
    assert clock.seconds("old", now=seen) == 0
    clock.update(nodes, now=seen + 5)
    assert clock.seconds("web", now=seen + 10) == 12 * 60 + 10
    assert clock.seconds("old", now=seen + 10) == 10
    # a new since (the status changed): from the new one
    later = "2026-11-26T08:11:00.000Z"
    clock.update([{"nodeId": "web", "status": "exited", "since": later}], now=seen + 20)
    assert clock.seconds("web", now=seen + 20) == 80
    # a hub whose clock is ahead: never a negative time
    clock.update([{"nodeId": "web", "status": "exited", "since": "2027-01-01T00:00:00Z"}], now=seen)
    assert clock.seconds("web", now=seen) == 0


def test_forIgnoresASinceItCannotRead() -> None:
    clock = NodeClock()
    clock.update([{"nodeId": "web", "status": "running", "since": "soon"}], now=100)
    assert clock.seconds("web", now=130) == 30


def test_tableTicksFromSince() -> None:
    """
    On a terminal the FOR column moves on every second between messages,
    from the node's since.
    """
    out, clock = io.StringIO(), Clock()
    clock.advance(SINCE_SECONDS + 12 * 60)
    table = Table(out, clock, tty=True, colour=False, deployment="demo")
    table.message(picture([{"nodeId": "web", "containerId": "c", "status": "running",
                            "since": SINCE}]))
    clock.advance(1)
    table.tick()
    frames = out.getvalue().split(Table.CLEAR)[1:]
    fors = [next(line for line in frame.splitlines() if line.startswith("web")).split()[-1]
            for frame in frames]
    assert fors == ["12m00s", "12m01s"]


class SilentHub:
    """
    The protocol of a feed whose hub never answers the close handshake.
    """

    def __init__(self) -> None:
        self.closes: list[tuple[int, str]] = []

    def sendClose(self, code: int, reason: str) -> None:
        self.closes.append((code, reason))


def test_stopIsDoneWithinASecondWhenTheHubDoesNotAnswer() -> None:
    clock = Clock()
    watcher = Watcher(clock, "http://127.0.0.1:1", None, display=None)
    hub = SilentHub()
    watcher._protocol, watcher._closedNow = hub, Deferred()
    done = watcher.stop()
    assert hub.closes and hub.closes[0][0] == 1000
    assert not done.called
    clock.advance(1.0)
    assert done.called


def test_stopIsDoneAtOnceWhenTheHubAnswers() -> None:
    clock = Clock()
    watcher = Watcher(clock, "http://127.0.0.1:1", None, display=None)
    watcher._protocol, watcher._closedNow = SilentHub(), Deferred()
    closed = watcher._closedNow
    done = watcher.stop()
    closed.callback("closed")
    assert done.called
    assert clock.getDelayedCalls() == [] or all(not c.active() for c in clock.getDelayedCalls())
