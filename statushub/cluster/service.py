"""
One hub of a cluster, composed: the Redis connection, the subscription, the
lease, and the leader's work, built anew for every term.

C{statushub.tap} chooses between this and one hub alone, in one place; the
rest of the hub (feeds, API, dashboard, metrics) is the same either way: it
reads the L{Mirror} (an L{IStatusSource}) and the L{RedisHistory} (an
L{IHistory}), and acts through the L{ClusterControl} (an
L{IDeploymentControl}).

Every term, a new leader reads what the cluster holds (the epoch, every
deployment's last seq, the current pictures), makes a board that numbers on
from there and whose only sink is the L{FencedWriter} of that term, and
hands the board to the orchestrator the C{lead} callable builds (the engine
it acts on wrapped in a L{FencedEngine}).  When the term ends the writer
stops first (nothing more is written), then the orchestrator.
"""

from __future__ import annotations

import secrets
from typing import Any, Callable, Iterable, Optional

from twisted.application.service import IService, MultiService, Service
from twisted.logger import Logger
from zope.interface import implementer

from statushub.cluster.connection import RedisConnection, newHubId
from statushub.cluster.feed import ClusterFeed
from statushub.cluster.handover import (
    ClusterControl,
    Codecs,
    ConfirmedControl,
    RequestServer,
    topologyCodecs,
)
from statushub.cluster.history import RedisHistory, fetch, readState
from statushub.cluster.leaderonly import FencedEngine, LeaderOnly
from statushub.cluster.lease import RedisLeadership, RedisLeaseStore
from statushub.cluster.mirror import Mirror
from statushub.cluster.writer import FencedWriter
from statushub.interfaces import IHealthCheck, IStatusSink, IStatusSource
from statushub.numbering import PersistentNumbering
from statushub.resources import ResourcePolicy
from statushub.status import StatusBoard

#: lead(board, fence): the leader's work on that board (a service with
#: C{control}, an IDeploymentControl, and C{healthChecks}), acting on the
#: engine C{fence(engine)} gives
Lead = Callable[[StatusBoard, Callable[[Any], Any]], Any]


class _Connected(Service):
    """
    The connection's thread pool, started and stopped with the hub (first
    in, last out: everything else uses it).
    """

    def __init__(self, connection: RedisConnection) -> None:
        self.connection = connection

    def startService(self) -> None:
        super().startService()
        self.connection.start()

    def stopService(self) -> None:
        super().stopService()
        self.connection.stop()


class Attached(Service):
    """
    A sink that is also a service (the WAMP publisher), run only while this
    service runs and, meanwhile, told every message of C{source}.
    """

    def __init__(self, sink: Any, source: IStatusSource) -> None:
        self.sink = sink
        self._source = source

    def startService(self) -> None:
        super().startService()
        self._source.addSink(self.sink)
        self.sink.startService()

    def stopService(self) -> Any:
        super().stopService()
        self._source.removeSink(self.sink)
        return self.sink.stopService()


class _Term(MultiService):
    """
    The leader's work in one term: its writer stops before anything else.
    """

    def __init__(
        self,
        writer: FencedWriter,
        work: IService,
        control: ClusterControl,
        local: Any,
        board: StatusBoard,
    ) -> None:
        super().__init__()
        self.board = board
        self.writer = writer
        self.work = work
        self._control = control
        self._local = local
        work.setServiceParent(self)

    def startService(self) -> None:
        super().startService()
        # change requests are carried out here from now on
        self._control.local = self._local

    def stopService(self) -> Any:
        self.writer.stop()
        self._control.local = None
        return super().stopService()


@implementer(IHealthCheck)
class _EngineWord:
    """
    C{/healthz}'s word on the engine: the leader's own (its polls), or, on a
    follower, the word of the last picture the leader wrote.
    """

    name = "engine"

    def __init__(self, cluster: "ClusterService") -> None:
        self._cluster = cluster

    def health(self) -> str:
        term = self._cluster.leaderOnly.current
        if isinstance(term, _Term):
            for check in getattr(term.work, "healthChecks", ()):
                if check.name == "engine":
                    return check.health()
        return self._cluster.mirror.engine


