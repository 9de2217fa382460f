"""
The insight room as one twistd service: the stream threads, the log and
stats hubs (with the stats round's timer), and their two feeds, built from
the configuration; every stream closed and the threads ended when it stops.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Optional

from twisted.application.internet import TimerService
from twisted.application.service import MultiService
from twisted.internet.defer import Deferred, gatherResults

from statushub.insight.feeds import LogFeedFactory, StatsFeedFactory
from statushub.insight.logs import LogHub
from statushub.insight.pumps import StreamThreads
from statushub.insight.stats import INTERVAL, StatsHub
from statushub.interfaces import IContainerEngine, INodeLocator, IStatusSource

if TYPE_CHECKING:
    from statushub.metrics import Metrics


class InsightService(MultiService):
    """
    @param logs: the C{[logs]} section.
    @param feed: the C{[feed]} section (send buffer, keep-alive).
    @ivar logHub, statsHub: what the API reads (the log hub is a status
        sink too: give it to the board); C{logFeed}, C{statsFeed}: the
        WebSocket factories the web layer mounts.
    @ivar viewerMayRead: C{[logs] viewer}.
    @param owned: an engine of its own (a hub of a cluster reads through
        one), stopped after the last stream; L{None}: the engine is the
        orchestrator's, stopped by it.
    """

    def __init__(
        self,
        engine: IContainerEngine,
        locator: INodeLocator,
        reactor: Any,
        logs: Mapping[str, Any],
        feed: Mapping[str, Any],
        owned: Optional[Any] = None,
    ) -> None:
        super().__init__()
        self._owned = owned
        self.pump = StreamThreads(reactor, logs["max_streams"])
        self.logHub = LogHub(
            engine, locator, reactor, self.pump, reactor.callFromThread,
            maxLinesPerSecond=logs["max_lines_per_second"],
        )
        self.statsHub = StatsHub(engine, locator, reactor, self.pump, reactor.callFromThread)
        rounds = TimerService(INTERVAL, self.statsHub.tick)
        rounds.clock = reactor
        rounds.setServiceParent(self)
        options = dict(
            maxSendBuffer=feed["max_send_buffer"],
            pingInterval=feed["ping_interval"],
            pingTimeout=feed["ping_timeout"],
        )
        self.logFeed = LogFeedFactory(self.logHub, reactor, **options)
        self.statsFeed = StatsFeedFactory(self.statsHub, reactor, **options)
        self.viewerMayRead: bool = logs["viewer"]

    def stopService(self) -> "Deferred[Any]":
        stopped = super().stopService()
        # every stream closed: each reading thread returns, and the pool
        # is joined (off the reactor thread)
        self.logHub.closeAll()
        self.statsHub.closeAll()
        done = gatherResults([stopped, self.pump.stop()], consumeErrors=True)
        if self._owned is not None:
            done.addBoth(lambda result: self._owned.stop())
        return done


def insightFromConfig(
    engine: IContainerEngine,
    locator: INodeLocator,
    source: IStatusSource,
    config: Mapping[str, Any],
    reactor: Any,
    metrics: Optional[Metrics] = None,
    owned: Optional[Any] = None,
) -> InsightService:
    """
    The insight room of a hub: reading through C{engine} and C{locator},
    a sink of C{source} (a followed node whose container is gone ends its
    log), its streams counted by C{metrics}' gauges.
    """
    insight = InsightService(engine, locator, reactor, config["logs"], config["feed"], owned)
    source.addSink(insight.logHub)
    if metrics is not None:
        metrics.watchStreams(
            log_streams=lambda: insight.logHub.streams,
            log_followers=lambda: len(insight.logFeed),
            stats_streams=lambda: insight.statsHub.streams,
            stats_clients=lambda: len(insight.statsFeed),
        )
    return insight
