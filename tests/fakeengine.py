"""
An in-memory L{IContainerEngine} for unit tests: containers are dicts, calls
answer at once (or, with C{hold}, when the test says so), failures are set
up by the test.
"""

from __future__ import annotations

import itertools
from typing import Any, Optional

from twisted.internet.defer import Deferred, DeferredQueue, fail, succeed
from zope.interface import implementer

from statushub.engine import (
    ContainerDetail,
    ContainerSpec,
    ContainerState,
    EngineError,
    EngineEvent,
    EngineUnreachable,
    ImageNotFound,
    LogLine,
    ResourceSample,
    StatsUnavailable,
)
from statushub.interfaces import IContainerEngine, IEventStream, ILogStream, IStatsStream


@implementer(IEventStream)
class FakeEventStream:
    """
    Events the test L{push}es; L{next} returns a Deferred (the fake's
    C{runInThread} just calls it).
    """

    def __init__(self) -> None:
        self._queue: DeferredQueue = DeferredQueue()
        self.closed = False

    def push(self, event: Optional[EngineEvent]) -> None:
        self._queue.put(event)

    def next(self) -> "Deferred[Optional[EngineEvent]]":
        if self.closed:
            return succeed(None)
        return self._queue.get()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._queue.put(None)


@implementer(ILogStream, IStatsStream)
class FakeStream(FakeEventStream):
    """
    A log or stats stream of one container: what the test L{push}es (or the
    engine's L{FakeEngine.printLine}) comes out of L{next}, a Deferred.
    """

    def __init__(self, containerId: str) -> None:
        super().__init__()
        self.containerId = containerId