class ClusterService(MultiService):
    """
    @param url: C{[cluster] redis}.
    @param lease: C{[cluster] lease}, seconds.
    @param owner: C{[deploy] owner}: hubs of one owner on one Redis are one
        hub (the keys' prefix).
    @param lead: builds the leader's work for a term.
    @param policy: the resources a node may have (C{[deploy]}): the leader
        validates a topology that crosses to it with it.
    @param codecs: how each change request's arguments cross to the leader
        (default: a topology as its document, validated again).
    @param keepDays: C{[history] keep_days}.
    @param maxMessages: C{[history] max_messages}.
    @param leaderSinks: sinks that are services (the WAMP publisher), run
        only while this hub leads.
    @ivar mirror: what this hub serves (an L{IStatusSource}).
    @ivar history: the cluster's history (an L{IHistory}).
    @ivar control: what the API acts through (an L{IDeploymentControl}).
    @ivar healthChecks: the engine's word, the history's, the cluster's.
    """

    log = Logger()

    def __init__(
        self,
        url: str,
        lease: float,
        reactor: Any,
        lead: Lead,
        owner: str = "statushub",
        policy: ResourcePolicy = ResourcePolicy(),
        codecs: Optional[Codecs] = None,
        keepDays: float = 7.0,
        maxMessages: int = 100_000,
        leaderSinks: Iterable[Any] = (),
        hubId: Optional[str] = None,
    ) -> None:
        super().__init__()
        self._reactor = reactor
        self._lead = lead
        self._keepDays = keepDays
        self._maxMessages = maxMessages
        self.leaderSinks = list(leaderSinks)
        self.hubId = hubId or newHubId()
        # a command may take a third of the renewal period: a renewal that
        # hangs has failed while the lease still has time
        self.connection = RedisConnection(
            url, reactor, timeout=min(1.0, lease / 5), prefix=f"statushub:{owner}"
        )
        self.mirror = Mirror(reactor, lambda name, after, upto: fetch(self.connection, name, after, upto))
        self.history = RedisHistory(self.connection, self.mirror)
        self.leadership = RedisLeadership(
            RedisLeaseStore(self.connection, lambda: secrets.token_hex(8)),
            reactor, self.hubId, lease=lease,
        )
        if codecs is None:
            codecs = topologyCodecs(policy)
        self.control = ClusterControl(self.leadership, self.connection, self.hubId, reactor, codecs)
        self.requests = RequestServer(self.leadership, self.connection, self.control, codecs)
        self.feed = ClusterFeed(
            self.connection, self.hubId, self.mirror, reactor,
            onRequest=self.requests.receiveRequest, onReply=self.control.receiveReply,
        )
        self.leaderOnly = LeaderOnly(self.leadership, self._term)
        # started in this order, stopped in the reverse: the leader's work
        # first, then the lease (given up: another hub takes over at once),
        # the subscription, the connection last
        for child in (_Connected(self.connection), self.feed, self.leadership, self.leaderOnly):
            child.setServiceParent(self)
        self.healthChecks: list[IHealthCheck] = [_EngineWord(self), self.history, self.leadership]

    def addSink(self, sink: IStatusSink) -> None:
        """
        Tell C{sink} every message this hub shows (every hub: the feeds,
        the metrics).
        """
        self.mirror.addSink(sink)

    async def _term(self, term: int) -> IService:
        """
        The leader's work for C{term}: numbering on from what Redis holds.
        """
        state = await readState(self.connection)
        board = StatusBoard(self._reactor, PersistentNumbering(state.epoch, state.last))
        board.restore(list(state.current.values()))
        writer = FencedWriter(
            self.connection, self.hubId, term, state.epoch,
            deliver=self.mirror.receive, refused=self.leadership.stepDown,
            clock=self._reactor,
            keepDays=self._keepDays, maxMessages=self._maxMessages,
        )
        board.addSink(writer)
        work = self._lead(board, lambda engine: FencedEngine(engine, self.leadership))
        for sink in self.leaderSinks:
            Attached(sink, self.mirror).setServiceParent(work)
        local = ConfirmedControl(work.control, self.mirror, self._reactor)
        self.log.info(
            "cluster: leading in term {term}, numbering on from {count} deployment(s) "
            "(epoch {epoch})", term=term, count=len(state.last), epoch=state.epoch,
        )
        return _Term(writer, work, self.control, local, board)
