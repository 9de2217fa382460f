"""
The insight room as one twistd service: the stream threads, the log and
stats hubs, and their two feeds, built from the configuration and closed
with the hub.
"""

from __future__ import annotations

from typing import Any, Mapping

from twisted.application.service import Service

from statushub.insight.feeds import LogFeedFactory, StatsFeedFactory
from statushub.insight.logs import LogHub
from statushub.insight.pumps import StreamThreads
from statushub.insight.stats import StatsHub
from statushub.interfaces import IContainerEngine, INodeLocator


class InsightService(Service):
    """
    @param logs: the C{[logs]} section.
    @param feed: the C{[feed]} section (send buffer, keep-alive).
    @ivar logHub, statsHub: what the API reads; C{logFeed}, C{statsFeed}:
        the WebSocket factories the web layer mounts.
    """

    def __init__(
        self,
        engine: IContainerEngine,
        locator: INodeLocator,
        reactor: Any,
        logs: Mapping[str, Any],
        feed: Mapping[str, Any],
    ) -> None:
        self.pump = StreamThreads(reactor, logs["max_streams"])
        self.logHub = LogHub(
            engine, locator, reactor, self.pump, reactor.callFromThread,
            maxLinesPerSecond=logs["max_lines_per_second"],
        )
        self.statsHub = StatsHub(engine, locator, reactor, self.pump, reactor.callFromThread)
        options = dict(
            maxSendBuffer=feed["max_send_buffer"],
            pingInterval=feed["ping_interval"],
            pingTimeout=feed["ping_timeout"],
        )
        self.logFeed = LogFeedFactory(self.logHub, reactor, **options)
        self.statsFeed = StatsFeedFactory(self.statsHub, reactor, **options)
        self.viewerMayRead = logs["viewer"]

    def stopService(self) -> Any:
        super().stopService()
        # every stream closed: each reading thread returns, and the pool
        # can be joined
        self.logHub.closeAll()
        self.statsHub.closeAll()
        self.pump.stop()
