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

from typing import Callable, Iterable, Optional

from prometheus_client import CollectorRegistry, ProcessCollector

from statushub.interfaces import IHealthCheck
from statushub.metrics.actions import ACTION_OUTCOMES, ActionMetrics
from statushub.metrics.engine import (
    ENGINE_ERROR_KINDS,
    ENGINE_EVENT_ACTIONS,
    ENGINE_OPERATIONS,
    POLL_BUCKETS,
    EngineMetrics,
    MeteredEngine,
    MeteredEventStream,
)
from statushub.metrics.feed import BROADCAST_BUCKETS, DROP_REASONS, FeedMetrics
from statushub.metrics.gc import GC_PAUSE_BUCKETS, GCPauseMetrics
from statushub.metrics.prefix import PREFIX
from statushub.metrics.status import (
    DEPLOY_STATUSES,
    OUTCOMES,
    StateCollector,
    StatusMetrics,
)
from statushub.metrics.streams import StreamsCollector
from statushub.metrics.web import CLOSE_REASONS, WebMetrics

__all__ = [
    "ACTION_OUTCOMES", "ActionMetrics", "BROADCAST_BUCKETS", "CLOSE_REASONS", "DEPLOY_STATUSES",
    "DROP_REASONS", "ENGINE_ERROR_KINDS", "ENGINE_EVENT_ACTIONS", "ENGINE_OPERATIONS",
    "GC_PAUSE_BUCKETS", "OUTCOMES", "POLL_BUCKETS", "PREFIX", "EngineMetrics", "FeedMetrics",
    "GCPauseMetrics", "MeteredEngine", "MeteredEventStream", "Metrics", "StateCollector",
    "StatusMetrics", "StreamsCollector", "WebMetrics",
]


class Metrics:
    """
    Every metric of one hub, on a registry of its own: the parts that count
    take theirs from here (C{feed}, C{engine}, C{status}, C{actions}, C{web}); L{watch}
    adds what is read at scrape time; the process's own figures come with it,
    and its GC pauses (C{gc}, a service: timed while it runs).
    """

    def __init__(self, registry: Optional[CollectorRegistry] = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.feed = FeedMetrics(self.registry)
        self.engine = EngineMetrics(self.registry)
        self.status = StatusMetrics(self.registry)
        self.actions = ActionMetrics(self.registry)
        self.web = WebMetrics(self.registry)
        self.gc = GCPauseMetrics(self.registry)
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

    def watchStreams(self, **counts: Callable[[], int]) -> None:
        """
        Read the engine streams open (and their clients) when scraped: the
        gauges C{statushub_log_streams}, C{statushub_stats_streams}, ...
        (see L{StreamsCollector}).
        """
        self.registry.register(StreamsCollector(counts))
