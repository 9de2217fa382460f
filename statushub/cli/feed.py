"""
The feed client of C{statushub watch}: follows C{/ws/status} (every
deployment, or one), tells a display about every message, every gap in a
deployment's C{seq} and every change of the connection, and reconnects by
itself (Twisted's C{backoffPolicy}), resuming one deployment's feed after
its last message.  Built on Autobahn's Twisted client.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Optional
from urllib.parse import urlencode, urlsplit, urlunsplit

from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol
from twisted.application.internet import backoffPolicy
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import HostnameEndpoint, wrapClientTLS
from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.internet.ssl import optionsForClientTLS
from twisted.logger import Logger

#: seconds to wait before reconnect attempt C{n} (from 0): doubling from
#: half a second up to ten, plus up to a second at random, so that many
#: clients of a restarted hub do not all come back at once
RECONNECT_POLICY = backoffPolicy(initialDelay=0.5, maxDelay=10.0, factor=2.0)
# how long stop() waits for the hub to answer the close (seconds): the rest of
# the reactor's shutdown must fit in the second Ctrl-C is given
CLOSE_WAIT = 0.5


class Refused(Exception):
    """
    The hub refused the feed (a wrong or missing token, a bad path):
    retrying would not help.
    """


def feedURL(url: str, deployment: Optional[str] = None) -> str:
    """
    The feed's address for the hub at C{url}: C{http://host:port} becomes
    C{ws://host:port/ws/status} (C{https} gives C{wss}); a C{ws://} or
    C{wss://} address is taken as it is.  With a C{deployment}, the feed of
    that deployment only (C{?deployment=NAME}).

    @raise ValueError: C{url} is not an address of a hub.
    """
    parts = urlsplit(url)
    scheme = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}.get(parts.scheme)
    if scheme is None or not parts.hostname:
        raise ValueError(f"--url must be http://HOST:PORT or https://HOST:PORT, not {url!r}")
    path = parts.path
    if parts.scheme in ("http", "https"):
        path = path.rstrip("/") + "/ws/status"
    query = parts.query
    if deployment is not None:
        query = "&".join(q for q in (query, urlencode({"deployment": deployment})) if q)
    return urlunsplit((scheme, parts.netloc, path or "/", query, ""))


class SeqGaps:
    """
    Tells missed messages apart, per deployment: C{seq} grows by one with
    each message about a deployment, and is comparable only within one
    C{epoch}.  Counted afresh on each connection, whose first message about
    a deployment is its current picture whatever the seq.
    """

    def __init__(self) -> None:
        self._last: dict[Optional[str], tuple[Any, int]] = {}

    def reset(self) -> None:
        self._last.clear()

    def check(self, message: dict[str, Any]) -> int:
        """
        Note C{message}; return how many messages about its deployment were
        missed just before it (0 for none).
        """
        name, epoch, seq = message.get("deployment"), message.get("epoch"), message.get("seq")
        if not isinstance(seq, int):
            return 0
        before = self._last.get(name)
        if before is not None and before[0] == epoch and seq <= before[1]:
            return 0  # a repeat or older: the newer one stays the reference
        self._last[name] = (epoch, seq)
        if before is None or before[0] != epoch:
            return 0
        return seq - before[1] - 1


class FeedProtocol(WebSocketClientProtocol):
    def onOpen(self) -> None:
        self.factory.watcher._opened(self)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        if not isBinary:
            self.factory.watcher._received(payload)

    def onClose(self, wasClean: bool, code: Optional[int], reason: Optional[str]) -> None:
        self.factory.watcher._closed(self, code, reason)


class Watcher:
    """
    Follows the feed at C{url} (every deployment, or only C{deployment}) and
    tells C{display} about every message, every gap in a deployment's
    C{seq}, and every change of the connection, until L{stop}ped or refused.
    """

    log = Logger()

    def __init__(
        self,
        reactor: Any,
        url: str,
        token: Optional[str],
        display: Any,
        retryPolicy: Callable[[int], float] = RECONNECT_POLICY,
        deployment: Optional[str] = None,
    ) -> None:
        self._reactor = reactor
        self._url = feedURL(url, deployment)
        self._deployment = deployment
        # (epoch, seq) of the last message about the followed deployment: a
        # reconnection resumes after it (?since=&epoch=)
        self._resumeAt: Optional[tuple[str, int]] = None
        self._headers: Optional[dict[str, str]] = None
        self._gaps = SeqGaps()
        self._display = display
        self._retryPolicy = retryPolicy
        # connections that failed or ended since the last one that worked
        self._failures = 0
        self._stopping = False
        self._protocol: Optional[FeedProtocol] = None
        self._closedNow: Optional[Deferred] = None
        self._waiting: Optional[Deferred] = None
        self._live = False
        headers = {"Authorization": f"Bearer {token}"} if token else None
        self._headers = headers
        self._factory = WebSocketClientFactory(self._url, headers=headers, reactor=reactor)
        self._factory.protocol = FeedProtocol
        self._factory.watcher = self
        # A hub that vanishes without closing (a cut network, a frozen
        # machine) is noticed by our own pings.
        self._factory.setProtocolOptions(
            openHandshakeTimeout=10, autoPingInterval=15, autoPingTimeout=10
        )
        self._factory.noisy = False

    def _endpoint(self) -> IStreamClientEndpoint:
        parts = urlsplit(self._url)
        secure = parts.scheme == "wss"
        port = parts.port or (443 if secure else 80)
        endpoint = HostnameEndpoint(self._reactor, parts.hostname, port, timeout=10)
        if secure:
            endpoint = wrapClientTLS(optionsForClientTLS(parts.hostname), endpoint)
        return endpoint

    async def run(self) -> None:
        """
        Watch until L{stop}.

        @raise Refused: the hub refused the feed.
        """
        self._display.connection("connecting")
        while not self._stopping:
            self._closedNow = Deferred()
            if self._resumeAt is not None:
                self._factory.setSessionParameters(self.nextURL(), headers=self._headers)
            try:
                await self._endpoint().connect(self._factory)
            except Exception as error:
                reason = str(error) or error.__class__.__name__
            else:
                reason = await self._closedNow
            if self._stopping:
                return
            # Autobahn reports a refused upgrade as "... upgrade failed [401]: ..."
            if "upgrade failed [4" in reason:
                self._display.connection("disconnected", reason)
                raise Refused(reason)
            delay = self._retryPolicy(self._failures)
            self._failures += 1
            self._display.connection("reconnecting", f"{reason}; next try in {delay:.1f}s")
            self._waiting = Deferred()
            call = self._reactor.callLater(delay, self._waiting.callback, None)
            self._waiting.addErrback(lambda failure: call.cancel())
            try:
                await self._waiting
            except Exception:
                return  # stopped while waiting

    def nextURL(self) -> str:
        """
        The feed's address for the next connection: following one
        deployment, after a message about it, it resumes after that message
        (C{?since=SEQ&epoch=E}), so what was missed meanwhile comes first.
        """
        if self._resumeAt is None:
            return self._url
        epoch, seq = self._resumeAt
        return self._url + "&" + urlencode({"since": seq, "epoch": epoch})

    def _opened(self, protocol: FeedProtocol) -> None:
        self._protocol = protocol

    def _received(self, payload: bytes) -> None:
        try:
            message = json.loads(payload.decode("utf-8"))
        except ValueError:
            self.log.warn("not JSON, ignored: {payload!r}", payload=payload[:200])
            return
        if not isinstance(message, dict) or message.get("type") != "status_update":
            return
        if not self._live:
            self._live = True
            self._gaps.reset()
            self._display.connection("live")
        # The connection works: the next drop starts the backoff afresh.
        self._failures = 0
        seq, epoch = message.get("seq"), message.get("epoch")
        if (self._deployment is not None and message.get("deployment") == self._deployment
                and isinstance(seq, int) and isinstance(epoch, str) and epoch):
            self._resumeAt = (epoch, seq)
        missed = self._gaps.check(message)
        if missed:
            self._display.missed(message, missed)
        self._display.message(message)

    def _closed(self, protocol: FeedProtocol, code: Optional[int], reason: Optional[str]) -> None:
        self._protocol = None
        self._live = False
        closed, self._closedNow = self._closedNow, None
        if closed is not None:
            text = reason or f"closed with code {code}"
            closed.callback(text)

    def stop(self) -> Deferred:
        """
        Close the feed and stop retrying.  The Deferred fires once the
        connection is closed, or after L{CLOSE_WAIT} seconds when the hub
        does not answer: Ctrl-C and SIGTERM end watch within a second.
        """
        self._stopping = True
        if self._waiting is not None and not self._waiting.called:
            self._waiting.cancel()
        done: Deferred[None] = Deferred()

        def fire(ignored: object = None) -> object:
            if not done.called:
                done.callback(None)
            if timeout.active():
                timeout.cancel()
            return ignored

        if self._protocol is not None and self._closedNow is not None:
            timeout = self._reactor.callLater(CLOSE_WAIT, fire)
            self._closedNow.addBoth(fire)
            self._protocol.sendClose(1000, "statushub watch is done")
        else:
            done.callback(None)
        return done
