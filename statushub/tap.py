"""
C{twistd statushub}: options and the service tree.

The plugin in twisted/plugins/ only points here, so that listing twistd's
plugins imports neither the reactor nor this module's dependencies.
"""

from __future__ import annotations

import gc
import os
from typing import Any, Optional

from twisted.application.internet import StreamServerEndpointService
from twisted.application.service import MultiService
from twisted.logger import ILogObserver, Logger
from twisted.python import usage
from twisted.python.components import Componentized

from statushub import config as configuration
from statushub import listen


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
        for check in (protectedModeRefusal, shortTokenRefusal, anyHostRefusal):
            refusal = check(loaded)
            if refusal is not None:
                raise usage.UsageError(refusal)


def protectedModeRefusal(config: configuration.Config) -> Optional[str]:
    """
    Why the hub must not start, or L{None}: serving on an address other
    hosts can reach, with no operator token, would let anyone who can reach
    it deploy containers (Redis's protected mode is the model).
    """
    server = config["server"]
    if server["token"] or server["allow_anonymous_remote"]:
        return None
    if listen.isLoopbackOnly(server["listen"]):
        return None
    return (
        f"protected mode: [server] listen = '{server['listen']}' can be reached from "
        "other hosts, and no operator token is set, so anyone who can reach it could "
        "deploy containers on the Docker engine. Set [server] token (or the "
        "environment variable STATUSHUB_TOKEN), or listen on loopback only "
        "(interface=127.0.0.1), or, to serve without a token anyway, set "
        "[server] allow_anonymous_remote = true."
    )


#: the shortest token accepted on an address other hosts can reach
MIN_TOKEN_LENGTH = 16

_MAKE_TOKEN = "python3 -c 'import secrets; print(secrets.token_urlsafe(24))'"


def shortTokenRefusal(config: configuration.Config) -> Optional[str]:
    """
    Why the hub must not start, or L{None}: on an address other hosts can
    reach, a short token can be guessed (even at 20 guesses a minute).
    """
    server = config["server"]
    if listen.isLoopbackOnly(server["listen"]):
        return None
    for key, variable in (("token", "STATUSHUB_TOKEN"), ("viewer_token", "STATUSHUB_VIEWER_TOKEN")):
        token = server[key]
        if token and len(token) < MIN_TOKEN_LENGTH:
            return (
                f"[server] {key} (or {variable}) is {len(token)} characters long: "
                f"[server] listen = '{server['listen']}' can be reached from other "
                f"hosts, where a token needs at least {MIN_TOKEN_LENGTH} characters. "
                f"Make one with: {_MAKE_TOKEN}"
            )
    return None


def anyHostRefusal(config: configuration.Config) -> Optional[str]:
    """
    Why the hub must not start, or L{None}: answering to any host name
    without a token lets a page on any site reach the hub through DNS
    rebinding (its name made to resolve to the hub's address), loopback
    or not.
    """
    server = config["server"]
    if "*" not in server["allowed_hosts"] or server["token"]:
        return None
    return (
        "[server] allowed_hosts = [\"*\"] turns the Host check off, and no operator "
        "token is set, so a web page on any site could deploy containers through "
        "the browser of anyone who can reach the hub (DNS rebinding). List the "
        "names the hub is reached by instead (allowed_hosts = [\"hub.example.com\"]), "
        "or set [server] token (or the environment variable STATUSHUB_TOKEN)."
    )


class HubService(MultiService):
    """
    The root of the hub's service tree.

    @ivar logObserver: where twistd should send the log, if not where it
        would by itself (C{[logging] format = "json"}).  twistd starts
        logging after it has built the service and made it a child of its
        application, and then logs to the application's C{ILogObserver}
        component when there is one (C{twistd --logger} still wins); this
        sets that component.
    """

    logObserver: Optional[ILogObserver] = None

    def setServiceParent(self, parent: Any) -> None:
        super().setServiceParent(parent)
        if self.logObserver is not None and isinstance(parent, Componentized):
            parent.setComponent(ILogObserver, self.logObserver)


