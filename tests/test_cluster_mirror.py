"""
The mirror every hub of a cluster serves: messages applied once, in order;
a gap filled from the history while later messages wait; a full read after
a (re)subscription; a new epoch; the board's rules for the picture of no
deployment.  No Redis: the history is a stand-in.
"""

from __future__ import annotations

from typing import Any, Optional

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from zope.interface.verify import verifyObject

from statushub.cluster.mirror import ClusterState, Mirror
from statushub.interfaces import IStatusSource
from statushub.status import Picture


def message(name: Optional[str], seq: int, status: str = "deployed", epoch: str = "e1",
            **extra: Any) -> dict:
    return {**Picture(deployStatus=status, deployment=name).toMessage(seq, "t", epoch), **extra}


class Sink:
    def __init__(self) -> None:
        self.got: list[tuple[Optional[str], int]] = []

    def broadcast(self, m: dict) -> None:
        self.got.append((m["deployment"], m["seq"]))


class History:
    """
    A stand-in history: every fetch waits until the test answers it.
    """

    def __init__(self) -> None:
        self.asked: list[tuple[Optional[str], int, int, Deferred]] = []

    def fetch(self, name: Optional[str], after: int, upto: int) -> Deferred:
        d: Deferred = Deferred()
        self.asked.append((name, after, upto, d))
        return d


def mirror() -> tuple[Mirror, Sink, History]:
    history, sink = History(), Sink()
    m = Mirror(Clock(), history.fetch)
    m.sync(ClusterState("e1"))
    m.addSink(sink)
    return m, sink, history


def test_anIStatusSource() -> None:
    m, sink, _ = mirror()
    verifyObject(IStatusSource, m)
    assert m.epoch == "e1" and m.names() == []
    assert m.snapshot()[0]["deployment"] is None


def test_appliedInOrderOnce() -> None:
    m, sink, _ = mirror()
    m.receive(message("web", 1, "deploying"))
    m.receive(message("web", 1, "deploying"))  # again: from the subscription after the write
    m.receive(message("web", 2))
    assert sink.got == [("web", 1), ("web", 2)]
    assert m.names() == ["web"] and m.current("web")["seq"] == 2
    m.receive(message("web", 3, "idle"))
    assert m.names() == [] and sink.got[-1] == ("web", 3)
    # a name that is not current: idle, with its last seq
    assert m.current("web")["deployStatus"] == "idle" and m.current("web")["seq"] == 3


def test_aGapIsFilledWhileLaterMessagesWait() -> None:
    m, sink, history = mirror()
    m.receive(message("web", 1))
    m.receive(message("web", 4))
    m.receive(message("web", 5))
    m.receive(message("db", 1))  # another deployment is not held up
    assert sink.got == [("web", 1), ("db", 1)]
    (name, after, upto, d), = history.asked
    assert (name, after, upto) == ("web", 1, 3)
    d.callback([message("web", 2), message("web", 3)])
    assert sink.got == [("web", 1), ("db", 1), ("web", 2), ("web", 3), ("web", 4), ("web", 5)]


def test_aGapThatCannotBeFilledIsJumped() -> None:
    m, sink, history = mirror()
    m.receive(message("web", 1))
    m.receive(message("web", 4))
    history.asked[0][3].callback([])  # pruned meanwhile
    assert sink.got == [("web", 1), ("web", 4)]


def test_syncFillsWhatWasMissed() -> None:
    m, sink, history = mirror()
    m.receive(message("web", 1))
    state = ClusterState(
        "e1",
        last={"web": 3, "db": 2, None: 4},
        current={"web": message("web", 3), "db": message("db", 2), None: message(None, 4)},
    )
    m.sync(state)
    asked = {a[0]: a for a in history.asked}
    assert (asked["web"][1], asked["web"][2]) == (1, 3)
    assert (asked["db"][1], asked["db"][2]) == (0, 2)
    asked["web"][3].callback([message("web", 2), message("web", 3)])
    # db's history was pruned: the current message is shown
    asked["db"][3].callback([])
    assert ("web", 3) in sink.got and ("db", 2) in sink.got
    assert m.names() == ["db", "web"]
    assert m.current(None)["seq"] == 4


def test_syncEndsADeploymentWhoseEndWasPruned() -> None:
    m, sink, history = mirror()
    m.receive(message("web", 1))
    m.sync(ClusterState("e1", last={"web": 5}, current={}))
    history.asked[0][3].callback([])
    assert m.names() == [] and sink.got[-1] == ("web", 5)


def test_aNewEpochReplacesEverything() -> None:
    m, sink, history = mirror()
    m.receive(message("web", 1))
    told = []
    m.outOfStep = lambda: told.append(True)
    m.receive(message("db", 1, epoch="e2"))  # Redis's data is new
    assert told == [True] and m.names() == ["web"]
    m.sync(ClusterState("e2", last={"db": 1}, current={"db": message("db", 1, epoch="e2")}))
    assert m.epoch == "e2" and m.names() == ["db"]
    # web ended (as far as the new numbering knows); db is shown
    assert sink.got[-2:] == [("web", 0), ("db", 1)]


def test_theIdlePictureIsShownOnlyWithoutDeployments() -> None:
    m, sink, _ = mirror()
    m.receive(message(None, 1))
    assert sink.got == [(None, 1)]
    m.receive(message("web", 1))
    m.receive(message(None, 3))  # may skip, as on one hub
    assert m.current(None)["seq"] == 3 and sink.got == [(None, 1), ("web", 1)]
    m.receive(message("web", 2, "idle"))
    assert sink.got == [(None, 1), ("web", 1), ("web", 2)]
    assert m.snapshot() == [m.current(None)] and m.current(None)["seq"] == 3
    # shown again: one that changed meanwhile is numbered and sent then
    m.receive(message(None, 4))
    assert sink.got[-1] == (None, 4) and m.snapshot() == [m.current(None)]


def test_whenSeen() -> None:
    m, sink, _ = mirror()
    seen = []
    m.whenSeen("web", 2).addCallback(seen.append)
    m.receive(message("web", 1))
    assert seen == []
    m.receive(message("web", 2))
    assert seen == [None]
    already = []
    m.whenSeen("web", 1).addCallback(already.append)
    assert already == [None]
