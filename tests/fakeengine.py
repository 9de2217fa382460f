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
)
from statushub.interfaces import IContainerEngine, IEventStream


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


@implementer(IContainerEngine)
class FakeEngine:
    def __init__(self, images: tuple[str, ...] = ("statushub/busybox",)) -> None:
        self.images = set(images)
        self.containers: dict[str, dict[str, Any]] = {}
        self.reachable = True
        self.calls: list[str] = []
        self.streams: list[FakeEventStream] = []
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
        self._ids = (f"{n:064x}" for n in itertools.count(0xC0FFEE))
        # every spec a container was made from, in order
        self.specs: list[ContainerSpec] = []

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
        try:
            return succeed(self._create(spec))
        except EngineError as e:
            return fail(e)

    def _create(self, spec: ContainerSpec) -> str:
        if any(c["name"] == spec.name for c in self.containers.values()):
            raise EngineError(f"create container {spec.name!r}: name in use")
        containerId = next(self._ids)
        self.specs.append(spec)
        self.containers[containerId] = {
            "name": spec.name,
            "status": "created",
            "health": None,
            "hasHealthcheck": spec.healthcheck is not None,
            "labels": dict(spec.labels),
            "restart": spec.restart,
        }
        return containerId

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

    def _container(self, method: str, containerId: str) -> dict[str, Any]:
        container = self.containers.get(containerId)
        if container is None:
            raise EngineError(f"{method} {containerId[:12]}: no such container")
        return container

    def _run(self, container: dict[str, Any]) -> None:
        container["status"] = "running"
        container["startedAt"] = container.get("startedAt", 0) + 1
        container.pop("exitCode", None)
        if container["hasHealthcheck"]:
            container["health"] = "starting"

    def startContainer(self, containerId: str, restart: Optional[str] = None) -> Deferred:
        failed = self._check("startContainer")
        if failed:
            return failed

        def start() -> None:
            container = self._container("start container", containerId)
            if restart is not None:
                container["restart"] = restart
            self._run(container)

        return self._held("startContainer", start)

    def stopContainer(self, containerId: str, timeout: float) -> Deferred:
        failed = self._check("stopContainer")
        if failed:
            return failed
        self.graces.append(("stopContainer", timeout))

        def stop() -> None:
            container = self._container("stop container", containerId)
            container["restart"] = "none"
            if container["status"] == "running":
                container.update(status="exited", health=None, exitCode=143)

        return self._held("stopContainer", stop)

    def restartContainer(self, containerId: str, timeout: float) -> Deferred:
        failed = self._check("restartContainer")
        if failed:
            return failed
        self.graces.append(("restartContainer", timeout))
        return self._held(
            "restartContainer", lambda: self._run(self._container("restart container", containerId))
        )

    def recreateContainer(self, containerId: str, spec: ContainerSpec, timeout: float) -> Deferred:
        failed = self._check("recreateContainer")
        if failed:
            return failed
        self.graces.append(("recreateContainer", timeout))

        def recreate() -> str:
            self.containers.pop(containerId, None)
            newId = self._create(spec)
            self._run(self.containers[newId])
            return newId

        return self._held("recreateContainer", recreate)

    def removeContainer(self, containerId: str, timeout: float = 0) -> Deferred:
        failed = self._check("removeContainer")
        if failed:
            return failed
        self.graces.append(("removeContainer", timeout))

        def remove() -> None:
            self.containers.pop(containerId, None)

        return self._held("removeContainer", remove)

    def _matching(self, labels: dict) -> list[ContainerState]:
        return [
            ContainerState(cid, c["status"], c["health"], dict(c["labels"]),
                           exitCode=c.get("exitCode"), keptStopped=c.get("keptStopped", False))
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

    # test helpers: what happens behind the hub's back
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
        left = sum(not stream.closed for stream in self.streams)
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
