"""
The hub's Prometheus metrics, served at C{GET /metrics}.

Every hub has a registry of its own, made in L{statushub.tap.makeService} and
handed to the parts that count, so that tests, and several hubs in one
process, never mix their figures.  What happens is counted where it happens,
and cheaply: the feed counts once per broadcast, never per client.  What is
state (clients connected, deployments and nodes by status, engine up, WAMP
joined) is not kept up to date on every change: L{StateCollector} reads it
when Prometheus scrapes.

prometheus_client's twisted.web resource renders the registry in the
reactor's thread pool, so whatever a collector reads must be safe to read
from another thread: a length, an attribute, or a value that is replaced
rather than changed in place.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Iterable, Iterator, Optional

from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector
from prometheus_client.core import GaugeMetricFamily, Metric
from twisted.internet.defer import Deferred
from twisted.python.failure import Failure
from twisted.web.resource import IResource
from zope.interface import implementer

from statushub.engine import EngineUnreachable
from statushub.hub import closecodes
from statushub.interfaces import (
    IContainerEngine,
    IEventStream,
    IHealthCheck,
    IStatusSink,
)

PREFIX = "statushub"

#: why the hub disconnects a feed client
DROP_REASONS = ("slow", "ping_timeout", "bad_message")

# The close code the hub sends (or Autobahn sends for it) -> the drop reason.
# A message too large (1009), a protocol error (1002), unacceptable data
# (1003) or invalid UTF-8 (1007) are all bad messages from the client.
CLOSE_CODE_REASONS = {
    closecodes.TOO_SLOW: "slow",
    closecodes.BAD_MESSAGE: "bad_message",
    1002: "bad_message",
    1003: "bad_message",
    1007: "bad_message",
    1009: "bad_message",
}

#: IContainerEngine method -> the C{operation} label of its calls
ENGINE_OPERATIONS = {
    "ping": "ping",
    "createContainer": "create",
    "startContainer": "start",
    "removeContainer": "remove",
    "listContainers": "list",
    "inspectContainer": "inspect",
    "events": "events",
}
#: the C{kind} label of a failed engine call
ENGINE_ERROR_KINDS = ("unreachable", "error")
#: container events whose series exist (at 0) before the first one comes
#: (the ones the deployment manager follows; any other counts when it comes)
ENGINE_EVENT_ACTIONS = (
    "create", "start", "restart", "die", "kill", "stop", "pause", "unpause",
    "oom", "destroy", "rename", "update", "health_status",
)

DEPLOY_STATUSES = ("deploying", "deployed", "tearing_down", "failed")
OUTCOMES = ("succeeded", "failed")

# A status frame is written to 10,000 clients in ~80 ms (BENCHMARKS.md).
BROADCAST_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
)
# One engine call; the docker timeout (10 s by default) bounds it.
POLL_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0)

# an engine's action word as a label: Docker's are short snake_case words
_ACTION = re.compile(r"[a-z][a-z_]{0,31}")


class FeedMetrics:
    """
    What the WebSocket feed counts.  L{broadcasted} is the only call on the
    broadcast path: once per message, whatever the number of clients.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.framesSent = Counter(
            f"{PREFIX}_feed_frames_sent",
            "Status frames written to feed clients: one per client a broadcast "
            "reached, one per picture sent on connect or on get_status.",
            registry=registry,
        )
        self.bytesSent = Counter(
            f"{PREFIX}_feed_sent_bytes",
            "Bytes of status frames (WebSocket framing included) written to feed clients.",
            registry=registry,
        )
        self.connections = Counter(
            f"{PREFIX}_feed_connections",
            "Feed clients that completed the WebSocket handshake.",
            registry=registry,
        )
        self.broadcastSeconds = Histogram(
            f"{PREFIX}_feed_broadcast_duration_seconds",
            "From a status message reaching the feed to its frame written to the "
            "last client: encoding, framing and every socket write.",
            buckets=BROADCAST_BUCKETS,
            registry=registry,
        )
        drops = Counter(
            f"{PREFIX}_feed_clients_dropped",
            "Feed clients the hub disconnected, by reason: slow (too much left "
            "unread), ping_timeout (no answer to a ping), bad_message (sent "
            "something the hub does not accept).",
            ["reason"],
            registry=registry,
        )
        # resolved once: a reason's series exists (at 0) before its first drop
        self._drops = {reason: drops.labels(reason=reason) for reason in DROP_REASONS}

    def broadcasted(self, clients: int, frameBytes: int, seconds: float) -> None:
        """
        One message was written to C{clients} clients in C{seconds}.
        """
        self.framesSent.inc(clients)
        self.bytesSent.inc(clients * frameBytes)
        self.broadcastSeconds.observe(seconds)

    def opened(self) -> None:
        """
        A client connected (its snapshot is counted by L{sent}).
        """
        self.connections.inc()

    def sent(self, frameBytes: int) -> None:
        """
        One frame went to one client (a picture of its snapshot).
        """
        self.framesSent.inc()
        self.bytesSent.inc(frameBytes)

    def dropped(self, reason: str) -> None:
        self._drops[reason].inc()

    def closing(self, code: Optional[int]) -> None:
        """
        The hub sent a close frame with C{code}: a drop, if the code says one.
        """
        reason = CLOSE_CODE_REASONS.get(code) if code is not None else None
        if reason is not None:
            self.dropped(reason)


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

    def startContainer(self, containerId: str) -> Any:
        return self._call("startContainer", containerId)

    def inspectContainer(self, containerId: str) -> Any:
        return self._call("inspectContainer", containerId)

    def removeContainer(self, containerId: str) -> Any:
        return self._call("removeContainer", containerId)

    def listContainers(self, labels: dict) -> Any:
        return self._call("listContainers", labels)

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


