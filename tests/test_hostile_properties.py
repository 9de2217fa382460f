"""
Whatever is thrown at the real hub, it answers 2xx or 4xx (101 for a feed),
never 500, and serves on: generated JSON bodies (deep, huge, odd numbers,
odd strings) at the API, generated header sets on every path, generated
query strings at the feed and the history.  Hypothesis makes the cases;
the hub is one process for the whole module, with an engine it cannot
reach (a deploy that passes is accepted, then fails, touching nothing).

Each request comes from an address of its own on 127/8, so that the wrong
tokens among them do not get one peer shut out (429) for the rest.
"""

from __future__ import annotations

import itertools
import json
import urllib.parse
from datetime import timedelta, timezone
from typing import Any, Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fixtures.hubprocess import HubProcess
from tests.rawhttp import RawConnection, requestHead

OPERATOR = "operator-token-0123456789"
VIEWER = "viewer-token-0123456789"
NO_ENGINE = '[docker]\nhost = "unix:///nonexistent/docker.sock"\n'
EXAMPLES = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    hub = HubProcess(
        tmp_path_factory.mktemp("properties"),
        NO_ENGINE,
        env={"STATUSHUB_TOKEN": OPERATOR, "STATUSHUB_VIEWER_TOKEN": VIEWER},
    )
    hub.start()
    try:
        yield hub
        # and the hub lives on, with nothing unhandled in its log
        assert send(hub, requestHead("GET", "/healthz", hub.port)) == 200
        assert not [line for line in hub.log if "Traceback" in line or "Unhandled" in line]
    finally:
        hub.stop()


_sources = (f"127.1.{n // 250 % 250}.{n % 250 + 1}" for n in itertools.count())


def send(hub: HubProcess, head: bytes, body: bytes = b"") -> int:
    """
    The status code the hub answers C{head} and C{body} with.
    """
    connection = RawConnection(hub.port, source=next(_sources))
    try:
        connection.send(head + body)
        return connection.answer().code
    finally:
        connection.close()


def acceptable(code: int) -> bool:
    return code == 101 or 200 <= code < 500


# ---- what is generated ----------------------------------------------------------

# every character, lone surrogates and NUL included
oddText = st.text(st.characters(exclude_categories=()), max_size=40)
oddNumbers = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0999, 1e-320, 1e308, 10**4000]),
)
scalars = st.one_of(st.none(), st.booleans(), oddNumbers, oddText)
anyJSON = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5), st.dictionaries(oddText, children, max_size=5)
    ),
    max_leaves=30,
)
NODE_KEYS = ["id", "image", "command", "env", "healthcheck", "restart", "constraints",
             "resources", "privileged"]
node = st.dictionaries(
    st.sampled_from(NODE_KEYS),
    st.one_of(anyJSON, st.just("statushub/busybox"), st.just(["sleep", "1"]),
              st.fixed_dictionaries({"test": st.just(["CMD", "true"]), "interval": oddNumbers})),
    max_size=6,
)
topologyLike = st.fixed_dictionaries(
    {"name": st.one_of(oddText, st.sampled_from(["a", "demo", "x" * 64])),
     "nodes": st.lists(node, max_size=4)}
)


@st.composite
def bodies(draw: Any) -> bytes:
    kind = draw(st.sampled_from(["json", "topology", "deep", "huge", "bytes"]))
    if kind == "json":
        return json.dumps(draw(anyJSON)).encode()
    if kind == "topology":
        return json.dumps(draw(topologyLike)).encode()
    if kind == "deep":
        depth = draw(st.integers(min_value=1, max_value=150_000))
        opener = draw(st.sampled_from([b"[", b'{"a":']))
        return opener * depth
    if kind == "huge":
        size = draw(st.integers(min_value=200_000, max_value=400_000))
        return b'{"name": "' + b"x" * size + b'", "nodes": []}'
    return draw(st.binary(max_size=200))


headerValue = st.text(
    st.characters(min_codepoint=0, max_codepoint=255, exclude_characters="\r\n"), max_size=40
)
HEADER_NAMES = ["Host", "Origin", "Content-Type", "Authorization", "Sec-Fetch-Site",
                "Expect", "Connection", "Upgrade", "Cookie", "X-Forwarded-For", "Accept"]
header = st.one_of(
    st.tuples(st.sampled_from(HEADER_NAMES), headerValue),
    st.tuples(st.just("Authorization"),
              st.sampled_from([f"Bearer {OPERATOR}", f"Bearer {VIEWER}", "Bearer wrong",
                               "Basic abc", "Bearer"])),
    st.tuples(st.just("Content-Type"),
              st.sampled_from(["application/json", "application/json; charset=utf-8",
                               "multipart/form-data; boundary=x", "text/plain"])),
    st.tuples(st.just("Host"), st.sampled_from(["127.0.0.1", "evil.example", "localhost:1"])),
)
PATHS = ["/", "/api", "/ws", "/api/status", "/api/deployments", "/api/deployment", "/api/deployments/demo",
         "/api/deployments/demo/history", "/healthz", "/metrics", "/ws/status",
         "/examples/wamp.json", "/api/%00", "/%2e%2e/etc/passwd", "/api/deployments/%C2%B2",
         "/api/deployments/demo/nodes/a/stop", "/api/deployments/demo/nodes/%00/restart",
         "/api/deployments/demo/history?after=2026-11-26T08:00:00Z&since=1",
         "/ws/logs", "/ws/stats", "/api/deployments/demo/stats",
         "/api/deployments/demo/nodes/a/logs?tail=5"]
