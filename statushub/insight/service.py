"""
The insight room as one twistd service: the stream threads, the log and
stats hubs (with the stats round's timer), and their two feeds, built from
the configuration; every stream closed and the threads ended when it stops.
"""

from __future__ import annotations

from typing import Any, Mapping

from twisted.application.internet import TimerService
from twisted.application.service import MultiService
from twisted.internet.defer import Deferred, gatherResults

from statushub.insight.feeds import LogFeedFactory, StatsFeedFactory
from statushub.insight.logs import LogHub
from statushub.insight.pumps import StreamThreads
from statushub.insight.stats import INTERVAL, StatsHub
from statushub.interfaces import IContainerEngine, INodeLocator


class InsightService(MultiService):
    """
    @param logs: the C{[logs]} section.
    @param feed: the C{[feed]} section (send buffer, keep-alive).
    @ivar logHub, statsHub: what the API reads (the log hub is a status
        sink too: give it to the board); C{logFeed}, C{statsFeed}: the
        WebSocket factories the web layer mounts.
    @ivar viewerMayRead: C{[logs] viewer}.
    """

    def __init__(
        self,
        engine: IContainerEngine,
        locator: INodeLocator,
        reactor: Any,
        logs: Mapping[str, Any],
        feed: Mapping[str, Any],
    ) -> None:
        super().__init__()
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
        return gatherResults([stopped, self.pump.stop()], consumeErrors=True)
