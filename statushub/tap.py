"""
C{twistd statushub}: options and the service tree.

The plugin in twisted/plugins/ only points here, so that listing twistd's
plugins imports neither the reactor nor this module's dependencies.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, Optional

from twisted.application.service import IServiceCollection, MultiService, Service
from twisted.internet.defer import Deferred, ensureDeferred, maybeDeferred
from twisted.logger import ILogObserver, Logger
from twisted.python import usage
from twisted.python.components import Componentized

from statushub import config as configuration
from statushub import listen
from statushub.listen import AnnouncingEndpointService
from statushub.startchecks import startRefusal

if TYPE_CHECKING:
    from twisted.web.server import Site

    from statushub.deploy.service import Orchestrator
    from statushub.hub import StatusHubFactory
    from statushub.insight.service import InsightService
    from statushub.interfaces import IDeploymentControl, IHealthCheck, IHistory, IStatusSource
    from statushub.metrics import Metrics
    from statushub.status import StatusBoard


class Options(usage.Options):
    synopsis = "[--config FILE] [--listen ENDPOINT] [--poll-interval SECONDS]"
    longdesc = (
        "Serve the statushub WebSocket feed, HTTP API and dashboard. "
        "Options given here override the config file."
    )

    optParameters = [
        ["config", "c", None, "TOML configuration file (default: built-in defaults)"],
        [
            "listen",
            "l",
            None,
            "Twisted endpoint to serve on, e.g. tcp:8080:interface=127.0.0.1 "
            "(overrides [server] listen)",
        ],
        [
            "poll-interval",
            None,
            None,
            "seconds between health polls (overrides [polling] interval)",
            float,
        ],
        [
            "wamp-url",
            None,
            None,
            "WebSocket URL of a WAMP router (Crossbar.io) to publish the status on, "
            "e.g. ws://127.0.0.1:8081/ws (overrides [wamp] url)",
        ],
        ["wamp-realm", None, None, "WAMP realm to join (overrides [wamp] realm)"],
        [
            "log-format",
            None,
            None,
            "text or json: one JSON object a log line (overrides [logging] format)",
        ],
    ]

    # command-line option -> (section, key) it overrides
    overrides = {
        "listen": ("server", "listen"),
        "poll-interval": ("polling", "interval"),
        "wamp-url": ("wamp", "url"),
        "wamp-realm": ("wamp", "realm"),
        "log-format": ("logging", "format"),
    }

    # environment variable -> (section, key) it overrides: secrets need not
    # live in a file under etc/
    environment = {
        "STATUSHUB_TOKEN": ("server", "token"),
        "STATUSHUB_VIEWER_TOKEN": ("server", "viewer_token"),
    }

    def postOptions(self) -> None:
        try:
            if self["config"] is not None:
                loaded = configuration.load(self["config"])
            else:
                loaded = configuration.defaults()
            for variable, (section, key) in self.environment.items():
                # set but empty counts as unset: an empty expansion in a
                # script must not turn the token off
                if os.environ.get(variable):
                    loaded.override(section, key, os.environ[variable])
            for option, (section, key) in self.overrides.items():
                if self[option] is not None:
                    loaded.override(section, key, self[option])
            configuration.checkTogether(loaded)
        except configuration.ConfigError as e:
            raise usage.UsageError(str(e))
        self.config = loaded
        # last: after everything that can set the listen address or the token
        refusal = startRefusal(loaded)
        if refusal is not None:
            raise usage.UsageError(refusal)


class HubService(MultiService):
    """
    The root of the hub's service tree.  Its children start in the order
    they were added (the history, the orchestrator, the WAMP publisher,
    keep-alive, the feed's GC freezer, the GC pause metrics, the listening
    port) and stop one after another the other way round, each waiting for
    the one before: the port stops accepting and the feed its pings, then
    the orchestrator stops its work on the engine, and the history goes
    last, so that every message emitted is written.

    @ivar logObserver: where twistd should send the log, if not as it
        would by itself: JSON lines (C{[logging] format = "json"}), or its
        own text with user text escaped (L{statushub.logtext}).  twistd starts
        logging after it has built the service and made it a child of its
        application, and then logs to the application's C{ILogObserver}
        component when there is one (C{twistd --logger} still wins); this
        sets that component.
    """

    logObserver: Optional[ILogObserver] = None
    #: the file it writes to, when that is a file twistd would rotate on SIGUSR1
    logFile: Optional[Any] = None
    log = Logger(namespace="statushub")

    def startService(self) -> None:
        super().startService()
        from twisted.python.logfile import LogFile

        from statushub.jsonlog import rotateOnSIGUSR1

        if isinstance(self.logFile, LogFile):
            rotateOnSIGUSR1(self.logFile)

    def setServiceParent(self, parent: IServiceCollection) -> None:
        super().setServiceParent(parent)
        if self.logObserver is not None and isinstance(parent, Componentized):
            parent.setComponent(ILogObserver, self.logObserver)

    def stopService(self) -> "Deferred[None]":
        Service.stopService(self)
        return ensureDeferred(self._stopInTurn())

    async def _stopInTurn(self) -> None:
        for child in reversed(list(self)):
            try:
                await maybeDeferred(child.stopService)
            except Exception:
                self.log.failure("stopping {service!r} failed", service=child)


def makeService(options: Options, reactor: Optional[Any] = None) -> HubService:
    """
    The hub's service tree, one builder per concern.
    """
    if reactor is None:
        from twisted.internet import reactor

    config = options.config
    service = HubService()
    service.logObserver, service.logFile = logOutput(config, options)
    metrics = buildMetrics(config)
    # the one place where one hub alone and one of several on Redis differ
    buildCore = buildCluster if config["cluster"]["redis"] else buildOneHub
    core = buildCore(config, reactor, metrics, service)
    hub = buildFeed(config, core.source, reactor, metrics, core.history, service)
    if metrics is not None:
        metrics.gc.setServiceParent(service)  # GC pauses, timed while the hub runs
        # read at scrape time, from a thread: every deployment's current picture
        metrics.watch(hub.__len__, core.source.snapshot, core.healthChecks)
    site = buildSite(config, core, hub, metrics, reactor)
    listenOn(config, site, reactor, service)
    return service


# The builders.  Each imports what it builds when it is called, not when
# twistd parses options: --help and config errors stay fast and import no
# reactor.


@dataclass(frozen=True)
class Core:
    """
    What the feeds, the API and the dashboard stand on (the pictures, the
    kept messages if any, what the API acts through, what C{/healthz}
    reports, the nodes' logs and resource use), whoever provides it: one
    hub alone (L{buildOneHub}) or one of several (L{buildCluster}).
    """

    source: IStatusSource
    history: Optional[IHistory]
    control: IDeploymentControl
    healthChecks: list[IHealthCheck]
    insight: InsightService


def buildOneHub(
    config: configuration.Config, reactor: Any, metrics: Optional[Metrics], service: HubService
) -> Core:
    """
    One hub alone: the history in SQLite, the board numbered by it, the
    orchestrator acting on the engine, the insight room reading through its
    engine and locator (after it in the tree: its streams close before the
    engine stops), the WAMP publisher.
    """
    from statushub.insight.service import insightFromConfig

    history, board = buildHistoryAndBoard(config, reactor, metrics, service)
    orchestrator = buildOrchestrator(config, board, reactor, metrics, service)
    insight = insightFromConfig(
        orchestrator.calls, orchestrator.locator, board, config, reactor, metrics
    )
    insight.setServiceParent(service)
    wamp = buildWamp(config, board, reactor, service)
    checks = list(orchestrator.healthChecks)  # /healthz: the engine, then these
    checks += [check for check in (history, wamp) if check is not None]
    return Core(board, history, orchestrator.control, checks, insight)


def buildCluster(
    config: configuration.Config, reactor: Any, metrics: Optional[Metrics], service: HubService
) -> Core:
    """
    One of several hubs on C{[cluster] redis}: pictures, history and
    numbering are the cluster's; the orchestrator (and the WAMP publisher)
    run only while this hub leads, a new one each term; every hub reads
    logs and resource use from the engine itself (L{buildClusterInsight}).
    """
    from statushub.cluster.service import ClusterService
    from statushub.deploy.service import Orchestrator
    from statushub.wamp import fromConfig

    def lead(board: StatusBoard, fence: Any) -> Orchestrator:
        return Orchestrator(
            board, config, reactor, None if metrics is None else metrics.engine, fence=fence,
            observeAction=None if metrics is None else metrics.actions.ended,
        )

    history = config["history"]
    cluster = ClusterService(
        config["cluster"]["redis"], config["cluster"]["lease"], reactor, lead,
        owner=config["deploy"]["owner"], policy=configuration.resourcePolicy(config),
        keepDays=history["keep_days"], maxMessages=history["max_messages"],
    )
    if metrics is not None:
        cluster.addSink(metrics.status)
    cluster.setServiceParent(service)
    checks = list(cluster.healthChecks)
    wamp = fromConfig(config["wamp"], reactor, cluster.mirror)
    if wamp is not None:
        # only the leader publishes
        cluster.leaderSinks.append(wamp)
        checks.append(wamp)
    insight = buildClusterInsight(config, cluster.mirror, reactor, metrics)
    insight.setServiceParent(service)
    return Core(cluster.mirror, cluster.history, cluster.control, checks, insight)


def buildClusterInsight(
    config: configuration.Config, source: IStatusSource, reactor: Any, metrics: Optional[Metrics]
) -> InsightService:
    """
    A hub of a cluster reads its nodes' logs and resource use from the
    engine itself, leader or not, through an engine of its own (never
    fenced: reading acts on nothing) and where the pictures it shows say
    each node runs (on a swarm, the node's service, by its name).
    """
    from statushub.deploy.service import engineFromConfig
    from statushub.engine.swarm import nodeServiceName
    from statushub.insight.locator import SourceLocator, shownContainer
    from statushub.insight.service import insightFromConfig

    engine = engineFromConfig(config, reactor)
    owner = config["deploy"]["owner"]
    reference = shownContainer
    if config["engine"]["kind"] == "swarm":
        reference = lambda deployment, node, shown: nodeServiceName(owner, deployment, node)
    locator = SourceLocator(source, reference)
    calls = engine if metrics is None else metrics.engine.wrap(engine)
    return insightFromConfig(calls, locator, source, config, reactor, metrics, owned=engine)


def logOutput(
    config: configuration.Config, options: Options
) -> tuple[Optional[ILogObserver], Optional[IO[Any]]]:
    """
    Where and how the hub logs: the JSON log observer C{[logging] format =
    "json"} asks for, else twistd's text format with user text escaped
    (L{statushub.logtext}), each to where twistd would log, with that
    file; L{None} twice with twistd's C{--syslog} (twistd logs as it would,
    and the syslog daemon escapes).
    """
    from statushub.jsonlog import jsonLogObserver, twistdLogFile
    from statushub.logtext import textLogObserver

    # twistd's own options, when twistd runs us: where it would log
    twistdOptions = getattr(options, "parent", None)
    if config["logging"]["format"] == "json":
        logFile = twistdLogFile(twistdOptions)
        return jsonLogObserver(logFile), logFile
    if twistdOptions is not None and twistdOptions.get("syslog"):
        return None, None
    logFile = twistdLogFile(twistdOptions)
    return textLogObserver(logFile), logFile


def buildMetrics(config: configuration.Config) -> Optional[Metrics]:
    """
    A registry of this hub's own (not prometheus_client's global one), or
    L{None} when C{[metrics]} is off.
    """
    if not config["metrics"]["enabled"]:
        return None
    from statushub.metrics import Metrics

    return Metrics()


def buildHistoryAndBoard(
    config: configuration.Config, reactor: Any, metrics: Optional[Metrics], service: HubService
) -> tuple[Optional[IHistory], StatusBoard]:
    """
    The history (opened now: the numbering goes on from what it holds; its
    service first in the tree, so it stops last) and the board numbered by
    it, which tells the metrics and the history every message first.
    """
    from statushub.history.service import historyFromConfig
    from statushub.status import HistorySink, StatusBoard

    historyService, numbering = historyFromConfig(config["history"], reactor)
    # before adopting, the hub answers with the last message it sent
    opened = None if historyService is None else historyService.store.opened
    board = StatusBoard(reactor, numbering, last=None if opened is None else opened.lastMessages())
    if metrics is not None:
        board.addSink(metrics.status)
    if historyService is None:
        return None, board
    historyService.setServiceParent(service)
    board.addSink(HistorySink(historyService.store))
    return historyService.store, board


def buildOrchestrator(
    config: configuration.Config,
    board: StatusBoard,
    reactor: Any,
    metrics: Optional[Metrics],
    service: HubService,
) -> Orchestrator:
    """
    Deployments on the engine: polls and events feed the board.
    """
    from statushub.deploy.service import Orchestrator

    orchestrator = Orchestrator(
        board, config, reactor,
        None if metrics is None else metrics.engine,
        observeAction=None if metrics is None else metrics.actions.ended,
    )
    orchestrator.setServiceParent(service)
    return orchestrator


def buildWamp(
    config: configuration.Config, board: StatusBoard, reactor: Any, service: HubService
) -> Optional[IHealthCheck]:
    """
    The status on a WAMP router too, when C{[wamp]} or C{--wamp-url} says
    where; L{None} otherwise.
    """
    from statushub.wamp import fromConfig

    wamp = fromConfig(config["wamp"], reactor, board)
    if wamp is None:
        return None
    board.addSink(wamp)
    wamp.setServiceParent(service)
    return wamp


def buildFeed(
    config: configuration.Config,
    source: IStatusSource,
    reactor: Any,
    metrics: Optional[Metrics],
    history: Optional[IHistory],
    service: HubService,
) -> StatusHubFactory:
    """
    The WebSocket hub, a sink of the source, its keep-alive and GC freezer.
    """
    from statushub.hub import StatusHubFactory
    from statushub.hub.freezer import ConnectionFreezer
    from statushub.hub.keepalive import KeepAlive

    feed = config["feed"]
    hub = StatusHubFactory(
        source,
        reactor,
        maxSendBuffer=feed["max_send_buffer"],
        maxMessageSize=feed["max_message_size"],
        metrics=None if metrics is None else metrics.feed,
        history=history,
    )
    source.addSink(hub)
    KeepAlive(hub, reactor, feed["ping_interval"], feed["ping_timeout"]).setServiceParent(
        service
    )
    # start-up's objects, then each batch of clients, out of the cyclic GC's sight
    hub.freezer = ConnectionFreezer(reactor, hub.__len__)
    hub.freezer.setServiceParent(service)
    return hub


def buildSite(
    config: configuration.Config,
    core: Core,
    hub: StatusHubFactory,
    metrics: Optional[Metrics],
    reactor: Any,
) -> Site:
    """
    Every HTTP and WebSocket resource, on one site (statushub.web).
    """
    from statushub.web.deployments import deploymentsAPI
    from statushub.web.examples import mountExamples
    from statushub.web.insight import NodeReaders
    from statushub.web.metricsresource import metricsResource
    from statushub.web.roles import Roles
    from statushub.web.site import makeSite

    readers = NodeReaders.of(core.insight, Roles.fromConfig(config["server"]).identify)
    policy = configuration.resourcePolicy(config)
    site = makeSite(
        core.source,
        hub,
        config,
        api=deploymentsAPI(core.control, core.source, core.history, policy, readers),
        healthChecks=core.healthChecks,
        reactor=reactor,
        metrics=None if metrics is None else metricsResource(metrics.registry),
        webMetrics=None if metrics is None else metrics.web,
        readers=readers,
    )
    mountExamples(site, config["wamp"])
    return site


def listenOn(config: configuration.Config, site: Site, reactor: Any, service: HubService) -> None:
    """
    Serve C{site} on C{[server] listen}, last in the tree: the port is
    bound before anything starts (twistd's privileged start), accepts once
    everything else runs, and stops accepting first.
    """
    # the backlog is raised here, so every way of naming the endpoint gets it
    description = config["server"]["listen"]
    endpoint = listen.serverEndpoint(reactor, description)
    server = AnnouncingEndpointService(endpoint, site, reactor, listen.isTLS(description))
    # a port that cannot be bound stops twistd at start, with the reason
    server._raiseSynchronously = True
    server.setServiceParent(service)
