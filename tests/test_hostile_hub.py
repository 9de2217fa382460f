"""
The real hub against a hostile neighbour, over real sockets (issue 18): each
case sent as raw bytes, as such a client would, asserting the status code,
that nothing was created on the private engine, and the audit line where a
change request was refused.

One hub serves most cases (tokens from the environment, the private engine);
the slow requests, the pending connections and the wrong tokens each get a
hub of their own (they close connections, or shut a peer out for a minute).
"""

from __future__ import annotations

import json
import os
import re
import resource
from pathlib import Path
from typing import Iterator, Optional

import pytest
import pytest_twisted
import treq

from tests.fixtures.docker import IMAGE, DockerEngineProcess
from tests.fixtures.hubprocess import HubProcess
from tests.rawhttp import RawConnection, exchange, requestHead
from tests.test_hub_limits import runTwistd
from tests.test_security_hub import AUDIT
from tests.waiting import blockUntil
from tests.wsclient import connectFeed

OPERATOR = "operator-token-0123456789"
VIEWER = "viewer-token-0123456789"
JSON = "Content-Type: application/json"
MAX_BODY = 262_144

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory, dockerEngine: DockerEngineProcess
        ) -> Iterator[HubProcess]:
    hub = HubProcess(
        tmp_path_factory.mktemp("hostile"),
        "[polling]\ninterval = 0.5\n",
        env={"DOCKER_HOST": dockerEngine.host, "STATUSHUB_TOKEN": OPERATOR,
             "STATUSHUB_VIEWER_TOKEN": VIEWER},
    )
    hub.start()
    try:
        yield hub
    finally:
        hub.stop()


@pytest.fixture
def engine(hub: HubProcess, docker: DockerEngineProcess) -> Iterator[DockerEngineProcess]:
    """
    The private engine; after the test, nothing of ours may be on it, and
    the hub holds no deployment.
    """
    yield docker
    assert docker.labelledContainers() == []
    assert deployments(hub) == []


def deployments(hub: HubProcess) -> list[str]:
    """
    The names of the deployments the hub holds.
    """
    answer = exchange(hub.port, requestHead("GET", "/api/deployments", hub.port, bearer(VIEWER)))
    assert answer.code == 200, answer.body
    return [picture["deployment"] for picture in answer.json()["deployments"]]


class AuditLines:
    """
    The audit lines a hub prints from now on.
    """

    def __init__(self, hub: HubProcess) -> None:
        self._hub = hub
        self.start = len(hub.log)

    def new(self) -> list[dict[str, Optional[str]]]:
        return [m.groupdict() for line in self._hub.log[self.start:]
                if (m := AUDIT.search(line))]

    def one(self) -> dict[str, Optional[str]]:
        blockUntil(self.new, timeout=10, interval=0.05, what="an audit line")
        [line] = self.new()
        return line


def bearer(token: str) -> str:
    return f"Authorization: Bearer {token}"


def topology(**node: object) -> dict:
    return {"name": "hostile", "nodes": [{"id": "a", "image": IMAGE,
                                          "command": ["sleep", "infinity"], **node}]}


# ---- bodies -----------------------------------------------------------------------


def test_a_50_MiB_post_for_another_host_is_refused_before_its_body(hub, engine) -> None:
    audit = AuditLines(hub)
    connection = RawConnection(hub.port)
    connection.send(requestHead("POST", "/api/deployments", hub.port, JSON, bearer(OPERATOR),
                                "Content-Length: 52428800", host="evil.com"))
    # the answer comes with no byte of the body sent
    answer = connection.answer()
    assert answer.code == 403 and "not served here" in answer.error
    assert answer.headers["connection"] == "close"
    # and the hub does not take the 50 MiB: it stops reading past max_body
    sent = all(connection.send(b"x" * 65536) for _ in range(800))
    assert not sent and connection.sent < 52428800
    connection.close()
    line = audit.one()
    assert (line["action"], line["outcome"], line["code"]) == ("deploy", "refused", "403")


