"""
The request limits at the connection (L{statushub.web.limits}): the body
cap, the deadline of a whole request, the most connections waiting for
their request, and the guards' answers before a body is read.  Unit tests
on the site L{makeSite} builds, with bytes sent over in-memory transports
on a fake clock; the same on a real hub process is in
C{tests/test_hostile_hub.py}.
"""

from __future__ import annotations

import json
from typing import Any, Iterator, Optional

import pytest
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import globalLogPublisher
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request

from statushub import config as configuration
from statushub.hub import StatusHubFactory
from statushub.metrics import Metrics
from statushub.status import StatusBoard
from statushub.web.limits import LINGER, PendingConnections
from statushub.web.site import makeSite

HOST = "127.0.0.1:8080"


class Recorder(Resource):
    """
    Stands in for the API: keeps each request that reached it, with its
    body; answers at once, or (C{?later=1}) when the test says.
    """

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.bodies: list[bytes] = []
        self.waiting: list[Request] = []

    def render(self, request: Request) -> Any:
        self.bodies.append(request.content.read())
        if request.args.get(b"later"):
            self.waiting.append(request)
            return NOT_DONE_YET
        request.setHeader(b"content-type", b"application/json")
        return b'{"ok": true}'


class HalfClosingTransport(StringTransport):
    """
    A TCP-like transport: it can close its writing side alone.
    """

    writeClosed = False

    def loseWriteConnection(self) -> None:
        self.writeClosed = True


class Site:
    """
    The hub's site on a fake clock, with a recorder at C{/api/thing}.
    """

    def __init__(self, webMetrics: Any = None, **server: Any) -> None:
        config = configuration.defaults()
        for key, value in server.items():
            config.override("server", key, value)
        self.clock = Clock()
        board = StatusBoard(self.clock)
        self.recorder = Recorder()
        self.site = makeSite(
            board, StatusHubFactory(board, self.clock), config,
            api={"thing": self.recorder}, reactor=self.clock, webMetrics=webMetrics,
        )

    def connect(self, port: int = 40000) -> "Connection":
        transport = HalfClosingTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", port))
        channel = self.site.buildProtocol(transport.getPeer())
        channel.makeConnection(transport)
        # the WebSocket resource takes the connection over from here
        transport.protocol = channel
        return Connection(channel, transport)

    @property
    def pending(self) -> PendingConnections:
        return self.site.pending


class Connection:
    def __init__(self, channel: Any, transport: HalfClosingTransport) -> None:
        self.channel = channel
        self.transport = transport

    def send(self, data: bytes) -> None:
        self.channel.dataReceived(data)

    @property
    def closed(self) -> bool:
        return self.transport.disconnecting

    @property
    def aborted(self) -> bool:
        return self.transport.disconnected

    def answer(self) -> tuple[int, dict[str, str], bytes]:
        head, _, body = self.transport.value().partition(b"\r\n\r\n")
        statusLine, *lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return int(statusLine.split()[1]), headers, body


def head(method: str, path: str, *headers: str, host: Optional[str] = HOST) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", *([f"Host: {host}"] if host else []), *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


JSON = "Content-Type: application/json"


@pytest.fixture
def audit() -> Iterator[list[dict]]:
    events: list[dict] = []

    def observe(event: dict) -> None:
        if event.get("log_namespace") == "statushub.audit":
            events.append(event)

    globalLogPublisher.addObserver(observe)
    yield events
    globalLogPublisher.removeObserver(observe)


# ---- max_body -----------------------------------------------------------------


def test_a_declared_length_over_max_body_gets_413_before_the_body() -> None:
    site = Site(max_body=1000)
    connection = site.connect()
    connection.send(head("POST", "/api/thing", JSON, "Content-Length: 52428800"))
    code, headers, body = connection.answer()
    assert code == 413
    assert "max_body" in json.loads(body)["error"]
    assert "52428800" in json.loads(body)["error"]
    assert headers["connection"] == "close"
    assert site.recorder.bodies == []
    # the answer is complete: the writing side is closed at once
    assert connection.transport.writeClosed


