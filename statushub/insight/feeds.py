"""
The WebSocket feeds of the insight room:

    /ws/logs?deployment=NAME&node=NODE&tail=N   a node's log, followed live
    /ws/stats?deployment=NAME                   resource use, once a second
                                                (no deployment: every one)

Both only send; a client that sends anything is closed (as a feed client
that sends garbage is).  Both leave out what a client cannot take rather
than queue it, and drop a client that falls too far behind
(L{statushub.insight.window}).  The web layer mounts them behind the same
Host, Origin, role and client-limit guards as C{/ws/status}.
"""

from __future__ import annotations

from typing import Any, Optional

from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from autobahn.websocket.types import ConnectionDeny, ConnectionRequest
from twisted.internet.defer import ensureDeferred
from twisted.logger import Logger

from statushub.errors import RequestError
from statushub.insight.frames import textFrame
from statushub.insight.logs import DEFAULT_TAIL, MAX_TAIL, LogHub
from statushub.insight.stats import StatsHub
from statushub.insight.window import FollowerWindow
from statushub.names import SAFE_NAME

#: the client left more unread than the hub allows (as on /ws/status)
TOO_SLOW = 4000
#: the client sent something (these feeds take nothing)
BAD_MESSAGE = 4001
#: what was asked cannot be read now (the engine refused, too many streams)
CANNOT_READ = 4002
#: a close reason is at most 123 bytes of UTF-8 (RFC 6455 5.5)
REASON_BYTES = 120


def closeReason(text: str) -> str:
    """
    C{text}, cut to what a close frame can carry.
    """
    data = text.encode("utf-8")[:REASON_BYTES]
    return data.decode("utf-8", "ignore")


def oneParameter(request: ConnectionRequest, name: str, required: bool = True) -> Optional[str]:
    """
    The one value of C{?name=}; L{None} when absent and not required.

    @raise ConnectionDeny: absent but required, or given more than once.
    """
    values = request.params.get(name) or []
    if not values:
        if required:
            raise ConnectionDeny(400, f"{name}: required")
        return None
    if len(values) > 1:
        raise ConnectionDeny(400, f"{name}: give one, not several")
    return values[0]


def nameParameter(request: ConnectionRequest, name: str, required: bool = True) -> Optional[str]:
    value = oneParameter(request, name, required)
    if value is not None and not SAFE_NAME.fullmatch(value):
        # cut: it goes back in the status line
        raise ConnectionDeny(400, f"{name}: {value[:40]!r} is not a {name} name")
    return value


def tailParameter(request: ConnectionRequest) -> int:
    """
    C{?tail=N}: a whole number up to L{MAX_TAIL}; L{DEFAULT_TAIL} if absent.
    """
    value = oneParameter(request, "tail", required=False)
    if value is None:
        return DEFAULT_TAIL
    return checkTail(value, lambda text: ConnectionDeny(400, text))


def checkTail(value: str, error: Any) -> int:
    """
    C{value} as a tail, or raise C{error(text)} naming the problem.
    """
    if not (value.isascii() and value.isdigit()) or len(value) > 6:
        raise error(f"tail: {value!r} is not a whole number from 0 to {MAX_TAIL}")
    tail = int(value)
    if tail > MAX_TAIL:
        raise error(f"tail: {tail} is more than {MAX_TAIL} lines")
    return tail


class InsightProtocol(WebSocketServerProtocol):
    """
    What both feeds' connections share: the flow-control window, refusing
    messages, registering with the factory.
    """

    window: Optional[FollowerWindow] = None

    def connectionMade(self) -> None:
        super().connectionMade()
        # Behind twisted.web, the HTTP channel is still the transport's
        # producer; our window takes its place and hears when the send
        # buffer fills (as StatusProtocol does).
        if getattr(self.transport, "producer", None) is not None:
            self.transport.unregisterProducer()
        self.window = FollowerWindow(
            self.transport.write, self.gapFrame, self.factory.maxSendBuffer, self.dropTooSlow
        )
        self.transport.registerProducer(self.window, True)

    def gapFrame(self, lines: int) -> Optional[bytes]:
        return None

    def send(self, frame: bytes, lines: int) -> None:
        if self.state == self.STATE_OPEN and self.window is not None:
            self.window.offer(frame, lines)

    def dropTooSlow(self) -> None:
        self.factory.log.info(
            "dropping slow {feed} client {peer}: more than {limit} bytes left unread",
            feed=self.factory.feed, peer=self.peer, limit=self.factory.maxSendBuffer,
        )
        self.sendClose(
            TOO_SLOW, f"client too slow: more than {self.factory.maxSendBuffer} bytes left unread"
        )

    def onOpen(self) -> None:
        self.factory.clients[self] = None

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        self.sendClose(BAD_MESSAGE, f"{self.factory.feed} only sends: it takes no messages")

    def onClose(self, wasClean: bool, code: Optional[int], reason: Optional[str]) -> None:
        self.leave()

    def connectionLost(self, reason: Any) -> None:
        self.leave()
        super().connectionLost(reason)

    def leave(self) -> None:
        self.factory.clients.pop(self, None)
        if self.window is not None:
            self.window.gone = True