def test_a_30_MiB_chunked_body_without_a_token_is_refused_before_its_body(hub, engine) -> None:
    audit = AuditLines(hub)
    connection = RawConnection(hub.port)
    connection.send(requestHead("POST", "/api/deployments", hub.port, JSON,
                                "Transfer-Encoding: chunked"))
    answer = connection.answer()
    assert answer.code == 401 and "valid token" in answer.error
    chunk = b"10000\r\n" + b"x" * 65536 + b"\r\n"
    assert not all(connection.send(chunk) for _ in range(480))
    connection.close()
    line = audit.one()
    assert (line["role"], line["outcome"], line["code"]) == ("unauthenticated", "refused", "401")


def test_a_declared_length_over_max_body_gets_413_at_once(hub, engine) -> None:
    audit = AuditLines(hub)
    connection = RawConnection(hub.port)
    connection.send(requestHead("POST", "/api/deployments", hub.port, JSON, bearer(OPERATOR),
                                f"Content-Length: {MAX_BODY + 1}"))
    answer = connection.answer()
    assert answer.code == 413
    assert "max_body" in answer.error and str(MAX_BODY) in answer.error
    connection.close()
    line = audit.one()
    assert (line["role"], line["outcome"], line["code"]) == ("operator", "refused", "413")


def test_a_chunked_body_is_answered_413_when_it_passes_max_body(hub, engine) -> None:
    audit = AuditLines(hub)
    connection = RawConnection(hub.port)
    connection.send(requestHead("POST", "/api/deployments", hub.port, JSON, bearer(OPERATOR),
                                "Transfer-Encoding: chunked"))
    # past the cap, and never ended: the answer comes all the same
    for _ in range(5):
        connection.send(b"10000\r\n" + b"[" * 65536 + b"\r\n")
    answer = connection.answer()
    assert answer.code == 413 and "chunked" in answer.error
    connection.close()
    assert audit.one()["code"] == "413"


def test_a_body_within_max_body_is_taken(hub, engine) -> None:
    """
    The limits leave a normal request alone: a deploy with a body padded
    near max_body (JSON whitespace) is accepted.
    """
    body = json.dumps(topology()).encode()
    body += b" " * (MAX_BODY - len(body))
    answer = exchange(hub.port, requestHead(
        "POST", "/api/deployments", hub.port, JSON, bearer(OPERATOR),
        f"Content-Length: {len(body)}"), body)
    assert answer.code == 202, answer.body

    def deployed() -> bool:
        picture = exchange(hub.port, requestHead(
            "GET", "/api/deployments/hostile", hub.port, bearer(OPERATOR))).json()
        return picture["deployStatus"] == "deployed"

    blockUntil(deployed, timeout=60, what="deployed")
    assert exchange(hub.port, requestHead(
        "DELETE", "/api/deployments/hostile", hub.port, bearer(OPERATOR))).code == 202
    blockUntil(lambda: engine.labelledContainers() == [] and deployments(hub) == [],
               timeout=60, what="teardown")


# ---- no 500 from input -------------------------------------------------------------

DEEP = b"[" * 200_000


@pytest.mark.parametrize(
    "headers, role, code, words",
    [
        ([bearer(OPERATOR), "Origin: http://evil.example"], "operator", 403, "cross-site"),
        ([], "unauthenticated", 401, "valid token"),
        ([bearer(VIEWER)], "viewer", 403, "operator token"),
        ([bearer(OPERATOR)], "operator", 400, "nested more than"),
    ],
    ids=["cross-site", "no token", "viewer", "operator"],
)
def test_deeply_nested_json_gets_a_4xx_and_its_audit_line(
    hub, engine, headers: list[str], role: str, code: int, words: str
) -> None:
    audit = AuditLines(hub)
    answer = exchange(hub.port, requestHead("POST", "/api/deployments", hub.port, JSON, *headers,
                                            f"Content-Length: {len(DEEP)}"), DEEP)
    assert (answer.code, words in answer.error) == (code, True), answer.body
    line = audit.one()
    assert (line["role"], line["outcome"], line["code"]) == (role, "refused", str(code))
    assert words in line["reason"]


