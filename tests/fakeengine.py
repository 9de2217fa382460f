"""
An in-memory L{IContainerEngine} for unit tests: containers are dicts, calls
answer at once (or, with C{hold}, when the test says so), failures are set
up by the test.

It behaves as the real engines do where the contract says how (the suite of
C{tests/test_engine_contract.py} runs against it and against Docker): its
event streams carry the events its containers' lives make (C{create},
C{start}, C{kill}, C{die} with the exit code, C{destroy}, C{health_status:
...}), filtered by label and action as Docker filters them, and a node's
restart policy is honoured when its process ends (L{FakeEngine.exit}).
Node actions behave as Docker's do: a stop ends the process by SIGTERM
(exit code 143, L{TERMINATED}) and keeps the container stopped (its
restart policy "none" until a start gives one back); a restart is a stop
and a start; a recreate removes and makes the container anew from the spec.
What only a real engine does by itself, a test does with a helper: a
process ending (L{FakeEngine.exit}), a health check's verdict
(L{FakeEngine.setHealth}); L{FakeEngine.set} changes what the list shows
without an event, and L{FakeEventStream.push} hands one stream any event.
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
    RecreateIncomplete,
    ResourceSample,
    StatsUnavailable,
)
from statushub.interfaces import IContainerEngine, IEventStream, ILogStream, IStatsStream

# the exit code of a process killed by SIGKILL (a forced removal)
KILLED = 137
# the exit code of a process ended by SIGTERM (a stop with a grace)
TERMINATED = 143


def _hasLabels(labels: dict[str, str], wanted: dict[str, Optional[str]]) -> bool:
    """
    Whether C{labels} carries every one of C{wanted} (a value of L{None}
    matches any value), as the engine's label filter says.
    """
    return all(
        key in labels and (value is None or labels[key] == value)
        for key, value in wanted.items()
    )


@implementer(IEventStream)
class FakeEventStream:
    """
    The events of the fake engine's containers that carry C{labels} (and,
    when C{actions} is not empty, are one of those actions), plus whatever
    the test L{push}es.  L{next} returns a Deferred (the fake's
    C{runInThread} just calls it).
    """

    def __init__(self, labels: Optional[dict] = None, actions: tuple = ()) -> None:
        self._queue: DeferredQueue = DeferredQueue()
        self.labels: dict[str, Optional[str]] = dict(labels or {})
        self.actions = tuple(actions)
        self.closed = False

    def wants(self, event: EngineEvent) -> bool:
        """
        Whether the engine's filters let C{event} through, as Docker's do:
        labels must all match; an action matches itself and, for
        C{health_status}, the C{health_status: <word>} it stands for.
        """
        if not _hasLabels(event.labels, self.labels):
            return False
        return not self.actions or any(
            event.action == action or event.action.startswith(action + ":")
            for action in self.actions
        )

    def push(self, event: Optional[EngineEvent]) -> None:
        """
        Hand this stream C{event} as it is, unfiltered (L{None}: the stream
        breaks).
        """
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
        # names of methods whose calls wait until the test calls release()
        self.hold: set[str] = set()
        self.held: list[tuple[str, Deferred, Any]] = []
        # every grace period a stop, restart, recreate or removal was given
        self.graces: list[tuple[str, float]] = []
        # every spec a container was made from, in order
        self.specs: list[ContainerSpec] = []
        self._ids = (f"{n:064x}" for n in itertools.count(0xC0FFEE))
        self._ticks = itertools.count(1)

    def _check(self, method: str) -> Optional[Deferred]:
        self.calls.append(method)
        if not self.reachable:
            return fail(EngineUnreachable(f"{method}: cannot reach the engine at fake"))
        if method in self.failNext:
            return fail(self.failNext.pop(method))
        return None

    def _emit(self, containerId: str, action: str, **attributes: str) -> None:
        """
        Tell every open stream that wants it about C{action}: the event
        carries the container's labels, its name and image, and
        C{attributes} (C{exitCode}, C{signal}), as Docker's do.
        """
        container = self.containers[containerId]
        event = EngineEvent(
            containerId,
            action,
            {**container["labels"], "image": container["image"], "name": container["name"],
             **attributes},
            timeNano=next(self._ticks),
        )
        for stream in self.streams:
            if not stream.closed and stream.wants(event):
                stream.push(event)

    def _unknown(self, what: str, containerId: str) -> Deferred:
        return fail(EngineError(f"{what} {containerId[:12]}: no such container"))

    def ping(self) -> Deferred:
        return self._check("ping") or succeed(None)

    def _held(self, method: str, work: Any) -> Deferred:
        """
        C{work()}'s result now, or, when the test holds C{method}, once it
        calls L{release}.
        """
        if method not in self.hold:
            try:
                return succeed(work())
            except Exception as e:
                return fail(e)
        d: Deferred = Deferred()
        self.held.append((method, d, work))
        return d

    def release(self, method: Optional[str] = None) -> int:
        """
        Carry out the held calls (of C{method}, or all); return how many.
        """
        now = [h for h in self.held if method is None or h[0] == method]
        self.held = [h for h in self.held if h not in now]
        for _, d, work in now:
            try:
                result = work()
            except Exception as e:
                d.errback(e)
            else:
                d.callback(result)
        return len(now)

    def _container(self, what: str, containerId: str) -> dict[str, Any]:
        container = self.containers.get(containerId)
        if container is None:
            raise EngineError(f"{what} {containerId[:12]}: no such container")
        return container

    def createContainer(self, spec: ContainerSpec) -> Deferred:
        failed = self._check("createContainer")
        if failed:
            return failed
        try:
            return succeed(self._create(spec))
        except EngineError as e:
            return fail(e)

    def _create(self, spec: ContainerSpec) -> str:
        if spec.image not in self.images:
            raise ImageNotFound(f"create container {spec.name!r}: no such image: {spec.image}")
        if any(c["name"] == spec.name for c in self.containers.values()):
            raise EngineError(f"create container {spec.name!r}: name in use")
        containerId = next(self._ids)
        self.specs.append(spec)
        self.containers[containerId] = {
            "name": spec.name,
            "image": spec.image,
            "status": "created",
            "health": None,
            "hasHealthcheck": spec.healthcheck is not None,
            "labels": dict(spec.labels),
            "restart": spec.restart,
            "resources": spec.resources,
            "restartCount": 0,
            "exitCode": None,
            "startedAt": 0,
        }
        self._emit(containerId, "create")
        return containerId

    def _run(self, containerId: str) -> None:
        container = self.containers[containerId]
        container["status"] = "running"
        container["exitCode"] = None
        container["oomKilled"] = False
        container["startedAt"] = next(self._ticks)
        # a (re)started container's check begins again
        container["health"] = "starting" if container["hasHealthcheck"] else None
        self._emit(containerId, "start")

    def _terminate(self, containerId: str) -> None:
        """
        SIGTERM ends the container's process (as it ends a well-behaved one
        within its grace).
        """
        container = self.containers[containerId]
        if container["status"] != "running":
            return
        self._emit(containerId, "kill", signal="15")
        container.update(status="exited", exitCode=TERMINATED, health=None)
        self._emit(containerId, "die", exitCode=str(TERMINATED))
        self._endStreams(containerId)

    def startContainer(self, containerId: str, restart: Optional[str] = None) -> Deferred:
        failed = self._check("startContainer")
        if failed:
            return failed

        def start() -> None:
            container = self._container("start container", containerId)
            if restart is not None:
                container["restart"] = restart
            if container["status"] != "running":
                # starting a running container is no error, and no event
                self._run(containerId)

        return self._held("startContainer", start)

    def stopContainer(self, containerId: str, timeout: float) -> Deferred:
        failed = self._check("stopContainer")
        if failed:
            return failed
        self.graces.append(("stopContainer", timeout))

        def stop() -> None:
            container = self._container("stop container", containerId)
            container["restart"] = "none"  # kept stopped, as Docker's is by ours
            self._terminate(containerId)
            if container["status"] == "exited":
                self._emit(containerId, "stop")

        return self._held("stopContainer", stop)

    def restartContainer(self, containerId: str, timeout: float) -> Deferred:
        failed = self._check("restartContainer")
        if failed:
            return failed
        self.graces.append(("restartContainer", timeout))

        def restart() -> None:
            self._container("restart container", containerId)
            self._terminate(containerId)
            self._run(containerId)
            self._emit(containerId, "restart")

        return self._held("restartContainer", restart)

    def recreateContainer(self, containerId: str, spec: ContainerSpec, timeout: float) -> Deferred:
        failed = self._check("recreateContainer")
        if failed:
            return failed
        self.graces.append(("recreateContainer", timeout))

        def recreate() -> str:
            if containerId in self.containers:
                self._remove(containerId, timeout)
            try:
                newId = self._create(spec)
            except EngineError as e:
                raise RecreateIncomplete(f"{e} (the old container is removed)") from e
            self._run(newId)
            return newId

        return self._held("recreateContainer", recreate)

    def removeContainer(self, containerId: str, timeout: float = 0) -> Deferred:
        failed = self._check("removeContainer")
        if failed:
            return failed
        self.graces.append(("removeContainer", timeout))

        def remove() -> None:
            if containerId in self.containers:  # already gone: not an error
                self._remove(containerId, timeout)

        return self._held("removeContainer", remove)

    def _remove(self, containerId: str, timeout: float) -> None:
        container = self.containers[containerId]
        if timeout:
            self._terminate(containerId)
        if container["status"] == "running":
            self._emit(containerId, "kill", signal="9")
            self._emit(containerId, "die", exitCode=str(KILLED))
        self._emit(containerId, "destroy")
        self._endStreams(containerId)
        del self.containers[containerId]

    def _matching(self, labels: dict) -> list[ContainerState]:
        return [
            ContainerState(cid, c["status"], c["health"], dict(c["labels"]),
                           # the list tells an exited container's code only
                           exitCode=c.get("exitCode") if c["status"] == "exited" else None,
                           keptStopped=c.get("keptStopped", False))
            for cid, c in self.containers.items()
            if _hasLabels(c["labels"], labels)
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
            return self._unknown("inspect container", containerId)
        return succeed(ContainerDetail(
            containerId,
            c.get("restartCount", 0),
            # Docker's State.ExitCode: the last run's, 0 before the first
            # ends and again once it runs
            c.get("exitCode") or 0,
            c.get("healthOutput"),
            oomKilled=bool(c.get("oomKilled")),
        ))

    def events(self, labels: dict, actions: tuple = ()) -> Deferred:
        failed = self._check("events")
        if failed:
            return failed
        stream = FakeEventStream(labels, actions)
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

    def _endStreams(self, containerId: str) -> None:
        """
        The container's process ended: its log and stats streams end, as
        Docker's do (a restarted container's log is followed anew).
        """
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
        """
        Change what the list shows of a container, with no event (as if the
        stream had missed it).
        """
        self.containers[containerId].update(fields)

    def exit(self, containerId: str, code: int) -> None:
        """
        The container's process ends with C{code}: it dies, and its restart
        policy decides whether the engine starts it again (C{any} always,
        C{on-failure} when C{code} is not 0), as Docker does.
        """
        container = self.containers[containerId]
        assert container["status"] == "running", f"{containerId[:12]} is not running"
        container.update(status="exited", exitCode=code, health=None)
        self._emit(containerId, "die", exitCode=str(code))
        self._endStreams(containerId)
        policy = container["restart"]
        if policy == "any" or (policy == "on-failure" and code != 0):
            container["restartCount"] += 1
            self._run(containerId)

    def outOfMemory(self, containerId: str) -> None:
        """
        The kernel's OOM killer ends the container's process: an C{oom}
        event, then it dies with SIGKILL's code, and inspect says so (until
        it starts again, as Docker's C{State.OOMKilled}).
        """
        self.containers[containerId]["oomKilled"] = True
        self._emit(containerId, "oom")
        self.exit(containerId, KILLED)

    def setHealth(self, containerId: str, health: str, output: Optional[str] = None) -> None:
        """
        A running container's health check says C{health} (C{healthy},
        C{unhealthy}), its output C{output}: the list shows it, and a
        C{health_status: <health>} event tells it.
        """
        container = self.containers[containerId]
        assert container["hasHealthcheck"], f"{containerId[:12]} has no health check"
        changed = container["health"] != health
        container["health"] = health
        if output is not None:
            container["healthOutput"] = output
        if changed:
            self._emit(containerId, f"health_status: {health}")

    def idsByNode(self) -> dict[str, str]:
        return {c["labels"]["io.statushub.node"]: cid for cid, c in self.containers.items()}


def callNow(function: Any) -> Any:
    """
    The fake's C{runInThread}: the fake stream's C{next} already returns a
    Deferred, so no thread is needed.
    """
    return function()