def test_a_declared_length_up_to_max_body_is_read() -> None:
    site = Site(max_body=1000)
    connection = site.connect()
    connection.send(head("POST", "/api/thing", JSON, "Content-Length: 1000") + b"x" * 1000)
    assert connection.answer()[0] == 200
    assert site.recorder.bodies == [b"x" * 1000]


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def test_a_chunked_body_is_read_up_to_max_body_then_413() -> None:
    site = Site(max_body=1000)
    connection = site.connect()
    connection.send(head("POST", "/api/thing", JSON, "Transfer-Encoding: chunked"))
    connection.send(chunk(b"a" * 600))
    assert connection.transport.value() == b""
    connection.send(chunk(b"b" * 600))
    code, headers, body = connection.answer()
    assert code == 413
    assert "chunked" in json.loads(body)["error"]
    assert site.recorder.bodies == []
    # the rest is not stored, nor answered again
    connection.send(chunk(b"c" * 600) * 10 + b"0\r\n\r\n")
    assert connection.answer()[0] == 413
    assert connection.transport.value().count(b"HTTP/1.1") == 1


def test_a_chunked_body_up_to_max_body_is_read() -> None:
    site = Site(max_body=1000)
    connection = site.connect()
    connection.send(
        head("POST", "/api/thing", JSON, "Transfer-Encoding: chunked")
        + chunk(b"a" * 500) + chunk(b"b" * 500) + b"0\r\n\r\n"
    )
    assert connection.answer()[0] == 200
    assert site.recorder.bodies == [b"a" * 500 + b"b" * 500]


def test_after_an_early_answer_what_the_client_still_sends_is_discarded_for_a_moment() -> None:
    """
    A connection closed with unread data is reset, and a client still
    sending its body would lose the answer: the hub reads on and discards,
    at most max_body bytes, at most LINGER seconds.
    """
    site = Site(max_body=1000)
    connection = site.connect()
    connection.send(head("POST", "/api/thing", JSON, "Content-Length: 5000") + b"x" * 500)
    assert connection.answer()[0] == 413
    assert not connection.aborted
    connection.send(b"x" * 400)
    assert not connection.aborted
    connection.send(b"x" * 200)
    # past max_body of discarded bytes: closed now
    assert connection.aborted


def test_a_lingering_connection_is_closed_after_linger_seconds() -> None:
    site = Site(max_body=1000)
    connection = site.connect()
    connection.send(head("POST", "/api/thing", JSON, "Content-Length: 5000"))
    assert connection.answer()[0] == 413
    site.clock.advance(LINGER - 0.1)
    assert not connection.aborted
    site.clock.advance(0.2)
    assert connection.aborted


def test_an_early_answer_sends_no_100_continue() -> None:
    site = Site(max_body=1000)
    connection = site.connect()
    connection.send(
        head("POST", "/api/thing", JSON, "Content-Length: 5000", "Expect: 100-continue")
    )
    assert connection.transport.value().startswith(b"HTTP/1.1 413 ")
    assert b"100 Continue" not in connection.transport.value()
    # and one that is taken does get it
    connection = site.connect()
    connection.send(
        head("POST", "/api/thing", JSON, "Content-Length: 5", "Expect: 100-continue")
    )
    assert connection.transport.value() == b"HTTP/1.1 100 Continue\r\n\r\n"


# ---- the guards, before the body ------------------------------------------------


