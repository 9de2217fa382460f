"""
A real WebSocket client of the feed, for tests: Autobahn's Twisted client on
the test's reactor, collecting every message.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Optional
from urllib.parse import urlsplit

from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint, wrapClientTLS
from twisted.internet.ssl import Certificate, optionsForClientTLS

from tests.waiting import waitUntil


class FeedClientProtocol(WebSocketClientProtocol):
    def onOpen(self) -> None:
        self.factory.client._opened(self)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        self.factory.client.messages.append(json.loads(payload))

    def onClose(self, wasClean: bool, code: Optional[int], reason: Optional[str]) -> None:
        self.factory.client._closed(wasClean, code, reason)


class FeedClient:
    """
    @ivar messages: every message received, parsed.
    @ivar closeCode, closeReason: what the server said when it closed.
    """

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.protocol: Optional[FeedClientProtocol] = None
        self.closed = False
        self.closeCode: Optional[int] = None
        self.closeReason: Optional[str] = None
        self._whenOpen: Deferred = Deferred()
        self._whenClosed: Deferred = Deferred()

    def _opened(self, protocol: FeedClientProtocol) -> None:
        self.protocol = protocol
        self._whenOpen.callback(self)

    def _closed(self, wasClean: bool, code: Optional[int], reason: Optional[str]) -> None:
        self.closed = True
        self.closeCode = code
        self.closeReason = reason
        if not self._whenOpen.called:
            self._whenOpen.errback(ConnectionError(f"handshake failed: {code} {reason}"))
        self._whenClosed.callback(None)

    async def waitFor(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 10.0
    ) -> dict[str, Any]:
        """
        The first message (received so far or later) that satisfies
        C{predicate}.
        """

        def found() -> Optional[dict[str, Any]]:
            for message in self.messages:
                if predicate(message):
                    return message
            return None

        return await waitUntil(found, timeout, what="a matching feed message")

    async def waitForClose(self, timeout: float = 10.0) -> None:
        await waitUntil(lambda: self.closed, timeout, what="the feed connection to close")

    def send(self, payload: bytes, isBinary: bool = False) -> None:
        assert self.protocol is not None
        self.protocol.sendMessage(payload, isBinary)

    def close(self) -> Deferred:
        if self.protocol is not None and not self.closed:
            self.protocol.sendClose(1000)
        return self._whenClosed


async def connectFeed(
    wsUrl: str,
    token: Optional[str] = None,
    headers: Optional[dict[str, str]] = None,
    origin: Optional[str] = None,
    address: Optional[tuple[str, int]] = None,
    trustRoot: Optional[Certificate] = None,
) -> FeedClient:
    """
    Connect to C{wsUrl} and return once the handshake is done.

    @param address: where to connect, if not to C{wsUrl}'s host and port
        (which still go in the C{Host} header): a name that does not
        resolve here, as a page using DNS rebinding would send it.
    @param trustRoot: for C{wss://}, the certificate to trust (the platform's
        trust store when L{None}); the host name is verified against it.
    """
    client = FeedClient()
    allHeaders = dict(headers or {})
    if token is not None:
        allHeaders["Authorization"] = f"Bearer {token}"
    factory = WebSocketClientFactory(wsUrl, headers=allHeaders, origin=origin)
    factory.protocol = FeedClientProtocol
    factory.client = client
    parts = urlsplit(wsUrl)
    host, port = address or (parts.hostname, parts.port)
    endpoint = TCP4ClientEndpoint(reactor, host, port, timeout=10)
    if parts.scheme == "wss":
        endpoint = wrapClientTLS(
            optionsForClientTLS(parts.hostname, trustRoot=trustRoot), endpoint
        )
    await endpoint.connect(factory)
    await client._whenOpen
    return client