METHODS = ["GET", "POST", "DELETE", "PUT", "PATCH", "HEAD", "OPTIONS", "BREW"]


def encodedQuery(pairs: list[tuple[str, str]]) -> str:
    return "&".join(
        f"{urllib.parse.quote(k, safe='')}={urllib.parse.quote(v, safe='', errors='surrogatepass')}"
        for k, v in pairs
    )


queryValue = st.one_of(
    oddText,
    st.sampled_from(["0", "1", "²", "١٢", "-1", "1e3", "99999999999999999999999", " 1", "0x10",
                     "demo", "a" * 65]),
    # the history's after=TIME: odd times, the edges of the calendar
    st.sampled_from(["2026-11-26T08:00:00Z", "2026-11-26T08:00:00", "0001-01-01T00:00:00+23:59",
                     "9999-12-31T23:59:59-23:59", "2026-W48-4T08:00Z", "2026-11-26 08:00 01:00",
                     "+002026-01-01", "2026-02-30T00:00:00Z"]),
    st.datetimes(timezones=st.none() | st.builds(timezone, st.timedeltas(
        min_value=timedelta(hours=-23, minutes=-59), max_value=timedelta(hours=23, minutes=59)))
    ).map(lambda moment: moment.isoformat()),
)
query = st.lists(
    st.tuples(st.sampled_from(["deployment", "since", "epoch", "limit", "after", "tail", "token",
                               "x"]),
              queryValue),
    max_size=5,
)


# ---- the properties ---------------------------------------------------------------


@EXAMPLES
@given(body=bodies(),
       path=st.sampled_from(["/api/deployments", "/api/deployment",
                             "/api/deployments/demo/nodes/a/restart"]),
       token=st.sampled_from([OPERATOR, VIEWER, "wrong"]))
def test_any_body_at_the_api_gets_2xx_or_4xx(hub, body: bytes, path: str, token: str) -> None:
    head = requestHead("POST", path, hub.port, "Content-Type: application/json",
                       f"Authorization: Bearer {token}", f"Content-Length: {len(body)}")
    assert acceptable(send(hub, head, body))


@EXAMPLES
@given(method=st.sampled_from(METHODS), path=st.sampled_from(PATHS),
       headers=st.lists(header, max_size=8), body=st.one_of(st.just(b""), bodies()))
def test_any_header_set_gets_2xx_or_4xx(hub, method: str, path: str,
                                        headers: list[tuple[str, str]], body: bytes) -> None:
    lines = [f"{method} {path} HTTP/1.1"]
    if not any(name == "Host" for name, _ in headers):
        lines.append(f"Host: 127.0.0.1:{hub.port}")
    lines += [f"{name}: {value}" for name, value in headers]
    lines.append(f"Content-Length: {len(body)}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    assert acceptable(send(hub, head, body))


UPGRADE = ["Connection: Upgrade", "Upgrade: websocket", "Sec-WebSocket-Version: 13",
           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="]


# what Autobahn's status page took (a GET without Upgrade), besides the feed's own
feedQuery = st.lists(
    st.tuples(st.sampled_from(["deployment", "node", "since", "epoch", "tail", "redirect",
                               "after", "x"]),
              st.one_of(queryValue, st.just("https://evil.example/"))),
    max_size=5,
)


@EXAMPLES
@given(feed=st.sampled_from(["/ws/status", "/ws/logs", "/ws/stats"]), pairs=feedQuery,
       token=st.sampled_from([OPERATOR, VIEWER]), upgrade=st.booleans())
def test_any_feed_query_gets_101_or_4xx(hub, feed: str, pairs: list[tuple[str, str]], token: str,
                                        upgrade: bool) -> None:
    head = requestHead("GET", f"{feed}?{encodedQuery(pairs)}", hub.port,
                       f"Authorization: Bearer {token}", *(UPGRADE if upgrade else []))
    code = send(hub, head)
    assert acceptable(code) and not 300 <= code < 400


@EXAMPLES
@given(pairs=query, name=st.sampled_from(["demo", "a", "%00", "x" * 70]),
       what=st.sampled_from(["history", "stats", "nodes/a/logs", "nodes/%00/logs"]))
def test_any_history_or_insight_query_gets_2xx_or_4xx(hub, pairs: list[tuple[str, str]],
                                                      name: str, what: str) -> None:
    head = requestHead("GET", f"/api/deployments/{name}/{what}?{encodedQuery(pairs)}",
                       hub.port, f"Authorization: Bearer {VIEWER}")
    assert acceptable(send(hub, head))
