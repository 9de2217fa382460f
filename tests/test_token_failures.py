"""
Wrong tokens: counted, logged at most once a peer a minute, and 20 within a
minute get the peer 429 for a minute.  On the site L{makeSite} builds, over
in-memory transports on a fake clock.
"""

from __future__ import annotations

import json
from typing import Iterator

import pytest
from twisted.internet.task import Clock
from twisted.logger import globalLogPublisher

from statushub.web.roles import TokenFailures
from tests.test_request_limits import JSON, Site, head

OPERATOR = "operator-token-16"


@pytest.fixture
def authLog() -> Iterator[list[dict]]:
    events: list[dict] = []

    def observe(event: dict) -> None:
        if event.get("log_namespace") == "statushub.auth":
            events.append(event)

    globalLogPublisher.addObserver(observe)
    yield events
    globalLogPublisher.removeObserver(observe)


def get(site: Site, token: str | None, port: int = 40000, path: str = "/api/status") -> tuple:
    connection = site.connect(port)
    headers = [f"Authorization: Bearer {token}"] if token is not None else []
    connection.send(head("GET", path, *headers))
    code, headers, body = connection.answer()
    return code, headers, body


def counted() -> tuple[Site, list[int]]:
    calls: list[int] = []
    site = Site(token=OPERATOR)
    site.site.roles.failures._counted = lambda: calls.append(1)
    return site, calls


def test_wrong_tokens_are_counted_a_missing_one_is_not(authLog: list[dict]) -> None:
    site, calls = counted()
    assert get(site, None)[0] == 401
    assert calls == [] and authLog == []
    assert get(site, "wrong")[0] == 401
    assert calls == [1]
    assert get(site, OPERATOR)[0] == 200
    assert calls == [1]


def test_a_line_a_peer_a_minute(authLog: list[dict]) -> None:
    site, calls = counted()
    for _ in range(5):
        get(site, "wrong", 40001)
    [line] = authLog
    assert line["peer"] == "127.0.0.1"
    assert line["log_level"].name == "warn"
    assert "wrong token from 127.0.0.1" in _text(line)
    site.clock.advance(60)
    get(site, "wrong", 40002)
    assert len(authLog) == 2
    assert "(4 more since the last line)" in _text(authLog[1])
    assert len(calls) == 6


def test_twenty_wrong_tokens_in_a_minute_get_429_for_a_minute(authLog: list[dict]) -> None:
    site, calls = counted()
    for _ in range(19):
        assert get(site, "wrong")[0] == 401
        site.clock.advance(3)
    # the first of them is past the minute now: this one is the 19th within it
    site.clock.advance(3.5)
    assert get(site, "wrong")[0] == 401
    # the 20th within a minute
    site.clock.advance(0.5)
    assert get(site, "wrong")[0] == 401
    code, headers, body = get(site, OPERATOR)
    assert code == 429
    assert headers["retry-after"] == "60"
    assert "too many wrong tokens" in json.loads(body)["error"]
    # refused, whatever it sends, wherever a token is needed; not counted
    assert get(site, None, path="/ws/status")[0] == 429
    assert len(calls) == 21
    # what needs no token is served
    assert get(site, None, path="/healthz")[0] == 200
    site.clock.advance(59.5)
    code, headers, _ = get(site, OPERATOR)
    assert (code, headers["retry-after"]) == (429, "1")
    site.clock.advance(0.5)
    assert get(site, OPERATOR)[0] == 200
    # at most a line a minute: the first, and one after the minute
    assert len(authLog) == 2


def test_a_refused_change_is_audited_as_429() -> None:
    site = Site(token=OPERATOR)
    for _ in range(20):
        get(site, "wrong")
    connection = site.connect()
    connection.send(head("POST", "/api/thing", JSON, f"Authorization: Bearer {OPERATOR}",
                         "Content-Length: 2") + b"{}")
    assert connection.answer()[0] == 429
    assert site.recorder.bodies == []


def test_another_peer_is_served_meanwhile() -> None:
    failures = TokenFailures(Clock())
    for _ in range(20):
        failures.failed("10.0.0.1", _request())
    assert failures.blockedFor("10.0.0.1") == 60
    assert failures.blockedFor("10.0.0.2") == 0


def test_peers_remembered_are_bounded() -> None:
    clock = Clock()
    failures = TokenFailures(clock)
    failures.MAX_PEERS = 100
    for n in range(100):
        failures.failed(f"10.0.0.{n}", _request())
    # all known within the minute: the longest known goes
    failures.failed("10.0.1.0", _request())
    assert len(failures) == 100
    # a minute later every quiet one goes at once
    clock.advance(61)
    failures.failed("10.0.1.1", _request())
    assert len(failures) == 1


def _request():
    from twisted.web.test.requesthelper import DummyRequest

    request = DummyRequest([b"api"])
    request.path = b"/api"
    return request


def _text(event: dict) -> str:
    from twisted.logger import formatEvent

    return formatEvent(event)