@implementer(IStatusSink)
class StatusMetrics:
    """
    A status sink that counts the messages the hub emits, and the deploys
    and teardowns those messages show ending (so it counts exactly what
    clients were told).

    A deploy is C{deploying} until a message says C{deployed} (succeeded) or
    C{failed}; a teardown is C{tearing_down} until C{idle} (succeeded) or
    C{failed}.  Only deployments in one of those two states are remembered,
    so what is kept is bounded by the deployments in progress.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.messages = Counter(
            f"{PREFIX}_status_messages",
            "Status messages the hub emitted (each goes to every feed client, and to WAMP).",
            registry=registry,
        )
        deploys = Counter(
            f"{PREFIX}_deploys",
            "Deploys that ended, by outcome: succeeded (deployed) or failed.",
            ["outcome"],
            registry=registry,
        )
        teardowns = Counter(
            f"{PREFIX}_teardowns",
            "Teardowns that ended, by outcome: succeeded (idle) or failed.",
            ["outcome"],
            registry=registry,
        )
        self._ended = {
            ("deploying", "deployed"): deploys.labels(outcome="succeeded"),
            ("deploying", "failed"): deploys.labels(outcome="failed"),
            ("tearing_down", "idle"): teardowns.labels(outcome="succeeded"),
            ("tearing_down", "failed"): teardowns.labels(outcome="failed"),
        }
        # deployment name -> "deploying" or "tearing_down"
        self._inProgress: dict[Optional[str], str] = {}

    def broadcast(self, message: dict) -> None:
        self.messages.inc()
        name = message.get("deployment")
        status = message.get("deployStatus")
        if status == "idle" and name is None:
            # "nothing deployed": whatever was being torn down is gone
            names = list(self._inProgress)
        else:
            names = [name]
        for each in names:
            before = self._inProgress.pop(each, None)
            ended = self._ended.get((before, status))
            if ended is not None:
                ended.inc()
        if status in ("deploying", "tearing_down"):
            self._inProgress[name] = status


class StateCollector:
    """
    Reads the hub's state when Prometheus scrapes.

    @param clients: the number of feed clients connected now.
    @param pictures: the current message of every deployment (an idle
        picture counts as no deployment).
    @param healthChecks: C{/healthz}'s components; C{engine} gives
        C{statushub_engine_up}, C{wamp} (when configured)
        C{statushub_wamp_joined}.
    """

    def __init__(
        self,
        clients: Callable[[], int],
        pictures: Callable[[], Iterable[dict]],
        healthChecks: Iterable[IHealthCheck],
    ) -> None:
        self._clients = clients
        self._pictures = pictures
        self._checks = {check.name: check for check in healthChecks}

    def describe(self) -> list[Metric]:
        # the names, without reading anything: lets the registry check for
        # clashes at registration without a collect()
        return self._families()

    def _families(self) -> list[Metric]:
        families = [
            GaugeMetricFamily(
                f"{PREFIX}_feed_clients", "Feed clients connected now."
            ),
            GaugeMetricFamily(
                f"{PREFIX}_deployments",
                "Deployments by status (deploying, deployed, tearing_down, failed).",
                labels=["status"],
            ),
            GaugeMetricFamily(
                f"{PREFIX}_nodes",
                "Nodes of every deployment by status (the engine's word, missing or "
                "unknown) and health (starting, healthy, unhealthy, none).",
                labels=["status", "health"],
            ),
        ]
        if "engine" in self._checks:
            families.append(GaugeMetricFamily(
                f"{PREFIX}_engine_up",
                "1 when the hub reaches the container engine, else 0.",
            ))
        if "wamp" in self._checks:
            families.append(GaugeMetricFamily(
                f"{PREFIX}_wamp_joined",
                "1 when the hub has joined its WAMP realm, else 0.",
            ))
        return families

    def collect(self) -> Iterator[Metric]:
        clients, deployments, nodes, *health = self._families()
        clients.add_metric([], self._clients())

        byStatus = dict.fromkeys(DEPLOY_STATUSES, 0)
        byNode: dict[tuple[str, str], int] = {}
        for picture in list(self._pictures()):
            status = picture.get("deployStatus")
            if status == "idle":
                continue
            byStatus[status] = byStatus.get(status, 0) + 1
            for node in picture.get("nodeStatuses", ()):
                key = (node.get("status", "unknown"), node.get("health") or "none")
                byNode[key] = byNode.get(key, 0) + 1
        for status, count in byStatus.items():
            deployments.add_metric([status], count)
        for labels, count in sorted(byNode.items()):
            nodes.add_metric(list(labels), count)
        yield clients
        yield deployments
        yield nodes

        for family in health:
            if family.name == f"{PREFIX}_engine_up":
                up = self._checks["engine"].health() == "reachable"
            else:
                up = self._checks["wamp"].health() == "joined"
            family.add_metric([], 1 if up else 0)
            yield family


class WebMetrics:
    """
    What the HTTP side counts: wrong tokens, and connections closed by the
    request limits (L{statushub.web.limits}).
    """

    CLOSE_REASONS = ("request_timeout", "max_pending")

    def __init__(self, registry: CollectorRegistry) -> None:
        self.authFailures = Counter(
            f"{PREFIX}_auth_failures",
            "Requests with a wrong token (one without a token is not counted).",
            registry=registry,
        )
        closed = Counter(
            f"{PREFIX}_http_connections_closed",
            "HTTP connections closed before their request was in, by reason: "
            "request_timeout ([server] request_timeout passed), max_pending (the "
            "oldest of too many waiting for their request).",
            ["reason"],
            registry=registry,
        )
        self._closed = {reason: closed.labels(reason=reason) for reason in self.CLOSE_REASONS}

    def authFailed(self) -> None:
        self.authFailures.inc()

    def connectionClosed(self, reason: str) -> None:
        self._closed[reason].inc()


class Metrics:
    """
    Every metric of one hub, on a registry of its own: the parts that count
    take theirs from here (C{feed}, C{engine}, C{status}, C{web}); L{watch} adds
    what is read at scrape time; the process's own figures come with it.
    """

    def __init__(self, registry: Optional[CollectorRegistry] = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.feed = FeedMetrics(self.registry)
        self.engine = EngineMetrics(self.registry)
        self.status = StatusMetrics(self.registry)
        self.web = WebMetrics(self.registry)
        # CPU, memory, open files, start time: statushub_process_*
        ProcessCollector(namespace=PREFIX, registry=self.registry)

    def watch(
        self,
        clients: Callable[[], int],
        pictures: Callable[[], Iterable[dict]],
        healthChecks: Iterable[IHealthCheck],
    ) -> None:
        """
        Read these when scraped (see L{StateCollector}).
        """
        self.registry.register(StateCollector(clients, pictures, healthChecks))

    def resource(self) -> IResource:
        """
        The C{/metrics} resource: prometheus_client's own for twisted.web
        (the text format, or OpenMetrics when asked for; gzip when accepted).
        """
        # imported here: it imports the reactor
        from prometheus_client.twisted import MetricsResource

        return MetricsResource(registry=self.registry)