@pytest.mark.parametrize(
    "body, words",
    [
        (b'{"name": "hostile", "nodes": [{"id": "a", "image": "x", '
         b'"healthcheck": {"test": ["CMD", "true"], "interval": NaN}}]}', "NaN"),
        (b'{"name": "hostile", "nodes": [{"id": "a", "image": "x", '
         b'"healthcheck": {"test": ["CMD", "true"], "interval": Infinity}}]}', "Infinity"),
        (b'{"name": "hostile", "nodes": [{"id": "a", "image": "x", '
         b'"healthcheck": {"test": ["CMD", "true"], "interval": 1e999}}]}', "too large"),
        (b'{"name": "hostile", "nodes": [{"id": "a", "image": "x", '
         b'"command": ["sleep", "1\\u0000"]}]}', "NUL character in nodes[0].command[1]"),
        (b'{"name": "host\\u0000ile", "nodes": []}', "NUL character in name"),
        (b'{"name": "hostile", "nodes": [{"id": "a", "image": "x", '
         b'"env": {"A": "\\ud800"}}]}', "lone surrogate"),
        (b"\xff\xfe", "not UTF-8"),
    ],
    ids=["NaN", "Infinity", "1e999", "NUL in a command", "NUL in the name", "surrogate",
         "not UTF-8"],
)
def test_odd_values_in_a_body_get_400_naming_them(hub, engine, body: bytes, words: str) -> None:
    audit = AuditLines(hub)
    answer = exchange(hub.port, requestHead("POST", "/api/deployments", hub.port, JSON,
                                            bearer(OPERATOR), f"Content-Length: {len(body)}"),
                      body)
    assert answer.code == 400 and words in answer.error, answer.body
    line = audit.one()
    assert (line["outcome"], line["code"]) == ("refused", "400")


@pytest.mark.parametrize("body", [b"[" * 1000, b'{"a": NaN}', b"\xff"])
def test_odd_bodies_of_a_node_action_get_400(hub, engine, body: bytes) -> None:
    audit = AuditLines(hub)
    answer = exchange(hub.port, requestHead(
        "POST", "/api/deployments/hostile/nodes/a/restart", hub.port, JSON, bearer(OPERATOR),
        f"Content-Length: {len(body)}"), body)
    assert answer.code == 400 and "empty body or {}" in answer.error, answer.body
    line = "audit: restart of node 'a' of 'hostile' by operator from 127.0.0.1:"
    blockUntil(lambda: [entry for entry in hub.log[audit.start:] if line in entry],
               timeout=10, interval=0.05, what="the action's audit line")
    [entry] = [entry for entry in hub.log[audit.start:] if line in entry]
    assert "refused (400)" in entry


@pytest.mark.parametrize(
    "contentType, body",
    [
        ("multipart/form-data; boundary=x",
         b'--x\r\nContent-Disposition: form-data; name="name"\r\n\r\nhostile\r\n--x--\r\n'),
        ("application/x-www-form-urlencoded", b"name=hostile"),
    ],
    ids=["multipart", "form"],
)
def test_a_form_body_gets_415(hub, engine, contentType: str, body: bytes) -> None:
    audit = AuditLines(hub)
    answer = exchange(hub.port, requestHead(
        "POST", "/api/deployments", hub.port, f"Content-Type: {contentType}", bearer(OPERATOR),
        f"Content-Length: {len(body)}"), body)
    assert answer.code == 415 and contentType.split(";")[0] in answer.error
    assert audit.one()["code"] == "415"


