"""
What the container engine's side counts: calls and their failures (by
L{MeteredEngine}, an L{IContainerEngine} around the real one), events read,
and how long each poll takes.
"""

from __future__ import annotations

import re
from typing import Any, Optional

from prometheus_client import CollectorRegistry, Counter, Histogram
from twisted.internet.defer import Deferred
from twisted.python.failure import Failure
from zope.interface import implementer

from statushub.engine import EngineUnreachable
from statushub.interfaces import IContainerEngine, IEventStream
from statushub.metrics.prefix import PREFIX

#: IContainerEngine method -> the C{operation} label of its calls
ENGINE_OPERATIONS = {
    "ping": "ping",
    "createContainer": "create",
    "startContainer": "start",
    "stopContainer": "stop",
    "restartContainer": "restart",
    "recreateContainer": "recreate",
    "removeContainer": "remove",
    "listContainers": "list",
    "inspectContainer": "inspect",
    "events": "events",
    "readLogs": "read_logs",
    "followLogs": "follow_logs",
    "followStats": "follow_stats",
}
#: the C{kind} label of a failed engine call
ENGINE_ERROR_KINDS = ("unreachable", "error")
#: container events whose series exist (at 0) before the first one comes
#: (the ones the deployment manager follows; any other counts when it comes)
ENGINE_EVENT_ACTIONS = (
    "create", "start", "restart", "die", "kill", "stop", "pause", "unpause",
    "oom", "destroy", "rename", "update", "health_status",
)

# One engine call; the docker timeout (10 s by default) bounds it.
POLL_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0)

# an engine's action word as a label: Docker's are short snake_case words
_ACTION = re.compile(r"[a-z][a-z_]{0,31}")


class EngineMetrics:
    """
    What the container engine's side counts: calls and their failures (by
    L{MeteredEngine}), events read, and how long each poll takes.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        calls = Counter(
            f"{PREFIX}_engine_calls",
            "Calls made to the container engine, by operation.",
            ["operation"],
            registry=registry,
        )
        errors = Counter(
            f"{PREFIX}_engine_errors",
            "Engine calls that failed, by operation and kind: unreachable (no "
            "answer) or error (the engine refused or failed).",
            ["operation", "kind"],
            registry=registry,
        )
        self._events = Counter(
            f"{PREFIX}_engine_events",
            "Container events read from the engine's event stream, by action "
            "(health_status for every health_status: ...).",
            ["action"],
            registry=registry,
        )
        self.pollSeconds = Histogram(
            f"{PREFIX}_poll_duration_seconds",
            "One health poll: the engine call and putting what it found on the board.",
            buckets=POLL_BUCKETS,
            registry=registry,
        )
        operations = sorted(set(ENGINE_OPERATIONS.values()))
        self._calls = {op: calls.labels(operation=op) for op in operations}
        self._errors = {
            (op, kind): errors.labels(operation=op, kind=kind)
            for op in operations
            for kind in ENGINE_ERROR_KINDS
        }
        for action in ENGINE_EVENT_ACTIONS:
            self._events.labels(action=action)

    def called(self, operation: str) -> None:
        self._calls[operation].inc()

    def failed(self, operation: str, error: BaseException) -> None:
        kind = "unreachable" if isinstance(error, EngineUnreachable) else "error"
        self._errors[(operation, kind)].inc()

    def eventRead(self, action: str) -> None:
        """
        Count one event; called from the thread that reads the stream
        (prometheus_client's counters take a lock).
        """
        word = action.split(":", 1)[0].strip()
        self._events.labels(action=word if _ACTION.fullmatch(word) else "other").inc()

    def observePoll(self, seconds: float) -> None:
        self.pollSeconds.observe(max(seconds, 0.0))

    def wrap(self, engine: IContainerEngine) -> "MeteredEngine":
        return MeteredEngine(engine, self)


@implementer(IContainerEngine)
class MeteredEngine:
    """
    An L{IContainerEngine} that counts the calls made through it to
    C{engine}, and their failures.  Anything else (an engine's own extra
    methods) passes straight through.
    """

    def __init__(self, engine: IContainerEngine, metrics: EngineMetrics) -> None:
        self._engine = engine
        self._metrics = metrics

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)

    def _call(self, method: str, *args: Any) -> Any:
        operation = ENGINE_OPERATIONS[method]
        self._metrics.called(operation)
        try:
            result = getattr(self._engine, method)(*args)
        except Exception as e:
            self._metrics.failed(operation, e)
            raise

        def failed(failure: Failure) -> Failure:
            self._metrics.failed(operation, failure.value)
            return failure

        return result.addErrback(failed)

    def ping(self) -> Any:
        return self._call("ping")

    def createContainer(self, spec: Any) -> Any:
        return self._call("createContainer", spec)

    def startContainer(self, containerId: str, restart: Optional[str] = None) -> Any:
        return self._call("startContainer", containerId, restart)

    def stopContainer(self, containerId: str, timeout: float) -> Any:
        return self._call("stopContainer", containerId, timeout)

    def restartContainer(self, containerId: str, timeout: float) -> Any:
        return self._call("restartContainer", containerId, timeout)

    def recreateContainer(self, containerId: str, spec: Any, timeout: float) -> Any:
        return self._call("recreateContainer", containerId, spec, timeout)

    def inspectContainer(self, containerId: str) -> Any:
        return self._call("inspectContainer", containerId)

    def removeContainer(self, containerId: str, timeout: float = 0) -> Any:
        return self._call("removeContainer", containerId, timeout)

    def listContainers(self, labels: dict) -> Any:
        return self._call("listContainers", labels)

    def readLogs(self, containerId: str, tail: int) -> Any:
        return self._call("readLogs", containerId, tail)

    def followLogs(self, containerId: str) -> Any:
        return self._call("followLogs", containerId)

    def followStats(self, containerId: str) -> Any:
        return self._call("followStats", containerId)

    def events(self, labels: dict, actions: tuple = ()) -> Any:
        return self._call("events", labels, actions).addCallback(
            MeteredEventStream, self._metrics
        )


@implementer(IEventStream)
class MeteredEventStream:
    """
    An event stream that counts every event read from it, by action.
    """

    def __init__(self, stream: IEventStream, metrics: EngineMetrics) -> None:
        self._stream = stream
        self._metrics = metrics

    def next(self) -> Any:
        event = self._stream.next()
        if isinstance(event, Deferred):
            # an in-memory stream (the unit tests') answers without blocking
            return event.addCallback(self._read)
        return self._read(event)

    def _read(self, event: Any) -> Any:
        if event is not None:
            self._metrics.eventRead(event.action)
        return event

    def close(self) -> None:
        self._stream.close()
