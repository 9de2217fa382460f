"""
The WAMP publisher: a second L{IStatusSink} beside the WebSocket hub.

A L{WampStatusSink} keeps one WAMP session (Autobahn's Twisted client) joined
on a router's realm.  Every status message goes out as the single positional
argument of an event on C{<prefix>.status} (every deployment) and on
C{<prefix>.deployment.<NAME>} (its own); the router fans it out to any number
of subscribers.  C{<prefix>.get_status} answers a deployment's current
picture (an optional name; without one it is ambiguous when there are
several, C{<prefix>.error.several_deployments}), C{<prefix>.list_deployments}
every current one.

The router may come and go: a L{ClientService} reconnects with backoff, and
every (re)join publishes every current picture at once, so a subscriber
never stays behind a router restart.  Nothing here ever waits for the router:
L{WampStatusSink.broadcast} only writes to a transport buffer, with at most
C{maxInFlight} unacknowledged messages; past that, only the newest message of
each deployment is kept (every message is a full picture, and C{seq} tells a
subscriber that it skipped some).
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Optional

from autobahn.twisted.wamp import ApplicationSession
from autobahn.twisted.websocket import WampWebSocketClientFactory
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import (
    CloseDetails,
    ComponentConfig,
    PublishOptions,
    RegisterOptions,
    SessionDetails,
)
from autobahn.websocket.util import parse_url
from twisted.application.internet import ClientService, backoffPolicy
from twisted.application.service import MultiService
from twisted.internet.defer import Deferred, ensureDeferred, gatherResults
from twisted.internet.endpoints import HostnameEndpoint, wrapClientTLS
from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.logger import Logger
from twisted.python import threadable
from twisted.python.failure import Failure
from zope.interface import implementer

from statushub.names import SAFE_NAME, checkWampPrefix, checkWampURL
from statushub.interfaces import IHealthCheck, IStatusSink, IStatusSource

DEFAULT_PREFIX = "io.statushub"

#: health words, as /healthz shows them under "wamp"
STOPPED = "stopped"
CONNECTING = "connecting"
JOINED = "joined"
DISCONNECTED = "disconnected"


class _HubSession(ApplicationSession):
    """
    One WAMP session to the router; it hands every event to its sink.
    """

    def __init__(self, config: ComponentConfig, sink: "WampStatusSink") -> None:
        super().__init__(config)
        self._sink = sink

    def onConnect(self) -> None:
        sink = self._sink
        if sink.ticket:
            self.join(self.config.realm, authmethods=["ticket"], authid=sink.authid)
        else:
            self.join(self.config.realm, authmethods=["anonymous"])

    def onChallenge(self, challenge: Any) -> str:
        if challenge.method == "ticket" and self._sink.ticket:
            return self._sink.ticket
        raise Exception(f"the router asked for {challenge.method!r} authentication")

    def onJoin(self, details: SessionDetails) -> Deferred:
        return ensureDeferred(self._sink._joined(self, details))

    def onLeave(self, details: CloseDetails) -> None:
        self._sink._left(self, details)
        # the transport goes too; ClientService then reconnects
        self.disconnect()

    def onDisconnect(self) -> None:
        self._sink._disconnected(self)


@implementer(IStatusSink, IHealthCheck)
class WampStatusSink(MultiService):
    """
    Publish the status on a WAMP realm; a child service of the hub, whose
    own child is the L{ClientService} that keeps the connection to the
    router (reconnecting with backoff).

    @ivar name: the key of this sink's health in C{/healthz}.
    @ivar published: publications the router acknowledged.
    @ivar coalesced: messages replaced by a newer one while the router was
        slow to acknowledge.
    """

    name = "wamp"
    log = Logger()

    def __init__(
        self,
        reactor: Any,
        source: IStatusSource,
        url: str,
        realm: str,
        prefix: str = DEFAULT_PREFIX,
        authid: str = "",
        ticket: str = "",
        retryPolicy: Optional[Callable[[int], float]] = None,
        maxInFlight: int = 32,
        endpoint: Optional[IStreamClientEndpoint] = None,
    ) -> None:
        """
        @param reactor: the reactor (or, in tests, a clock with the reactor
            parts the connection needs): timing of retries, thread hand-off.
        @param source: where the current picture comes from.
        @param url: the router's WebSocket URL, C{ws://127.0.0.1:8081/ws}.
        @param realm: the realm to join.
        @param prefix: the start of both URIs.
        @param authid: with C{ticket}, join with WAMP-ticket as this authid;
            without, join anonymously.
        @param retryPolicy: seconds to wait before reconnect attempt C{n}.
        @param maxInFlight: unacknowledged publications allowed at once.
        @param endpoint: connect here instead of the URL's host and port.
        """
        problem = checkWampURL(url)
        if problem:
            raise ValueError(f"WAMP url {url!r}: {problem}")
        problem = checkWampPrefix(prefix)
        if problem:
            raise ValueError(f"WAMP prefix {prefix!r}: {problem}")
        if not realm:
            raise ValueError("WAMP realm must not be empty")
        self._reactor = reactor
        self._source = source
        self.url = url
        self.realm = realm
        self.prefix = prefix
        self.topic = prefix + ".status"
        self.procedure = prefix + ".get_status"
        self.listProcedure = prefix + ".list_deployments"
        self.severalError = prefix + ".error.several_deployments"
        self.authid = authid or "statushub"
        self.ticket = ticket
        self._policy = retryPolicy or backoffPolicy(initialDelay=0.5, maxDelay=10.0)
        self._maxInFlight = maxInFlight
        self._endpoint = endpoint
        self._creatorThread = threading.get_ident()
        super().__init__()

        self._state = STOPPED
        self._session: Optional[_HubSession] = None
        self._everJoined: set[int] = set()
        self._connectsWithoutJoin = 0
        self._inFlight = 0
        # per deployment, the newest message waiting for a free slot
        self._pending: dict[Optional[str], dict] = {}
        self.published = 0
        self.coalesced = 0
        self.joins = 0
        self._clientService(self._endpoint or self._endpointFor(self.url)).setServiceParent(self)

    def __repr__(self) -> str:
        return f"<WampStatusSink {self.url} realm={self.realm} prefix={self.prefix}>"

    def deploymentTopic(self, deployment: str) -> str:
        """
        The topic of one deployment's messages.
        """
        return f"{self.prefix}.deployment.{deployment}"

    # IHealthCheck

    def health(self) -> str:
        return self._state

    # IStatusSink

    def broadcast(self, message: dict) -> None:
        if self._inReactorThread():
            self._publish(message)
        else:
            self._reactor.callFromThread(self._publish, message)

    def _inReactorThread(self) -> bool:
        if threadable.ioThread is not None:
            return threadable.isInIOThread()
        # the reactor has not run yet: it will run where we were made
        return threading.get_ident() == self._creatorThread

    # Service

    def startService(self) -> None:
        self._state = CONNECTING
        super().startService()  # the ClientService connects

    def stopService(self) -> "Deferred[Any]":
        self._state = STOPPED
        self._session = None
        return super().stopService()

    def _clientService(self, endpoint: IStreamClientEndpoint) -> ClientService:
        factory = WampWebSocketClientFactory(
            self._makeSession, url=self.url, reactor=self._reactor
        )
        # a silent router (a dead host, a pulled cable) is noticed by pings
        factory.setProtocolOptions(
            autoPingInterval=10,
            autoPingTimeout=5,
            openHandshakeTimeout=5,
            closeHandshakeTimeout=1,
        )
        factory.noisy = False
        return ClientService(endpoint, factory, retryPolicy=self._retryDelay, clock=self._reactor)

    def _endpointFor(self, url: str) -> IStreamClientEndpoint:
        isSecure, host, port = parse_url(url)[:3]
        endpoint = HostnameEndpoint(self._reactor, host, port)
        if isSecure:
            from twisted.internet.ssl import optionsForClientTLS

            endpoint = wrapClientTLS(optionsForClientTLS(host), endpoint)
        return endpoint

    def _retryDelay(self, failedAttempts: int) -> float:
        # A router that accepts the connection but refuses the join (wrong
        # realm, bad ticket) resets ClientService's count every time: count
        # those connections too, so the delay still grows.
        return self._policy(failedAttempts + self._connectsWithoutJoin)

    def _makeSession(self) -> _HubSession:
        return _HubSession(ComponentConfig(realm=self.realm), self)

    # session events

    async def _joined(self, session: _HubSession, details: SessionDetails) -> None:
        if not self.running:
            session.leave()
            return
        self._session = session
        self._everJoined.add(id(session))
        self._connectsWithoutJoin = 0
        self._inFlight = 0
        self._pending = {}
        self._state = JOINED
        self.joins += 1
        self.log.info(
            "joined WAMP realm {realm} at {url} as {authrole}; publishing on {topic}",
            realm=details.realm,
            url=self.url,
            authrole=details.authrole,
            topic=self.topic,
        )
        # whoever subscribed while we were away gets the pictures at once
        for message in self._source.snapshot():
            self._publish(message)
        for endpoint, procedure in (
            (self._getStatus, self.procedure),
            (self._listDeployments, self.listProcedure),
        ):
            try:
                # "last": a rejoin wins over our own earlier registration
                # that the router has not yet noticed is gone
                await session.register(
                    endpoint, procedure, options=RegisterOptions(invoke="last")
                )
            except Exception as e:
                self.log.error(
                    "cannot register {procedure} on the router: {error}",
                    procedure=procedure,
                    error=e,
                )

    def _left(self, session: _HubSession, details: CloseDetails) -> None:
        if id(session) not in self._everJoined:
            self.log.warn(
                "the router at {url} refused to let us join realm {realm}: {reason} {message}",
                url=self.url,
                realm=self.realm,
                reason=details.reason,
                message=details.message or "",
            )

    def _disconnected(self, session: _HubSession) -> None:
        if id(session) not in self._everJoined:
            self._connectsWithoutJoin += 1
        self._everJoined.discard(id(session))
        if session is self._session or self._session is None:
            self._session = None
            self._inFlight = 0
            self._pending = {}
            if self.running:
                if self._state == JOINED:
                    self.log.warn("lost the WAMP router at {url}; reconnecting", url=self.url)
                self._state = DISCONNECTED

    def _getStatus(self, deployment: Optional[str] = None) -> dict:
        """
        C{get_status([name])}: the picture of deployment C{name}, or of the
        only one (the idle picture when there is none).
        """
        if deployment is not None:
            if not isinstance(deployment, str) or not SAFE_NAME.match(deployment):
                raise ApplicationError(
                    ApplicationError.INVALID_ARGUMENT,
                    f"deployment: {deployment!r} is not a deployment name",
                )
            return self._source.current(deployment)
        names = self._source.names()
        if len(names) > 1:
            raise ApplicationError(
                self.severalError,
                f"several deployments ({', '.join(names)}): name one",
                deployments=names,
            )
        return self._source.current(names[0] if names else None)

    def _listDeployments(self) -> list[dict]:
        return [self._source.current(name) for name in self._source.names()]

    # publishing

    def _publish(self, message: dict) -> None:
        session = self._session
        if session is None:
            # nobody to tell; the next join publishes the current picture
            return
        name = message.get("deployment")
        if self._inFlight >= self._maxInFlight:
            if name in self._pending:
                self.coalesced += 1
            self._pending[name] = message
            return
        topics = [self.topic]
        if name is not None:
            topics.append(self.deploymentTopic(name))
        self._inFlight += 1
        options = PublishOptions(acknowledge=True, retain=True)
        try:
            d = gatherResults(
                [session.publish(topic, message, options=options) for topic in topics],
                consumeErrors=True,
            )
        except Exception as e:
            self._inFlight -= 1
            self.log.warn("cannot publish on {topic}: {error}", topic=topics[-1], error=e)
            return
        d.addCallbacks(
            self._acknowledged, self._refused, callbackArgs=(session,), errbackArgs=(session,)
        )

    def _acknowledged(self, result: Any, session: _HubSession) -> None:
        self.published += 1
        self._settle(session)

    def _refused(self, failure: Failure, session: _HubSession) -> None:
        if session is self._session:
            error = getattr(failure.value, "subFailure", failure).value
            self.log.error(
                "the router refused a publication on {topic}: {error}",
                topic=self.topic,
                error=error,
            )
        self._settle(session)

    def _settle(self, session: _HubSession) -> None:
        if session is not self._session:
            return
        self._inFlight -= 1
        if self._pending:
            name = next(iter(self._pending))
            self._publish(self._pending.pop(name))