@pytest.mark.parametrize("header", ["Host: 127.0.0.1", "Origin: http://127.0.0.1", JSON])
def test_a_header_sent_twice_gets_400(hub, engine, header: str) -> None:
    audit = AuditLines(hub)
    body = json.dumps(topology()).encode()
    headers = [JSON, bearer(OPERATOR), f"Content-Length: {len(body)}", header]
    if header.startswith("Origin"):
        headers.append("Origin: http://evil.example")
    answer = exchange(hub.port, requestHead("POST", "/api/deployments", hub.port, *headers), body)
    name = header.partition(":")[0]
    assert answer.code == 400 and f"the {name} header is sent 2 times" in answer.error
    assert audit.one()["code"] == "400"


@pytest.mark.parametrize(
    "path, words",
    [
        ("/%00", "NUL"),
        ("/api/%00", "NUL"),
        ("/api/deployments/x/history?since=%C2%B2", "since"),
        ("/api/deployments/x/history?limit=%C2%B2", "limit"),
        ("/api/deployments/x/history?since=1%00", "since"),
        ("/api/status?deployment=%00", "deployment"),
        ("/api/deployments/x/history?after=" + "9" * 6000, "ISO 8601"),
        ("/api/deployments/x/history?after=2026-11-26T08:00:00%00", "ISO 8601"),
        ("/api/deployments/x/history?after=2026-11-26T08:00:00", "time zone"),
    ],
)
def test_odd_paths_and_arguments_get_400(hub, engine, path: str, words: str) -> None:
    answer = exchange(hub.port, requestHead("GET", path, hub.port, bearer(VIEWER)))
    assert answer.code == 400 and words in answer.error, answer.body
    # what was sent is named, not sent back whole
    assert len(answer.error) < 200


@pytest.mark.parametrize("path", ["/api", "/ws", "/api/deployment",
                                  "/api/deployments/hostile/nodes/a/stop"])
def test_a_head_where_there_is_no_get_gets_405(hub, engine, path: str) -> None:
    """
    twisted.web answers a HEAD with the resource's GET, and a resource
    without one with a 500.
    """
    answer = exchange(hub.port, requestHead("HEAD", path, hub.port, bearer(OPERATOR)))
    assert answer.code == 405 and "GET" not in answer.headers["allow"]


