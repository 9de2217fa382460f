"""
The limits of a request, kept where twisted.web reads it: at the
connection, before any resource is asked, and before the body is read.

    max_body         a declared C{Content-Length} above it gets 413 as soon
                     as the headers are in, and the body is never read; a
                     chunked body is read up to it, then 413.
    request_timeout  a deadline for the whole request, headers and body,
                     from when the connection starts waiting for it (when
                     it opened, or when its last answer was sent).
                     twisted.web's own time-out restarts with every byte,
                     so a request sent a byte at a time never ends.
    max_pending      connections waiting for their request at once; beyond
                     it the oldest is closed, so that the ones that send a
                     request promptly (C{/healthz}, the feed) are served.

A connection that is answering (a request being rendered) or that became a
WebSocket is not waiting: no deadline and no place among the pending ones
(so nothing of this touches the feed once a client is connected).

Answers before the body: a request that announces a body is walked through
the site's resource tree as soon as its headers are in.  If a guard refuses
it there (Host, cross-site, content type, token: the same guards, the same
walk as when it is served), that answer is sent at once and the body is
not read.  The connection is closed after the answer, having discarded
what the client still sends for a moment (at most C{max_body} bytes, at
most L{LINGER} seconds): a connection closed with unread data is reset,
and a client still sending would lose the answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping, Optional

from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.protocols.basic import LineReceiver
from twisted.python.failure import Failure
from twisted.web.http import HTTPChannel, datetimeToString, parse_qs, unquote
from twisted.web.resource import IResource
from twisted.web.server import Request, Site, version

from statushub.web.audit import Refusal
from statushub.web.jsonresource import AnyMethodAnswered

#: seconds a connection answered before its body is read goes on being read
#: (and what it sends discarded) before it is closed
LINGER = 2.0


@dataclass(frozen=True)
class RequestLimits:
    """
    C{[server] max_body}, C{request_timeout} and C{max_pending}.
    """

    maxBody: int = 256 * 1024
    requestTimeout: float = 30.0
    maxPending: int = 1000

    @classmethod
    def fromConfig(cls, server: Mapping[str, Any]) -> "RequestLimits":
        return cls(server["max_body"], server["request_timeout"], server["max_pending"])


class PendingConnections:
    """
    The connections waiting for their request, oldest first.  Past
    C{maximum} the oldest are closed, each one only once the hub has had a
    chance to read it: it has waited L{GRACE} seconds, and the reactor has
    polled its socket since.  A crowd of clients that come at once (a
    reconnect storm) has its requests in the sockets already, waiting for
    a busy hub to get to them: they are read, not reset.
    """

    #: seconds a connection waits at least before it can be closed for others
    GRACE = 1.0

    def __init__(self, maximum: int, clock: IReactorTime) -> None:
        self.maximum = maximum
        self._clock = clock
        # each one's start of waiting (seconds, turn); a dict keeps the
        # order they came in
        self._waiting: dict["LimitedChannel", tuple[float, int]] = {}
        # turns of the reactor counted while there are too many
        self._turn = 0
        self._trimming: Optional[IDelayedCall] = None
        #: connections closed because too many were waiting
        self.closed = 0

    def __len__(self) -> int:
        return len(self._waiting)

    def __iter__(self) -> Iterator["LimitedChannel"]:
        return iter(list(self._waiting))

    def waiting(self, channel: "LimitedChannel") -> None:
        """
        C{channel} waits for a request from now on (it is the youngest).
        """
        self._waiting.pop(channel, None)
        self._waiting[channel] = (self._clock.seconds(), self._turn)
        if len(self._waiting) > self.maximum:
            self._trim()

    def done(self, channel: "LimitedChannel") -> None:
        """
        C{channel} waits no more: its request is in, or it is gone.
        """
        self._waiting.pop(channel, None)

    def _trim(self) -> None:
        """
        Close the oldest while there are too many, as far as they may be
        closed; come back when the next one may.
        """
        now = self._clock.seconds()
        while len(self._waiting) > self.maximum:
            oldest, (since, turn) = next(iter(self._waiting.items()))
            if now - since < self.GRACE:
                self._later(since + self.GRACE - now)
                return
            if self._turn - turn < 2:
                # two turns later, its socket has been polled (and read, had
                # its request been there) since it began to wait
                self._later(0)
                return
            del self._waiting[oldest]
            self.closed += 1
            oldest.tooManyPending()

    def _later(self, delay: float) -> None:
        if self._trimming is None or not self._trimming.active():
            self._trimming = self._clock.callLater(delay, self._nextTurn)

    def _nextTurn(self) -> None:
        # each call runs at a later turn of the reactor than the one before
        self._turn += 1
        self._trim()


class LimitedRequest(Request):
    """
    A request that can be answered before its body is read, and that stops
    storing a chunked body at the site's C{max_body}.

    @ivar answerBeforeBody: what answers the request instead of the resource
        its path names: a guard's refusal, or 413; set when the body was
        left (partly) unread.
    """

    answerBeforeBody: Optional[IResource] = None
    _bodyReceived = 0

    def startedWith(self, method: bytes, uri: bytes, version: bytes) -> None:
        """
        Know the request line before the body: what
        L{Request.requestReceived} sets from it (again, when it is called).
        """
        self.method, self.uri, self.clientproto = method, uri, version
        self.path, _, query = uri.partition(b"?")
        self.args = parse_qs(query, 1) if query else {}
        self.prepath = []
        self.postpath = list(map(unquote, self.path[1:].split(b"/")))

    def handleContentChunk(self, data: bytes) -> None:
        if self.answerBeforeBody is not None:
            return
        self._bodyReceived += len(data)
        site = self.channel.site
        if self._bodyReceived > site.limits.maxBody:
            self.answerBeforeBody = site.bodyTooLarge(self, None)
            return
        super().handleContentChunk(data)

    def render(self, resrc: IResource) -> None:
        super().render(AnyMethodAnswered(resrc))

    def process(self) -> None:
        if self.answerBeforeBody is None:
            return super().process()
        self.site = self.channel.site
        self.setHeader(b"server", version)
        self.setHeader(b"date", datetimeToString())
        # the rest of the body is not read: this connection ends here
        self.channel.persistent = False
        self.setHeader(b"connection", b"close")
        try:
            self.render(self.answerBeforeBody)
        except BaseException:
            self.processingFailed(Failure())


class LimitedChannel(HTTPChannel):
    """
    An HTTP connection of a L{LimitedSite}: see the module's docstring.
    """

    site: "LimitedSite"
    # discarding what a client sends after an answer given before its body
    _lingerBeforeClosing = False
    _lingering: Optional[Any] = None
    _discarded = 0

    def connectionMade(self) -> None:
        super().connectionMade()
        self.site.pending.waiting(self)

    def dataReceived(self, data: bytes) -> None:
        if self._lingering is not None:
            self._discard(data)
            return
        # HTTPChannel.dataReceived restarts the time-out here: it is a
        # deadline instead, set when the connection starts waiting
        LineReceiver.dataReceived(self, data)

    def allHeadersReceived(self) -> None:
        request = self.requests[-1]
        if self.length != 0:
            # a body is coming (a length, or chunked): answer first if it
            # will not be taken anyway
            request.startedWith(self._command, self._path, self._version)
            answer = self.site.answerBeforeBody(request, self.length)
            if answer is not None:
                self._answerWithoutBody(request, answer)
                return
        super().allHeadersReceived()

    def rawDataReceived(self, data: bytes) -> None:
        if self._lingering is not None:
            # what came with the headers of a request answered without its body
            self._discard(data)
            return
        super().rawDataReceived(data)
        request = self.requests[-1] if self.requests else None
        if (
            request is not None
            and request.answerBeforeBody is not None
            and self._transferDecoder is not None
        ):
            # a chunked body went past max_body: answer now, read no more
            self._answerWithoutBody(request, request.answerBeforeBody)
            self.allContentReceived()

    def _answerWithoutBody(self, request: LimitedRequest, answer: IResource) -> None:
        """
        Let C{request} go on as one without a body, answered by C{answer}.
        """
        request.answerBeforeBody = answer
        if request.content is None:
            request.gotLength(0)
        self.persistent = False
        self._lingerBeforeClosing = True
        self._transferDecoder = None
        # lineReceived, who called allHeadersReceived, now sees an empty
        # body and hands the request over (allContentReceived)
        self.length = 0

    def allContentReceived(self) -> None:
        self.site.pending.done(self)
        super().allContentReceived()

    def requestDone(self, request: Request) -> None:
        if self.persistent:
            # before super(): it may go on with a request already received
            self.site.pending.waiting(self)
        super().requestDone(request)

    def loseConnection(self) -> None:
        if not self._lingerBeforeClosing or self.transport is None:
            return super().loseConnection()
        self._lingerBeforeClosing = False
        # Discard what comes for a moment, then close: see the module's
        # docstring.  Waiting like this counts as pending.
        self._lingering = self.callLater(
            min(LINGER, self.site.limits.requestTimeout), self._closeNow
        )
        self.site.pending.waiting(self)
        self._networkProducer.resumeProducing()
        self._networkProducer.unregisterProducer()
        halfClose = getattr(self.transport, "loseWriteConnection", None)
        if halfClose is not None:
            # the answer is complete: a client that reads to the end sees it
            halfClose()

    def _discard(self, data: bytes) -> None:
        self._discarded += len(data)
        if self._discarded > self.site.limits.maxBody:
            self._closeNow()

    def _closeNow(self) -> None:
        self.setTimeout(None)
        if self.transport is not None:
            self.transport.abortConnection()

    def _respondToBadRequestAndDisconnect(self) -> None:
        # twisted.web's own answer says only "400 Bad Request", with no body
        body = (
            b'{"error": "malformed request: the request line, a header or a chunk '
            b"of the body is not valid HTTP/1.1 (a NUL, CR or LF in a header, a "
            b"header or header section too long, a bad Content-Length or "
            b'Transfer-Encoding)"}\n'
        )
        self.transport.write(
            b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\n"
            b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(body), body)
        )
        self.loseConnection()

    def tooManyPending(self) -> None:
        """
        Closed because too many connections wait for their request.
        """
        self.site.closedConnection("max_pending")
        self._closeNow()

    def timeoutConnection(self) -> None:
        self.site.closedConnection("request_timeout")
        super().timeoutConnection()

    def connectionLost(self, reason: Any) -> None:
        self.site.pending.done(self)
        if self._lingering is not None and self._lingering.active():
            self._lingering.cancel()
        super().connectionLost(reason)


class LimitedSite(Site):
    """
    A site whose connections keep L{RequestLimits}.

    @ivar pending: the connections waiting for their request.
    """

    protocol = LimitedChannel
    requestFactory = LimitedRequest

    def __init__(
        self,
        resource: IResource,
        limits: RequestLimits,
        identify: Callable[[Request], str],
        metrics: Optional[Any] = None,
        **kwargs: Any,
    ) -> None:
        """
        @param identify: names the role of a request, for the audit line of
            a change request refused here.
        @param metrics: counts the connections closed by the limits
            (C{connectionClosed(reason)}: a L{statushub.metrics.WebMetrics}).
        """
        super().__init__(
            resource,
            timeout=limits.requestTimeout,
            # a form's fields would become the query's: only JSON is taken
            parsePOSTFormSubmission=False,
            **kwargs,
        )
        self.limits = limits
        self.pending = PendingConnections(limits.maxPending, self.reactor)
        self._identify = identify
        self._metrics = metrics

    def closedConnection(self, reason: str) -> None:
        """
        A connection was closed by the limits: C{request_timeout} or
        C{max_pending}.
        """
        if self._metrics is not None:
            self._metrics.connectionClosed(reason)

    def answerBeforeBody(self, request: LimitedRequest, length: Optional[int]) -> Optional[IResource]:
        """
        The answer to C{request}, whose headers are in and whose body
        (C{length} bytes, L{None} when chunked) is not, if it is refused
        whatever its body: a guard's refusal, or 413.
        """
        try:
            found = self.getResourceFor(request)
        except Exception:
            # served as usual, where this is met again and answered
            found = None
        if isinstance(found, Refusal):
            return found
        if length is not None and length > self.limits.maxBody:
            return self.bodyTooLarge(request, length)
        return None

    def bodyTooLarge(self, request: Request, length: Optional[int]) -> IResource:
        """
        The 413 for a body over C{max_body}.
        """
        size = "a chunked body goes" if length is None else f"Content-Length: {length} is"
        return Refusal(
            413,
            f"body: {size} over the limit of {self.limits.maxBody} bytes ([server] max_body)",
            self._identify(request),
        )
