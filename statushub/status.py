"""
The status picture and the board that numbers and hands out its changes.

A L{Picture} is an immutable value: one deployment's status and every node's.
The L{StatusBoard} keeps the current one of every deployment; when a new
picture differs from that deployment's last, it stamps it with that
deployment's next C{seq}, the C{epoch} and a timestamp and broadcasts the
message to every L{IStatusSink}.  Equal pictures emit nothing, so a poll that
finds no change costs the clients nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import AbstractSet, Any, Iterable, Mapping, Optional

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from zope.interface import implementer

from statushub.interfaces import IHistory, IMessageNumbering, IStatusSink, IStatusSource
from statushub.numbering import MemoryNumbering, NumberingClosed

DEPLOY_STATUSES = ("idle", "deploying", "deployed", "tearing_down", "failed")
NODE_STATUSES = (
    "created",
    "running",
    "paused",
    "restarting",
    "removing",
    "exited",
    "dead",
    "missing",
    "unknown",
    # from a Swarm task: not running yet, or failed for a reason (error)
    "pending",
    "failed",
)
HOST_STATUSES = ("ready", "down", "unknown")
HEALTH_STATUSES = ("starting", "healthy", "unhealthy")


@dataclass(frozen=True)
class NodeStatus:
    nodeId: str
    containerId: str
    status: str
    health: Optional[str] = None
    # on a cluster (Swarm) only: the host the node runs on, how that host
    # is, and why the node failed
    host: Optional[str] = None
    hostStatus: Optional[str] = None
    error: Optional[str] = None
    # node detail (PRODUCT.md, "History"): when the status last changed,
    # an exited node's exit code, the engine's restarts, and an unhealthy
    # node's last check output; each only when known
    since: Optional[str] = None
    exitCode: Optional[int] = None
    restartCount: Optional[int] = None
    healthOutput: Optional[str] = None
    # an exited node the kernel's OOM killer ended: True, else not sent
    oomKilled: Optional[bool] = None
    # node actions (PRODUCT.md, "Acting on one node"): "operator" while it
    # is stopped on purpose; the action under way; how the last one failed
    stoppedBy: Optional[str] = None
    action: Optional[str] = None
    actionError: Optional[str] = None

    def toJSON(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "nodeId": self.nodeId,
            "containerId": self.containerId,
            "status": self.status,
        }
        # the rest only where the engine has it to give (PRODUCT.md)
        for name in _OPTIONAL:
            value = getattr(self, name)
            if value is not None:
                entry[name] = value
        return entry


    @classmethod
    def fromJSON(cls, entry: dict[str, Any]) -> "NodeStatus":
        """
        The node of a feed message's C{nodeStatuses} (fields this version
        does not know are left out).
        """
        return cls(**{k: v for k, v in entry.items() if k in _FIELDS})


_OPTIONAL = (
    "health", "host", "hostStatus", "error", "since", "exitCode", "restartCount", "healthOutput",
    "oomKilled", "stoppedBy", "action", "actionError",
)
_FIELDS = frozenset(("nodeId", "containerId", "status") + _OPTIONAL)
# what a failing check may say, at most (PRODUCT.md)
HEALTH_OUTPUT_MAX = 256


@dataclass(frozen=True)
class Picture:
    """
    Everything a client is told, except C{seq}, C{epoch} and C{timestamp}.

    @ivar deployment: the deployment's name; L{None} only in the idle
        picture shown when there is no deployment at all.

    @ivar engine: C{"reachable"}, C{"unreachable"}, or C{"unknown"} before the
        first contact.
    @ivar error: why the deployment failed, when it did.
    """

    deployStatus: str = "idle"
    nodeStatuses: tuple[NodeStatus, ...] = ()
    deployment: Optional[str] = None
    engine: str = "unknown"
    error: Optional[str] = None

    def __post_init__(self) -> None:
        if self.deployStatus not in DEPLOY_STATUSES:
            raise ValueError(f"unknown deployStatus {self.deployStatus!r}")

    def evolve(self, **changes: Any) -> "Picture":
        return replace(self, **changes)

    def toMessage(self, seq: int, timestamp: str, epoch: str = "") -> dict[str, Any]:
        return {
            "type": "status_update",
            "deployStatus": self.deployStatus,
            "nodeStatuses": [node.toJSON() for node in self.nodeStatuses],
            "deployment": self.deployment,
            "engine": self.engine,
            "error": self.error,
            "seq": seq,
            "epoch": epoch,
            "timestamp": timestamp,
        }

    @classmethod
    def fromMessage(cls, message: dict[str, Any]) -> "Picture":
        """
        The picture a feed message shows (L{toMessage} read back).
        """
        return cls(
            deployStatus=message["deployStatus"],
            nodeStatuses=tuple(NodeStatus.fromJSON(n) for n in message["nodeStatuses"]),
            deployment=message["deployment"],
            engine=message["engine"],
            error=message["error"],
        )


def withSince(
    before: Picture, picture: Picture, now: str, fresh: AbstractSet[str] = frozenset()
) -> Picture:
    """
    C{picture} with each node's C{since} (one it has is kept): as in
    C{before} while the node's status stays, C{now} when it changed, and
    C{now} for the nodes named in C{fresh} (started anew on purpose).
    """
    previous = {n.nodeId: n for n in before.nodeStatuses}
    nodes = []
    for node in picture.nodeStatuses:
        if node.since is None or node.nodeId in fresh:
            was = previous.get(node.nodeId)
            kept = (
                was is not None and was.status == node.status and was.since
                and node.nodeId not in fresh
            )
            node = replace(node, since=was.since if kept else now)
        nodes.append(node)
    return picture.evolve(nodeStatuses=tuple(nodes))


def isoTimestamp(seconds: float) -> str:
    """
    UTC, millisecond precision, with a C{Z}: C{2026-11-26T08:00:00.123Z}.
    """
    moment = datetime.fromtimestamp(seconds, timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class SinkFanout:
    """
    What every status source shares: its current messages as one snapshot,
    and the sinks it tells of each message, in order.
    """

    log = Logger()

    def __init__(self, idleMessage: dict) -> None:
        # what the snapshot holds while no deployment is current
        self._idleMessage = idleMessage
        # every current deployment's message in name order, replaced whole
        # on each change: other threads (a metrics scrape) may read it
        self._current: tuple[dict, ...] = ()
        self._sinks: list[IStatusSink] = []

    def current(self, deployment: Optional[str] = None) -> dict:
        raise NotImplementedError()

    def snapshot(self, deployment: Optional[str] = None) -> list[dict]:
        if deployment is not None:
            return [self.current(deployment)]
        current = self._current
        return list(current) if current else [self._idleMessage]

    def addSink(self, sink: IStatusSink) -> None:
        self._sinks.append(sink)

    def removeSink(self, sink: IStatusSink) -> None:
        self._sinks.remove(sink)

    def _emit(self, message: dict) -> None:
        for sink in list(self._sinks):
            try:
                sink.broadcast(message)
            except Exception:
                # one broken sink must not starve the others
                self.log.failure("status sink {sink!r} failed", sink=sink)


@implementer(IStatusSource)
class StatusBoard(SinkFanout):
    """
    The current picture of every deployment, and the sinks that hear about
    every change.

    A picture is filed under its C{deployment}.  A named deployment becomes
    current with its first picture that is not idle; its idle picture (the
    end of a teardown) goes out as its last message and it drops out of the
    snapshot.  The picture of no deployment (C{deployment=None}) is what the
    unfiltered feed shows while there is none; it carries the engine's word,
    and its changes are numbered and go out only while it is shown.

    About a deployment that is not current, the board answers with the last
    message it knows about it, as it was sent: one it emitted, or one the
    history kept from before a restart (C{last}).  So an C{(epoch, seq)} a
    client is given never names two pictures, also before a restarted hub
    has adopted its deployments again.

    Lives in the reactor thread: the polling and deployment code call
    L{update} from there.

    @param last: the last message about each deployment (L{None}: about
        none) that the history kept, as it was sent.
    """

    def __init__(
        self,
        clock: IReactorTime,
        numbering: Optional[IMessageNumbering] = None,
        idle: Picture = Picture(),
        last: Optional[Mapping[Optional[str], dict]] = None,
    ) -> None:
        self._clock = clock
        self._numbering = numbering if numbering is not None else MemoryNumbering()
        self._idle = idle
        self._last: dict[Optional[str], dict] = dict(last or {})
        # deployments that were current when the hub stopped: ended by
        # endAbsent when the engine no longer has them
        self._remembered = {
            name: message for name, message in self._last.items()
            if name is not None and message.get("deployStatus") != "idle"
        }
        stored = self._last.get(None)
        if stored is None:
            stored = self._stamp(idle, self._numbering.last(None))
        super().__init__(stored)
        # the picture of no deployment changed while not shown: it is
        # numbered when it is shown again
        self._idleChanged = False
        self._pictures: dict[str, Picture] = {}
        self._messages: dict[str, dict] = {}
        self._names: list[str] = []

    @property
    def epoch(self) -> str:
        return self._numbering.epoch

    def _stamp(self, picture: Picture, seq: int) -> dict:
        return picture.toMessage(seq, isoTimestamp(self._clock.seconds()), self.epoch)

    def _number(self, picture: Picture) -> Optional[dict]:
        """
        C{picture} as the next message about its deployment, or L{None}
        when nothing may be numbered any more (the hub is stopping).
        """
        try:
            seq = self._numbering.next(picture.deployment)
        except NumberingClosed:
            self.log.info(
                "not sent: a change of {deployment} after the history closed",
                deployment=picture.deployment or "no deployment",
            )
            return None
        return self._stamp(picture, seq)

    def names(self) -> list[str]:
        return list(self._names)

    def picture(self, deployment: Optional[str] = None) -> Picture:
        """
        The current picture of C{deployment}; idle (with that name, and the
        engine's word) when it is not a current deployment.
        """
        if deployment is None:
            return self._idle
        picture = self._pictures.get(deployment)
        if picture is None:
            return self._idle.evolve(deployment=deployment)
        return picture

    def current(self, deployment: Optional[str] = None) -> dict:
        if deployment is None:
            return self._idleMessage
        message = self._messages.get(deployment)
        if message is None:
            message = self._last.get(deployment)
        if message is None:
            # never seen: seq 0 (or, under an epoch started anew, a seq no
            # message of that epoch has)
            return self._stamp(self.picture(deployment), self._numbering.last(deployment))
        return message

    def restore(self, messages: list[dict]) -> None:
        """
        Make these messages (already stamped, in this board's epoch) the
        current ones without emitting anything: a board that takes over the
        numbering from another (a new leader of several hubs) starts from
        what was shown, so an unchanged picture is not sent again.
        """
        for message in messages:
            picture = Picture.fromMessage(message)
            if picture.deployment is None:
                self._idle, self._idleMessage = picture, message
            elif picture.deployStatus != "idle":
                self._pictures[picture.deployment] = picture
                self._messages[picture.deployment] = message
        self._names = sorted(self._pictures)
        self._current = tuple(self._messages[n] for n in self._names)

    def update(self, picture: Picture) -> bool:
        """
        Make C{picture} the current one of its deployment; emit it if it
        differs.

        @return: whether a message went out.
        """
        name = picture.deployment
        if name is None:
            return self._updateIdle(picture)
        previous = self._pictures.get(name)
        if picture == previous:
            return False
        idle = picture.deployStatus == "idle"
        if previous is None and idle:
            return False  # never a deployment: nothing to end
        message = self._number(picture)
        if message is None:
            return False
        if idle:
            # its last message: it leaves the snapshot
            del self._pictures[name], self._messages[name]
        else:
            self._pictures[name] = picture
            self._messages[name] = message
        self._last[name] = message
        if previous is None or idle:
            self._names = sorted(self._pictures)
        self._current = tuple(self._messages[n] for n in self._names)
        self._emit(message)
        if idle and not self._names and self._idleChanged:
            self._showIdle()  # shown again, and it changed meanwhile
        return True

    def _updateIdle(self, picture: Picture) -> bool:
        if picture == self._idle:
            return False
        self._idle = picture
        if self._names:
            self._idleChanged = True  # not shown while there are deployments
            return False
        return self._showIdle()

    def _showIdle(self) -> bool:
        message = self._number(self._idle)
        if message is None:
            return False
        self._idleChanged = False
        self._idleMessage = self._last[None] = message
        self._emit(message)
        return True

    def endAbsent(self, present: Iterable[str]) -> list[str]:
        """
        End every deployment that was current when the hub stopped (its
        last message, kept by the history, is not idle) and that is neither
        in C{present} nor current: it went while the hub was away.  Its
        idle picture goes out as its last message.  Called once the engine
        has said what is there (adoption); later calls do nothing.

        @return: the names ended.
        """
        remembered, self._remembered = self._remembered, {}
        keep = set(present) | set(self._pictures)
        ended = []
        for name in sorted(remembered):
            if name in keep or self._last.get(name) is not remembered[name]:
                continue  # there, or something newer happened since
            message = self._number(self._idle.evolve(deployment=name))
            if message is None:
                break
            self._last[name] = message
            self._emit(message)
            ended.append(name)
        return ended

    def change(self, deployment: Optional[str] = None, **changes: Any) -> bool:
        """
        L{update} with the current picture of C{deployment}, some fields
        changed.
        """
        return self.update(self.picture(deployment).evolve(**changes))


@implementer(IStatusSink)
class HistorySink:
    """
    The board's way to the history: every message it emits is appended to
    an L{IHistory}, in the order emitted.
    """

    def __init__(self, history: IHistory) -> None:
        self.history = history

    def __repr__(self) -> str:
        return f"<HistorySink {self.history!r}>"

    def broadcast(self, message: dict) -> None:
        self.history.append(message)