def makeService(options: Options, reactor: Optional[Any] = None) -> HubService:
    """
    The hub's service tree: the site on its endpoint, keep-alive, and what
    the orchestrator adds.
    """
    if reactor is None:
        from twisted.internet import reactor

    # imported when the service is built, not when twistd parses options:
    # --help and config errors stay fast and import no reactor
    from statushub.deploy.service import Orchestrator
    from statushub.history.service import historyFromConfig
    from statushub.hub import StatusHubFactory
    from statushub.hub.keepalive import KeepAlive
    from statushub.jsonlog import jsonLogObserver, twistdLogFile
    from statushub.metrics import Metrics
    from statushub.status import StatusBoard
    from statushub.wamp import fromConfig as wampSink
    from statushub.wamp.examples import mountExamples
    from statushub.web.site import makeSite

    config = options.config
    feed = config["feed"]

    service = HubService()
    if config["logging"]["format"] == "json":
        # twistd's own options, when twistd runs us: where it would log
        service.logObserver = jsonLogObserver(twistdLogFile(getattr(options, "parent", None)))

    # a registry of this hub's own, not prometheus_client's global one
    metrics = Metrics() if config["metrics"]["enabled"] else None
    # opened now: the numbering goes on from what the database holds
    history, numbering = historyFromConfig(config["history"], reactor)
    board = StatusBoard(reactor, numbering)
    if metrics is not None:
        board.addSink(metrics.status)
    if history is not None:
        board.addSink(history.store)
        history.setServiceParent(service)
    hub = StatusHubFactory(
        board,
        reactor,
        maxSendBuffer=feed["max_send_buffer"],
        maxMessageSize=feed["max_message_size"],
        metrics=None if metrics is None else metrics.feed,
        history=None if history is None else history.store,
    )
    board.addSink(hub)
    KeepAlive(hub, reactor, feed["ping_interval"], feed["ping_timeout"]).setServiceParent(
        service
    )

    # deployments on the engine: polls and events feed the board
    orchestrator = Orchestrator(
        board, config, reactor, None if metrics is None else metrics.engine
    )
    orchestrator.setServiceParent(service)

    healthChecks = list(orchestrator.healthChecks)
    if history is not None:
        healthChecks.append(history.store)
        orchestrator.api["deployments"].putHistory(history.store)
    # the status on a WAMP router too, when [wamp] or --wamp-url says where
    wamp = wampSink(config["wamp"], reactor, board)
    if wamp is not None:
        board.addSink(wamp)
        wamp.setServiceParent(service)
        healthChecks.append(wamp)

    if metrics is not None:
        # read at scrape time, from a thread: every deployment's current picture
        metrics.watch(hub.__len__, board.snapshot, healthChecks)
    site = makeSite(
        board,
        hub,
        config,
        api=orchestrator.api,
        healthChecks=healthChecks,
        reactor=reactor,
        metrics=None if metrics is None else metrics.resource(),
        webMetrics=None if metrics is None else metrics.web,
    )
    mountExamples(site, config["wamp"])
    # the backlog is raised here, so every way of naming the endpoint gets it
    description = config["server"]["listen"]
    endpoint = listen.serverEndpoint(reactor, description)
    server = AnnouncingEndpointService(endpoint, site, reactor, listen.isTLS(description))
    # a port that cannot be bound stops twistd at start, with the reason
    server._raiseSynchronously = True
    server.setServiceParent(service)
    # What start-up built (modules, the service tree) lives as long as the
    # process: move it out of the cyclic GC's sight, so that full
    # collections, which pause every broadcast, only walk what came later.
    reactor.callWhenRunning(gc.freeze)
    return service


class AnnouncingEndpointService(StreamServerEndpointService):
    """
    Logs the address actually bound, so that C{tcp:0} (any free port) is
    usable: the tests start the hub that way and read this line.

    The line waits for the reactor to run: the port is bound before twistd
    installs its signal handlers, and a process told "serving" must already
    stop cleanly on SIGINT or SIGTERM.
    """

    log = Logger(namespace="statushub")

    def __init__(self, endpoint: Any, factory: Any, reactor: Any, tls: bool = False) -> None:
        super().__init__(endpoint, factory)
        self._reactor = reactor
        self.scheme = "https" if tls else "http"

    def privilegedStartService(self) -> None:
        super().privilegedStartService()
        self._waitingForPort.addCallback(self._announce)

    def _announce(self, port: Any) -> Any:
        self._reactor.callWhenRunning(self._logAddress, port.getHost())
        return port

    def _logAddress(self, address: Any) -> None:
        self.log.info(
            "statushub serving on {scheme}://{host}:{port}/",
            scheme=self.scheme,
            host=getattr(address, "host", address),
            port=getattr(address, "port", ""),
        )