@implementer(IContainerEngine)
class FakeEngine:
    def __init__(self, images: tuple[str, ...] = ("statushub/busybox",)) -> None:
        self.images = set(images)
        self.containers: dict[str, dict[str, Any]] = {}
        self.reachable = True
        self.calls: list[str] = []
        self.streams: list[FakeEventStream] = []
        self.logStreams: list[FakeStream] = []
        self.statsStreams: list[FakeStream] = []
        # containerId -> why its resource use cannot be read
        self.statsUnavailable: dict[str, str] = {}
        # when set, readLogs answers only when the test calls releaseReads
        self.holdReads = False
        self.heldReads: list[tuple[Deferred, str, int]] = []
        # name of a method -> error it raises once, for the next call
        self.failNext: dict[str, Exception] = {}
        # when set, listContainers answers only when the test fires it
        self.holdLists = False
        self.heldLists: list[tuple[Deferred, dict]] = []
        self._ids = (f"{n:064x}" for n in itertools.count(0xC0FFEE))

    def _check(self, method: str) -> Optional[Deferred]:
        self.calls.append(method)
        if not self.reachable:
            return fail(EngineUnreachable(f"{method}: cannot reach the engine at fake"))
        if method in self.failNext:
            return fail(self.failNext.pop(method))
        return None

    def ping(self) -> Deferred:
        return self._check("ping") or succeed(None)

    def createContainer(self, spec: ContainerSpec) -> Deferred:
        failed = self._check("createContainer")
        if failed:
            return failed
        if spec.image not in self.images:
            return fail(ImageNotFound(f"create container {spec.name!r}: no such image: {spec.image}"))
        if any(c["name"] == spec.name for c in self.containers.values()):
            return fail(EngineError(f"create container {spec.name!r}: name in use"))
        containerId = next(self._ids)
        self.containers[containerId] = {
            "name": spec.name,
            "status": "created",
            "health": None,
            "hasHealthcheck": spec.healthcheck is not None,
            "labels": dict(spec.labels),
        }
        return succeed(containerId)

    def startContainer(self, containerId: str) -> Deferred:
        failed = self._check("startContainer")
        if failed:
            return failed
        container = self.containers[containerId]
        container["status"] = "running"
        if container["hasHealthcheck"]:
            container["health"] = "starting"
        return succeed(None)

    def removeContainer(self, containerId: str) -> Deferred:
        failed = self._check("removeContainer")
        if failed:
            return failed
        self.containers.pop(containerId, None)
        return succeed(None)

    def _matching(self, labels: dict) -> list[ContainerState]:
        return [
            ContainerState(cid, c["status"], c["health"], dict(c["labels"]),
                           exitCode=c.get("exitCode"))
            for cid, c in self.containers.items()
            if all(
                key in c["labels"] and (value is None or c["labels"][key] == value)
                for key, value in labels.items()
            )
        ]

    def listContainers(self, labels: dict) -> Deferred:
        failed = self._check("listContainers")
        if failed:
            return failed
        if self.holdLists:
            d: Deferred = Deferred()
            self.heldLists.append((d, labels))
            return d
        return succeed(self._matching(labels))

    def releaseLists(self) -> None:
        held, self.heldLists = self.heldLists, []
        for d, labels in held:
            d.callback(self._matching(labels))

    def inspectContainer(self, containerId: str) -> Deferred:
        failed = self._check("inspectContainer")
        if failed:
            return failed
        c = self.containers.get(containerId)
        if c is None:
            return fail(EngineError(f"inspect container {containerId[:12]}: no such container"))
        return succeed(ContainerDetail(
            containerId, c.get("restartCount", 0), c.get("exitCode"), c.get("healthOutput"),
        ))

    def events(self, labels: dict, actions: tuple = ()) -> Deferred:
        failed = self._check("events")
        if failed:
            return failed
        stream = FakeEventStream()
        self.streams.append(stream)
        return succeed(stream)

    def readLogs(self, containerId: str, tail: int) -> Deferred:
        failed = self._check("readLogs")
        if failed:
            return failed
        if containerId not in self.containers:
            return fail(EngineError(f"read the log of {containerId[:12]}: no such container"))
        if self.holdReads:
            d: Deferred = Deferred()
            self.heldReads.append((d, containerId, tail))
            return d
        return succeed(self._tail(containerId, tail))

    def _tail(self, containerId: str, tail: int) -> list[LogLine]:
        lines = self.containers[containerId].get("logs", [])
        return list(lines[-tail:]) if tail else []

    def releaseReads(self) -> None:
        """
        Answer the held log reads with the log as it is now.
        """
        held, self.heldReads = self.heldReads, []
        for d, containerId, tail in held:
            d.callback(self._tail(containerId, tail))

    def followLogs(self, containerId: str) -> Deferred:
        failed = self._check("followLogs")
        if failed:
            return failed
        if containerId not in self.containers:
            return fail(EngineError(f"follow the log of {containerId[:12]}: no such container"))
        stream = FakeStream(containerId)
        self.logStreams.append(stream)
        if self.containers[containerId]["status"] != "running":
            stream.push(None)  # a stopped container's log ends at once
        return succeed(stream)

    def followStats(self, containerId: str) -> Deferred:
        failed = self._check("followStats")
        if failed:
            return failed
        if containerId in self.statsUnavailable:
            return fail(StatsUnavailable(self.statsUnavailable[containerId]))
        if containerId not in self.containers:
            return fail(EngineError(f"follow {containerId[:12]}: no such container"))
        stream = FakeStream(containerId)
        self.statsStreams.append(stream)
        return succeed(stream)

    # test helpers: what happens behind the hub's back
    def printLine(self, containerId: str, text: str, stream: str = "stdout",
                  time: str = "") -> LogLine:
        """
        The container prints a line: kept for L{readLogs}, and given to
        every open log stream of it.  Times default to one a millisecond,
        in order.
        """
        logs = self.containers[containerId].setdefault("logs", [])
        if not time:
            count = sum(len(c.get("logs", ())) for c in self.containers.values())
            time = f"2026-11-26T08:00:{count // 1000:02d}.{count % 1000:03d}000000Z"
        line = LogLine(time, stream, text)
        logs.append(line)
        for each in self.openLogStreams(containerId):
            each.push(line)
        return line

    def sample(self, containerId: str, cpu: float, memory: int, limit: int = 512 * 2**20,
               time: str = "2026-11-26T08:00:00.000000000Z") -> None:
        """
        The engine reads the container's resource use.
        """
        for each in self.openStatsStreams(containerId):
            each.push(ResourceSample(cpu, memory, limit, time))

    def stopContainer(self, containerId: str, exitCode: int = 0) -> None:
        """
        The container's process ends: its log and stats streams end.
        """
        self.set(containerId, status="exited", exitCode=exitCode, health=None)
        for each in self.openLogStreams(containerId) + self.openStatsStreams(containerId):
            each.push(None)

    def openLogStreams(self, containerId: Optional[str] = None) -> list[FakeStream]:
        return [s for s in self.logStreams
                if not s.closed and containerId in (None, s.containerId)]

    def openStatsStreams(self, containerId: Optional[str] = None) -> list[FakeStream]:
        return [s for s in self.statsStreams
                if not s.closed and containerId in (None, s.containerId)]

    def assertStreamsClosed(self) -> None:
        """
        Fail unless every event stream opened has been closed again, i.e.
        every follower started was stopped.

        A follower left reading is a coroutine suspended on a fake stream's
        Deferred.  Whenever the GC reclaims it (in some later test, or at
        exit), closing the coroutine runs its C{finally}, whose
        C{stream.close()} fires that very Deferred: Twisted resumes the
        coroutine while it is still executing, and the ValueError "coroutine
        already executing" ends up an unhandled error that names no test.
        """
        left = sum(not stream.closed
                   for stream in self.streams + self.logStreams + self.statsStreams)
        assert not left, (
            f"{left} event stream(s) of the fake engine left open: stop every "
            "DeploymentManager / EventFollower the test started"
        )

    def set(self, containerId: str, **fields: Any) -> None:
        self.containers[containerId].update(fields)

    def idsByNode(self) -> dict[str, str]:
        return {c["labels"]["io.statushub.node"]: cid for cid, c in self.containers.items()}


def callNow(function: Any) -> Any:
    """
    The fake's C{runInThread}: the fake stream's C{next} already returns a
    Deferred, so no thread is needed.
    """
    return function()