@pytest.mark.parametrize(
    "headers, host, code, words",
    [
        ([JSON], "evil.example", 403, "not served here"),
        ([JSON, "Origin: http://evil.example"], HOST, 403, "cross-site"),
        (["Content-Type: text/plain"], HOST, 415, "Content-Type"),
        (["Content-Type: multipart/form-data; boundary=x"], HOST, 415, "Content-Type"),
        ([JSON, "Authorization: Bearer wrong-token-of-16"], HOST, 401, "valid token"),
        ([JSON], HOST, 401, "valid token"),
        ([JSON, "Authorization: Bearer viewer-token-of-16"], HOST, 403, "operator token"),
        ([JSON, "Content-Type: application/json"], HOST, 400, "Content-Type header is sent 2"),
    ],
)
@pytest.mark.parametrize("framing", ["Content-Length: 52428800", "Transfer-Encoding: chunked"])
def test_a_refused_request_is_answered_before_its_body(
    audit: list[dict], headers: list[str], host: str, code: int, words: str, framing: str
) -> None:
    site = Site(token="operator-token-16", viewer_token="viewer-token-of-16")
    connection = site.connect()
    connection.send(head("POST", "/api/thing", framing, *headers, host=host))
    answer, _, body = connection.answer()
    assert (answer, words in json.loads(body)["error"]) == (code, True), body
    assert site.recorder.bodies == []
    # the refused change is audited, as any refusal is
    [event] = audit
    assert (event["outcome"], event["code"]) == ("refused", code)


def test_a_request_the_guards_let_through_is_read_whole() -> None:
    site = Site(token="operator-token-16")
    connection = site.connect()
    body = b'{"name": "x"}'
    connection.send(
        head("POST", "/api/thing", JSON, "Authorization: Bearer operator-token-16",
             f"Content-Length: {len(body)}") + body
    )
    assert connection.answer()[0] == 200
    assert site.recorder.bodies == [body]


def test_a_form_body_is_refused_even_on_a_read() -> None:
    """
    twisted.web would have made a form's fields into the query's: no body
    but JSON is taken, on any method.
    """
    site = Site()
    connection = site.connect()
    connection.send(
        head("GET", "/api/status", "Content-Type: application/x-www-form-urlencoded",
             "Content-Length: 12") + b"deployment=x"
    )
    code, _, body = connection.answer()
    assert code == 415