class LogFeedProtocol(InsightProtocol):
    """
    One follower of one node's log (an L{statushub.insight.logs.ILogFollower}).
    """

    deployment = ""
    node = ""
    tail = DEFAULT_TAIL

    def onConnect(self, request: ConnectionRequest) -> None:
        self.deployment = nameParameter(request, "deployment")
        self.node = nameParameter(request, "node")
        self.tail = tailParameter(request)
        try:
            self.factory.logs.locate(self.deployment, self.node)
        except RequestError as e:
            raise ConnectionDeny(e.code, str(e))
        return None

    def onOpen(self) -> None:
        super().onOpen()
        ensureDeferred(
            self.factory.logs.follow(self.deployment, self.node, self, self.tail)
        ).addErrback(self._notFollowed)

    def _notFollowed(self, failure: Any) -> None:
        if failure.check(RequestError):
            self.fail(str(failure.value))  # gone between the handshake and now
            return
        self.factory.log.failure("following a log failed", failure)
        self.fail("the log cannot be followed: unexpected error")

    def gapFrame(self, lines: int) -> bytes:
        return textFrame({"type": "log_gap", "deployment": self.deployment, "node": self.node,
                          "dropped": lines})

    def end(self) -> None:
        if self.state != self.STATE_OPEN:
            return
        # written even to a paused client: the last word, and small
        self.transport.write(
            textFrame({"type": "log_end", "deployment": self.deployment, "node": self.node})
        )
        self.sendClose(1000, "the node's log has ended")

    def fail(self, reason: str) -> None:
        if self.state == self.STATE_OPEN:
            self.sendClose(CANNOT_READ, closeReason(reason))

    def leave(self) -> None:
        super().leave()
        self.factory.logs.unfollow(self)


class StatsFeedProtocol(InsightProtocol):
    """
    One watcher of resource use (an L{statushub.insight.stats.IStatsWatcher}).
    """

    deployment: Optional[str] = None

    def onConnect(self, request: ConnectionRequest) -> None:
        self.deployment = nameParameter(request, "deployment", required=False)
        if self.deployment is not None:
            try:
                self.factory.stats.watchable(self.deployment)
            except RequestError as e:
                raise ConnectionDeny(e.code, str(e))
        return None

    def onOpen(self) -> None:
        super().onOpen()
        try:
            self.factory.stats.watch(self, self.deployment)
        except RequestError as e:
            self.sendClose(CANNOT_READ, closeReason(str(e)))

    def leave(self) -> None:
        super().leave()
        self.factory.stats.unwatch(self)


class InsightFeedFactory(WebSocketServerFactory):
    """
    The connections of one insight feed.

    @param maxSendBuffer: bytes a client may leave unread before it is
        dropped (C{[feed] max_send_buffer}, as on C{/ws/status}).
    @param pingInterval, pingTimeout: keep-alive (C{[feed]}'s); Autobahn
        pings each connection on its own timer: these feeds have few
        clients next to C{/ws/status}.
    @ivar clients: the open connections; C{len()} counts them (the client
        limit reads it).
    """

    log = Logger()
    feed = ""

    def __init__(
        self,
        reactor: Any,
        maxSendBuffer: int = 1024 * 1024,
        pingInterval: float = 20.0,
        pingTimeout: float = 10.0,
    ) -> None:
        super().__init__(reactor=reactor)
        self.maxSendBuffer = maxSendBuffer
        self.clients: dict[InsightProtocol, None] = {}
        self.setProtocolOptions(
            maxMessagePayloadSize=1024,
            maxFramePayloadSize=1024,
            failByDrop=False,
            autoPingInterval=pingInterval,
            autoPingTimeout=pingTimeout,
            perMessageCompressionAccept=lambda offers: None,
            # a GET without Upgrade is a 426, as on /ws/status: Autobahn's
            # status page had a ?redirect=URL to anywhere
            webStatus=False,
        )

    def __len__(self) -> int:
        return len(self.clients)


class LogFeedFactory(InsightFeedFactory):
    protocol = LogFeedProtocol
    feed = "/ws/logs"

    def __init__(self, logs: LogHub, reactor: Any, **options: Any) -> None:
        super().__init__(reactor, **options)
        self.logs = logs


class StatsFeedFactory(InsightFeedFactory):
    protocol = StatsFeedProtocol
    feed = "/ws/stats"

    def __init__(self, stats: StatsHub, reactor: Any, **options: Any) -> None:
        super().__init__(reactor, **options)
        self.stats = stats