UPGRADE = ["Connection: Upgrade", "Upgrade: websocket", "Sec-WebSocket-Version: 13",
           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="]


@pytest.mark.parametrize(
    "query, words",
    [("deployment=x&since=%C2%B2&epoch=a", "since"),
     ("deployment=x&since=1&since=2&epoch=a", "since"),
     ("deployment=x&since=1", "epoch"),
     ("deployment=%00", "not a deployment name"),
     ("deployment=x&deployment=y", "one name"),
     ("deployment=x&since=99999999999999999999999&epoch=a", "at most 18 digits"),
     ("deployment=" + "X" * 6000, "not a deployment name")],
)
def test_odd_feed_queries_get_400_before_the_upgrade(hub, engine, query: str, words: str
                                                     ) -> None:
    answer = exchange(hub.port, requestHead("GET", f"/ws/status?{query}", hub.port,
                                            bearer(VIEWER), *UPGRADE))
    # the feed's refusal says what is wrong in its status line
    assert answer.code == 400 and words in answer.reason, (answer.reason, answer.body)
    assert len(answer.reason) < 200


@pytest.mark.parametrize("feed", ["/ws/status", "/ws/logs", "/ws/stats"])
@pytest.mark.parametrize(
    "query", ["", "?redirect=https%3A%2F%2Fevil.example%2F",
              "?redirect=https%3A%2F%2Fevil.example%2F&after=abc"],
    ids=["plain", "redirect", "redirect after abc"],
)
def test_a_get_of_a_feed_without_upgrade_gets_426(hub, engine, feed: str, query: str) -> None:
    """
    Autobahn's status page is off: it had none of the hub's answer headers,
    its ?redirect= sent anyone anywhere, and ?after=abc raised.
    """
    answer = exchange(hub.port, requestHead("GET", f"{feed}{query}", hub.port,
                                            bearer(VIEWER)))
    assert answer.code == 426 and "Upgrade" in answer.reason
    assert "location" not in answer.headers and b"<html" not in answer.body.lower()


def test_a_nul_in_a_header_gets_400(hub, engine) -> None:
    answer = exchange(hub.port, requestHead("GET", "/api/status", hub.port, bearer(VIEWER),
                                            "X-Odd: a\x00b"))
    assert answer.code == 400 and "malformed request" in answer.error


def test_the_hub_serves_on_after_all_that(hub) -> None:
    answer = exchange(hub.port, requestHead("GET", "/healthz", hub.port))
    assert answer.code == 200 and answer.json()["status"] == "ok"
    assert not any("Traceback" in line or "Unhandled" in line for line in hub.log), [
        line for line in hub.log if "Traceback" in line][:5]


# ---- slow requests, for real ----------------------------------------------------------


@pytest.fixture
def slowHub(hub_process) -> HubProcess:
    return hub_process(config="[server]\nrequest_timeout = 2\nmax_pending = 5\n")


def closedByLimits(hub: HubProcess, reason: str) -> float:
    """
    How many connections the hub says its limits closed for C{reason}.
    """
    metrics = exchange(hub.port, requestHead("GET", "/metrics", hub.port))
    assert metrics.code == 200
    found = re.search(
        rb'^statushub_http_connections_closed_total\{reason="%s"\} (\S+)$' % reason.encode(),
        metrics.body, re.M)
    return float(found.group(1)) if found else 0.0


def test_a_request_sent_a_byte_at_a_time_is_dropped_at_the_deadline(slowHub) -> None:
    """
    A byte every half second, with a 2-second deadline: the hub closes the
    connection long before the request is complete, answers nothing, and
    counts it.
    """
    request = requestHead("POST", "/api/deployments", slowHub.port, JSON,
                          "Content-Length: 100") + b"x" * 100
    connection = RawConnection(slowHub.port)
    closed = False
    for byte in request:
        if not connection.send(bytes([byte])) or connection.closedByHub(timeout=0.5):
            closed = True
            break
    assert closed
    assert connection.sent < len(request)
    assert connection.received == b""
    connection.close()
    assert closedByLimits(slowHub, "request_timeout") == 1


@pytest_twisted.ensureDeferred
async def test_past_max_pending_the_oldest_are_closed_and_the_hub_serves(slowHub) -> None:
    idle = [RawConnection(slowHub.port) for _ in range(12)]
    # the youngest five wait; the seven before them were closed
    for connection in idle[:7]:
        assert connection.closedByHub(timeout=10)
        assert connection.received == b""
    assert closedByLimits(slowHub, "max_pending") >= 7
    health = await treq.get(slowHub.url + "/healthz")
    assert health.code == 200
    await health.content()
    feed = await connectFeed(slowHub.wsUrl)
    await feed.waitFor(lambda m: m["type"] == "status_update")
    await feed.close()
    for connection in idle:
        connection.close()


def test_idle_sockets_past_the_descriptor_limit_leave_healthz_served(hub_process) -> None:
    """
    The issue's case: with few descriptors, idle sockets made C{/healthz}
    fail until they closed.  The hub gets 60 descriptors more than it uses;
    100 idle sockets come; past C{max_pending} the oldest are closed, so
    C{/healthz} is answered while the newest still wait.
    """
    hub = hub_process(config="[server]\nmax_pending = 20\nrequest_timeout = 120\n")
    assert hub.pid is not None
    used = len(os.listdir(f"/proc/{hub.pid}/fd"))
    resource.prlimit(hub.pid, resource.RLIMIT_NOFILE, (used + 60, used + 60))
    idle = [RawConnection(hub.port) for _ in range(100)]
    try:
        def healthy() -> bool:
            try:
                return exchange(hub.port, requestHead("GET", "/healthz", hub.port)).code == 200
            except OSError:
                return False

        blockUntil(healthy, timeout=60, interval=0.5, what="/healthz answered")
        # the oldest were closed, unanswered, by max_pending, not by the deadline
        assert idle[0].closedByHub(timeout=30) and idle[0].received == b""
        assert closedByLimits(hub, "max_pending") > 0
        assert closedByLimits(hub, "request_timeout") == 0
    finally:
        for connection in idle:
            connection.close()
    assert exchange(hub.port, requestHead("GET", "/healthz", hub.port)).code == 200
    assert not [line for line in hub.log if "Traceback" in line]


# ---- tokens ----------------------------------------------------------------------


def test_twenty_wrong_tokens_get_429_and_one_log_line(hub_process) -> None:
    hub = hub_process(env={"STATUSHUB_TOKEN": OPERATOR})
    codes = [exchange(hub.port, requestHead("GET", "/api/status", hub.port,
                                            bearer(f"guess-{n:012d}"))).code
             for n in range(25)]
    assert codes == [401] * 20 + [429] * 5
    answer = exchange(hub.port, requestHead("GET", "/api/status", hub.port, bearer(OPERATOR)))
    assert answer.code == 429 and int(answer.headers["retry-after"]) <= 60
    # what needs no token is served; another peer is not shut out
    assert exchange(hub.port, requestHead("GET", "/healthz", hub.port)).code == 200
    metrics = exchange(hub.port, requestHead("GET", "/metrics", hub.port, bearer(OPERATOR)),
                       source="127.0.0.2")
    assert metrics.code == 200
    assert re.search(rb"^statushub_auth_failures_total 20\.0$", metrics.body, re.M)
    lines = [line for line in hub.log if "authentication failed" in line]
    assert len(lines) == 1 and "127.0.0.1" in lines[0]


@pytest.mark.parametrize(
    "args, words",
    [
        (["--listen", "tcp:0:interface=0.0.0.0"], "at least 16 characters"),
        (["--listen", "tcp:0:interface=127.0.0.1", "--config", "any-host.toml"], "DNS rebinding"),
    ],
)
def test_unsafe_tokens_and_hosts_stop_the_start(tmp_path: Path, args: list[str], words: str
                                                ) -> None:
    (tmp_path / "any-host.toml").write_text('[server]\nallowed_hosts = ["*"]\n')
    short = (tmp_path / "short.toml")
    short.write_text('[server]\ntoken = "short"\n')
    if "--config" not in args:
        args = [*args, "--config", str(short)]
    result = runTwistd(tmp_path, *args)
    output = result.stdout + result.stderr
    assert result.returncode != 0 and words in output, output
    assert "serving on" not in output


# ---- pages -------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/index.html", "/examples/wamp.html"])
def test_pages_cannot_be_framed(hub, path: str) -> None:
    token = f"?token={VIEWER}" if path.startswith("/examples") else ""
    answer = exchange(hub.port, requestHead("GET", path + token, hub.port))
    assert answer.code == 200
    assert answer.headers["x-frame-options"] == "DENY"
    assert answer.headers["content-security-policy"] == "frame-ancestors 'none'"
    assert answer.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("path", ["/examples/", "/examples/wamp.html", "/examples/wamp.json",
                                  "/examples/wamp.js"])
def test_the_examples_follow_the_viewer_role(hub, path: str) -> None:
    assert exchange(hub.port, requestHead("GET", path, hub.port)).code == 401
    assert exchange(hub.port, requestHead("GET", path, hub.port, bearer(VIEWER))).code == 200


def test_healthz_names_no_file_and_no_error_text(hub_process, tmp_path: Path) -> None:
    """
    A history that cannot be opened is news for /healthz, but its path and
    the error's text are for the log only.
    """
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("")
    hub = hub_process(config=f'[history]\npath = "{blocked}/statushub.db"\n')
    answer = exchange(hub.port, requestHead("GET", "/healthz", hub.port))
    assert answer.code == 200
    text = answer.body.decode()
    assert str(blocked) not in text and "not-a-directory" not in text
    assert "statushub.db" not in text and "Errno" not in text
    assert answer.json()["history"] == "cannot open"