def test_a_malformed_request_gets_a_400_that_says_so() -> None:
    site = Site()
    connection = site.connect()
    connection.send(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Bad: a\x00b\r\n\r\n")
    code, headers, body = connection.answer()
    assert code == 400
    assert "malformed request" in json.loads(body)["error"]
    assert connection.closed


# ---- request_timeout --------------------------------------------------------------


@pytest.mark.parametrize(
    "sent",
    [
        b"",
        b"GET /api/status HTTP/1.1\r\nHost: 127.0.0.1\r\n",
        b"POST /api/thing HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: 100\r\n\r\n{",
    ],
    ids=["nothing", "half the headers", "half the body"],
)
def test_a_connection_without_a_complete_request_is_dropped_at_the_deadline(
    sent: bytes,
) -> None:
    site = Site(request_timeout=30)
    connection = site.connect()
    connection.send(sent)
    site.clock.advance(29.9)
    assert not connection.closed
    site.clock.advance(0.2)
    assert connection.closed
    assert connection.transport.value() == b""


@pytest.mark.parametrize("where", ["headers", "body"])
def test_a_request_that_trickles_in_is_dropped_at_the_deadline_all_the_same(where: str) -> None:
    """
    twisted.web's time-out starts again with every byte: one byte every
    25 s kept a request open for as long as the client liked.
    """
    site = Site(request_timeout=30)
    connection = site.connect()
    if where == "body":
        connection.send(head("POST", "/api/thing", JSON, "Content-Length: 100"))
        trickle = b"x" * 100
    else:
        trickle = head("GET", "/api/status")
    for byte in trickle[:1]:
        connection.send(bytes([byte]))
    site.clock.advance(25)
    connection.send(trickle[1:2])
    site.clock.advance(4.9)
    assert not connection.closed
    connection.send(trickle[2:3])
    site.clock.advance(0.2)
    assert connection.closed


def test_the_deadline_starts_again_when_the_answer_is_sent() -> None:
    site = Site(request_timeout=30)
    connection = site.connect()
    site.clock.advance(25)
    connection.send(head("GET", "/api/status"))
    assert connection.answer()[0] == 200
    # an idle keep-alive connection waits for its next request: 30 s more
    site.clock.advance(29.9)
    assert not connection.closed
    site.clock.advance(0.2)
    assert connection.closed


def test_a_request_being_answered_has_no_deadline() -> None:
    site = Site(request_timeout=30)
    connection = site.connect()
    connection.send(head("GET", "/api/thing?later=1"))
    site.clock.advance(300)
    assert not connection.closed
    [request] = site.recorder.waiting
    request.write(b"done")
    request.finish()
    assert b"done" in connection.transport.value()
    site.clock.advance(30.1)
    assert connection.closed


# ---- max_pending ----------------------------------------------------------------


def letTheHubReadThem(site: Site) -> None:
    """
    Past the grace, and two turns of the reactor: what may be closed is.
    """
    site.clock.advance(PendingConnections.GRACE)
    site.clock.advance(0)
    site.clock.advance(0)


def test_past_max_pending_the_oldest_waiting_connection_is_closed() -> None:
    site = Site(max_pending=3)
    first, second, third = (site.connect(port) for port in (40001, 40002, 40003))
    assert len(site.pending) == 3
    # a fourth: the oldest one goes, once it has had its chance
    fourth = site.connect(40004)
    assert not first.aborted
    letTheHubReadThem(site)
    assert (first.aborted, second.aborted, third.aborted, fourth.aborted) == (
        True, False, False, False
    )
    assert len(site.pending) == 3
    assert site.pending.closed == 1


def test_a_crowd_that_sends_its_requests_is_read_not_closed() -> None:
    """
    A reconnect storm: more connections than max_pending at once, each
    with its request on the way.  None is closed for the others.
    """
    site = Site(max_pending=3)
    crowd = [site.connect(40000 + n) for n in range(10)]
    site.clock.advance(0.5)
    for connection in crowd:
        connection.send(head("GET", "/api/status", "Connection: close"))
    letTheHubReadThem(site)
    assert [c.aborted for c in crowd] == [False] * 10
    assert all(c.answer()[0] == 200 for c in crowd)
    assert len(site.pending) == 0


def test_a_connection_older_than_the_grace_is_closed_only_after_a_poll() -> None:
    """
    The hub may be slow to get to a socket (a busy reactor): a connection
    is closed for the others only after the reactor has turned twice
    since it began to wait, so its request, had it been there, was read.
    """
    site = Site(max_pending=1)
    old = site.connect(40001)
    site.clock.advance(5)
    site.connect(40002)
    # not at once: at a later turn (the fake clock runs both turns at once)
    assert not old.aborted
    site.clock.advance(0)
    assert old.aborted


def test_a_connection_being_answered_or_upgraded_is_not_pending() -> None:
    site = Site(max_pending=2)
    answering = site.connect(40001)
    answering.send(head("GET", "/api/thing?later=1"))
    feed = site.connect(40002)
    feed.send(
        head("GET", "/ws/status", "Upgrade: websocket", "Connection: Upgrade",
             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version: 13")
    )
    assert feed.transport.value().startswith(b"HTTP/1.1 101 ")
    assert len(site.pending) == 0
    waiting = [site.connect(port) for port in (40003, 40004, 40005)]
    letTheHubReadThem(site)
    assert [c.aborted for c in waiting] == [True, False, False]
    assert not answering.aborted and not feed.aborted
    # answered: it waits for its next request again, the youngest
    [request] = site.recorder.waiting
    request.finish()
    assert waiting[1].aborted
    assert len(site.pending) == 2


def test_a_closed_connection_is_no_longer_pending() -> None:
    site = Site(max_pending=2)
    connection = site.connect()
    assert len(site.pending) == 1
    connection.channel.connectionLost(None)
    assert len(site.pending) == 0


def test_the_connections_the_limits_close_are_counted() -> None:
    metrics = Metrics()
    site = Site(webMetrics=metrics.web, max_pending=1, request_timeout=30)
    site.connect(40001)
    site.connect(40002)
    letTheHubReadThem(site)
    site.clock.advance(30.1)

    def closed(reason: str) -> float:
        return metrics.registry.get_sample_value(
            "statushub_http_connections_closed_total", {"reason": reason}
        )

    assert (closed("max_pending"), closed("request_timeout")) == (1, 1)
