"""
The status picture and the board that numbers and hands out its changes.

A L{Picture} is an immutable value: the deployment's status and every node's.
The L{StatusBoard} keeps the current one; when a new picture differs, it
stamps it with the next C{seq} and a timestamp and broadcasts the message to
every L{IStatusSink}.  Equal pictures emit nothing, so a poll that finds no
change costs the clients nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any, Optional

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from zope.interface import implementer

from statushub.interfaces import IStatusSink, IStatusSource

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
)
HEALTH_STATUSES = ("starting", "healthy", "unhealthy")


@dataclass(frozen=True)
class NodeStatus:
    nodeId: str
    containerId: str
    status: str
    health: Optional[str] = None

    def toJSON(self) -> dict[str, Any]:
        entry = {
            "nodeId": self.nodeId,
            "containerId": self.containerId,
            "status": self.status,
        }
        # health only where the engine has one to give (PRODUCT.md)
        if self.health is not None:
            entry["health"] = self.health
        return entry


@dataclass(frozen=True)
class Picture:
    """
    Everything a client is told, except C{seq} and C{timestamp}.

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

    def toMessage(self, seq: int, timestamp: str) -> dict[str, Any]:
        return {
            "type": "status_update",
            "deployStatus": self.deployStatus,
            "nodeStatuses": [node.toJSON() for node in self.nodeStatuses],
            "deployment": self.deployment,
            "engine": self.engine,
            "error": self.error,
            "seq": seq,
            "timestamp": timestamp,
        }


def isoTimestamp(seconds: float) -> str:
    """
    UTC, millisecond precision, with a C{Z}: C{2026-11-26T08:00:00.123Z}.
    """
    moment = datetime.fromtimestamp(seconds, timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@implementer(IStatusSource)
class StatusBoard:
    """
    The current picture, and the sinks that hear about every change.

    Lives in the reactor thread: the polling and deployment code call
    L{update} from there.
    """

    log = Logger()

    def __init__(self, clock: IReactorTime, picture: Picture = Picture()) -> None:
        self._clock = clock
        self._picture = picture
        self._seq = 0
        self._message = picture.toMessage(self._seq, isoTimestamp(clock.seconds()))
        self._sinks: list[IStatusSink] = []

    @property
    def picture(self) -> Picture:
        return self._picture

    def current(self) -> dict:
        return self._message

    def addSink(self, sink: IStatusSink) -> None:
        self._sinks.append(sink)

    def removeSink(self, sink: IStatusSink) -> None:
        self._sinks.remove(sink)

    def update(self, picture: Picture) -> bool:
        """
        Make C{picture} the current one; emit it if it differs.

        @return: whether a message went out.
        """
        if picture == self._picture:
            return False
        self._picture = picture
        self._seq += 1
        self._message = picture.toMessage(self._seq, isoTimestamp(self._clock.seconds()))
        for sink in list(self._sinks):
            try:
                sink.broadcast(self._message)
            except Exception:
                # one broken sink must not starve the others
                self.log.failure("status sink {sink!r} failed", sink=sink)
        return True

    def change(self, **changes: Any) -> bool:
        """
        L{update} with the current picture, some fields changed.
        """
        return self.update(self._picture.evolve(**changes))
