"""
The request guards, the roles and the audit line, on the site that
L{makeSite} builds, with requests sent as bytes over an in-memory transport
(twisted.web parses them as it would off a socket).  The API's change
resource is a recorder: what is under test is what reaches it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterator, Optional

import pytest
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import globalLogPublisher
from twisted.python.usage import UsageError
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request

from statushub import config as configuration
from statushub.deploy.control import ManagerControl
from statushub.deploy.manager import DeploymentManager
from statushub.hub import StatusHubFactory
from statushub.status import StatusBoard
from statushub.tap import Options
from statushub.web.audit import Audited
from statushub.web.guard import Hosts, Origin, parseAuthority
from statushub.web.roles import Roles
from statushub.web.deployments import deploymentsAPI
from statushub.web.site import makeSite
from tests.fakeengine import FakeEngine, callNow

PORT = 8080
HOST = f"127.0.0.1:{PORT}"
OWN_ORIGIN = f"http://{HOST}"
TOPOLOGY = json.dumps({"name": "demo", "nodes": [{"id": "a", "image": "x"}]}).encode()
JSON = "application/json"


@dataclass
class Response:
    code: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Recorder(Resource):
    """
    Stands in for the deployment resource: says what reached it.
    """

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[bytes, bytes]] = []

    def _answer(self, request: Request, code: int, body: dict) -> bytes:
        self.calls.append((request.method, request.content.read()))
        request.setResponseCode(code)
        request.setHeader(b"content-type", b"application/json")
        return json.dumps(body).encode()

    def render_POST(self, request: Request) -> bytes:
        if request.args.get(b"refuse"):
            return self._answer(request, 409, {"error": "a deployment exists"})
        return self._answer(request, 202, {"deployment": "demo"})

    def render_DELETE(self, request: Request) -> bytes:
        return self._answer(request, 202, {"deployment": "demo"})

    render_PUT = render_PATCH = render_DELETE


class Hub:
    """
    The site, built as the hub builds it, and a way to send it requests.
    """

    def __init__(self, **server: Any) -> None:
        config = configuration.defaults()
        for key, value in server.items():
            config.override("server", key, value)
        configuration.checkTogether(config)
        clock = Clock()
        board = StatusBoard(clock)
        self.recorder = Recorder()
        self.site = makeSite(
            board, StatusHubFactory(board, clock), config, api={"deployment": self.recorder}
        )

    def request(
        self,
        method: str = "GET",
        path: str = "/api/status",
        headers: Optional[dict[str, str]] = None,
        body: bytes = b"",
        host: Optional[str] = HOST,
    ) -> Response:
        return _parseResponse(self.send(method, path, headers, body, host).value())

    def send(
        self,
        method: str,
        path: str,
        headers: Optional[dict[str, str]] = None,
        body: bytes = b"",
        host: Optional[str] = HOST,
    ) -> StringTransport:
        """
        Send one request; return the transport the answer is written to.
        """
        lines = [f"{method} {path} HTTP/1.1"]
        if host is not None:
            lines.append(f"Host: {host}")
        for name, value in (headers or {}).items():
            lines.append(f"{name}: {value}")
        lines.append(f"Content-Length: {len(body)}")
        raw = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
        transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 40000))
        protocol = self.site.buildProtocol(transport.getPeer())
        protocol.makeConnection(transport)
        # the WebSocket resource takes the connection over from here
        transport.protocol = protocol
        protocol.dataReceived(raw)
        return transport

    def change(self, method: str = "POST", body: bytes = TOPOLOGY, **headers: str) -> Response:
        """
        A change request to the recorder, JSON unless told otherwise.
        """
        allHeaders = {"Content-Type": JSON} if body else {}
        allHeaders.update({name.replace("_", "-"): value for name, value in headers.items()})
        return self.request(method, "/api/deployment", allHeaders, body)


def _parseResponse(raw: bytes) -> Response:
    head, _, body = raw.partition(b"\r\n\r\n")
    statusLine, *headerLines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in headerLines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding") == "chunked":
        decoded = b""
        while True:
            size, _, body = body.partition(b"\r\n")
            length = int(size, 16)
            if length == 0:
                break
            decoded, body = decoded + body[:length], body[length + 2:]
        body = decoded
    return Response(int(statusLine.split()[1]), headers, body)


@pytest.fixture
def audit() -> Iterator[list[dict]]:
    """
    Every C{statushub.audit} event logged during the test.
    """
    events: list[dict] = []

    def observe(event: dict) -> None:
        if event.get("log_namespace") == "statushub.audit":
            events.append(event)

    globalLogPublisher.addObserver(observe)
    yield events
    globalLogPublisher.removeObserver(observe)


# ---- Host ---------------------------------------------------------------------

SERVED_HOSTS = [
    "127.0.0.1", HOST, "10.1.2.3:80", "[::1]", f"[::1]:{PORT}", "[fe80::1]:9",
    "localhost", f"localhost:{PORT}", "LocalHost",
]
REFUSED_HOSTS = [
    "evil.example", f"evil.example:{PORT}", "127.0.0.1.evil.example", "localhost.evil.example",
    f"user@127.0.0.1:{PORT}", "::1", "[::1", "[not-ip]:80", "127.0.0.1:99999", "127.0.0.1/x",
    "", "localhost.", "2130706433.evil",
]
PATHS = ["/", "/index.html", "/app.js", "/api/status", "/api/nothing", "/ws/status",
         "/healthz", "/nothing"]


@pytest.mark.parametrize("host", SERVED_HOSTS)
def test_ipLiteralsAndLocalhostAreServed(host: str) -> None:
    assert Hub().request(host=host).code == 200


@pytest.mark.parametrize("host", REFUSED_HOSTS)
def test_otherHostsAreRefused(host: str) -> None:
    response = Hub().request(host=host)
    assert response.code == 403
    assert "is not served here" in response.json()["error"]


@pytest.mark.parametrize("path", PATHS)
def test_hostCheckCoversEveryPath(path: str) -> None:
    hub = Hub()
    refused = hub.request(path=path, host="rebound.example:8080")
    assert refused.code == 403
    assert set(refused.json()) == {"error"}
    # HEAD: a static file's body would need a running reactor to be sent
    assert hub.request("HEAD", path).code != 403


def test_requestWithoutHostIsRefused() -> None:
    assert Hub().request(host=None).code == 403


def test_hostCheckComesBeforeTheToken() -> None:
    """
    A rebinding page learns nothing, not even that a token is wanted.
    """
    response = Hub(token="op").request(host="evil.example")
    assert response.code == 403
    assert "www-authenticate" not in response.headers


def test_configuredNamesAreServed() -> None:
    hub = Hub(allowed_hosts=["hub.example.com", "pinned.example:8443"])
    for host in ["hub.example.com", "HUB.Example.com:8080", "pinned.example:8443",
                 "127.0.0.1", "localhost:1"]:
        assert hub.request(host=host).code == 200, host
    for host in ["other.example.com", "pinned.example", "pinned.example:8080",
                 "sub.hub.example.com"]:
        assert hub.request(host=host).code == 403, host


def test_starTurnsTheHostCheckOff() -> None:
    assert Hub(allowed_hosts=["*"]).request(host="anything.example").code == 200


def test_webSocketUpgradeWithForeignHostIsRefused() -> None:
    upgrade = {
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version": "13",
    }
    hub = Hub()
    assert hub.request(path="/ws/status", headers=upgrade, host="evil.example").code == 403
    assert hub.request(path="/ws/status", headers=upgrade).code == 101


def test_parseAuthority() -> None:
    assert parseAuthority("[::1]:80") == ("::1", 80)
    assert parseAuthority("[0:0::1]") == ("::1", None)
    assert parseAuthority("Example.COM:1") == ("example.com", 1)
    assert parseAuthority("a:b") is None
    assert parseAuthority("a b") is None
    assert Hosts([]).allows(None) is False


def test_originParts() -> None:
    assert Origin.parse("http://127.0.0.1") == Origin("http", "127.0.0.1", 80)
    assert Origin.parse("HTTPS://Hub.example/") == Origin("https", "hub.example", 443)
    assert Origin.parse("null") is None
    assert Origin.parse("file:///x") is None


# ---- cross-site changes ---------------------------------------------------------


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_changeFromAnotherOriginIsRefused(method: str) -> None:
    hub = Hub()
    response = hub.change(method, Origin="http://evil.example")
    assert response.code == 403
    assert "cross-site" in response.json()["error"]
    assert "http://evil.example" in response.json()["error"]
    assert hub.recorder.calls == []


@pytest.mark.parametrize(
    "origin",
    [
        f"http://127.0.0.1:{PORT + 1}",  # another port is another origin
        f"http://localhost:{PORT}",  # and another name for the same place
        "null",  # a sandboxed frame, a file:// page
    ],
)
def test_nearlyOwnOriginsAreOthers(origin: str) -> None:
    hub = Hub()
    assert hub.change(Origin=origin).code == 403
    assert hub.recorder.calls == []


def test_ownOriginBehindATLSProxyPasses() -> None:
    """
    A proxy that ends TLS forwards C{Host} as the browser sent it, over plain
    HTTP: the page's C{https} origin is still the hub's own.  The host and
    port decide; a C{Host} without a port means the origin scheme's default.
    """
    hub = Hub()

    def change(origin: str, host: str) -> int:
        headers = {"Content-Type": JSON, "Origin": origin}
        return hub.request("POST", "/api/deployment", headers, TOPOLOGY, host=host).code

    assert change(f"https://{HOST}", HOST) == 202
    assert change("https://127.0.0.1", "127.0.0.1") == 202
    assert change("http://127.0.0.1", "127.0.0.1:80") == 202
    assert change("https://127.0.0.1:8443", "127.0.0.1") == 403
    assert change("https://127.0.0.1", "127.0.0.1:80") == 403


def test_changeFromOwnOriginPasses() -> None:
    hub = Hub()
    assert hub.change(Origin=OWN_ORIGIN).code == 202
    assert hub.change("DELETE", b"", Origin=OWN_ORIGIN).code == 202
    assert [method for method, _ in hub.recorder.calls] == [b"POST", b"DELETE"]
    assert hub.recorder.calls[0][1] == TOPOLOGY


def test_allowedOriginsMayChange() -> None:
    hub = Hub(allowed_origins=["https://dash.example/"])
    assert hub.change(Origin="https://dash.example").code == 202
    assert hub.change(Origin="https://dash.example:443").code == 202
    assert hub.change(Origin="http://dash.example").code == 403


def test_secFetchSiteCrossSiteWithoutOriginIsRefused() -> None:
    hub = Hub()
    assert hub.change(Sec_Fetch_Site="cross-site").code == 403
    for value in ["same-origin", "same-site", "none"]:
        assert hub.change(Sec_Fetch_Site=value).code == 202, value
    assert hub.change().code == 202  # a program: no Origin, no Sec-Fetch-Site
    assert len(hub.recorder.calls) == 4


def test_readsFromAnotherOriginPass() -> None:
    """
    Reading is the token's business (and the browser's: no CORS headers).
    """
    response = Hub().request(headers={"Origin": "http://evil.example"})
    assert response.code == 200


# ---- the content type ------------------------------------------------------------


@pytest.mark.parametrize(
    "contentType",
    [
        "text/plain",
        "text/plain;charset=UTF-8",
        "application/x-www-form-urlencoded",
        "application/jsonx",
        "application/json-seq",
    ],
)
def test_bodyThatIsNotJSONGets415(contentType: str) -> None:
    hub = Hub()
    response = hub.change(Content_Type=contentType)
    assert response.code == 415
    assert "application/json" in response.json()["error"]
    assert contentType in response.json()["error"]
    assert hub.recorder.calls == []


def test_bodyWithoutContentTypeGets415() -> None:
    hub = Hub()
    response = hub.request("POST", "/api/deployment", {}, TOPOLOGY)
    assert response.code == 415
    assert hub.recorder.calls == []


@pytest.mark.parametrize(
    "contentType", ["application/json", "application/json; charset=utf-8", "Application/JSON"]
)
def test_jsonBodyPasses(contentType: str) -> None:
    assert Hub().change(Content_Type=contentType).code == 202


def test_changeWithoutBodyNeedsNoContentType() -> None:
    assert Hub().change("DELETE", b"").code == 202


# ---- roles --------------------------------------------------------------------


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def twoRoles() -> Hub:
    return Hub(token="op", viewer_token="view")


def test_viewerReads(twoRoles: Hub) -> None:
    assert twoRoles.request(headers=bearer("view")).code == 200
    assert twoRoles.request(path="/api/status?token=view").code == 200


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_viewerCannotChange(twoRoles: Hub, method: str) -> None:
    response = twoRoles.change(method, Authorization="Bearer view")
    assert response.code == 403
    error = response.json()["error"]
    assert "operator token" in error and "[server] token" in error
    assert twoRoles.recorder.calls == []


def test_operatorDoesEverything(twoRoles: Hub) -> None:
    assert twoRoles.request(headers=bearer("op")).code == 200
    assert twoRoles.change(Authorization="Bearer op").code == 202
    assert twoRoles.change("DELETE", b"", Authorization="Bearer op").code == 202
    assert len(twoRoles.recorder.calls) == 2


@pytest.mark.parametrize("headers", [{}, bearer("nope"), bearer(""), {"Authorization": "Basic op"}])
def test_wrongOrMissingTokenGets401(twoRoles: Hub, headers: dict[str, str]) -> None:
    for response in [
        twoRoles.request(headers=headers),
        twoRoles.change(**{name.replace("-", "_"): v for name, v in headers.items()}),
        twoRoles.request(path="/ws/status", headers=headers),
    ]:
        assert response.code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")
    assert twoRoles.recorder.calls == []


def test_operatorTokenAloneAsBefore() -> None:
    hub = Hub(token="op")
    assert hub.request(headers=bearer("op")).code == 200
    assert hub.change(Authorization="Bearer op").code == 202
    assert hub.request(headers=bearer("view")).code == 401


def test_noTokensMeansOpen() -> None:
    hub = Hub()
    assert hub.request().code == 200
    assert hub.change().code == 202


def test_openPartsStayOpen(twoRoles: Hub) -> None:
    assert twoRoles.request(path="/healthz").code == 200
    assert twoRoles.request("HEAD", "/").code == 200


def test_guardMountsAResourceForViewerAndOperatorInOneLine(twoRoles: Hub) -> None:
    """
    What /metrics will do: readable with either token, changeable by none
    but the operator.
    """

    class Metrics(Resource):
        isLeaf = True

        def render_GET(self, request: Request) -> bytes:
            return b"up 1\n"

    twoRoles.site.resource.putChild(b"metrics", twoRoles.site.roles.guard(Metrics()))
    for token in ["view", "op"]:
        response = twoRoles.request(path="/metrics", headers=bearer(token))
        assert (response.code, response.body) == (200, b"up 1\n")
    assert twoRoles.request(path="/metrics").code == 401
    assert twoRoles.request(path="/metrics", host="evil.example").code == 403
    viewerPost = twoRoles.request("POST", "/metrics", bearer("view"))
    assert viewerPost.code == 403


def test_viewerTokenNeedsAnOperatorToken() -> None:
    with pytest.raises(ValueError, match="operator token"):
        Roles("", "view")
    loaded = configuration.defaults()
    loaded.override("server", "viewer_token", "view")
    with pytest.raises(configuration.ConfigError) as error:
        configuration.checkTogether(loaded)
    assert "[server] viewer_token" in str(error.value)
    assert "[server] token" in str(error.value)


def test_viewerTokenMustDifferFromOperatorToken() -> None:
    loaded = configuration.defaults()
    loaded.override("server", "token", "same")
    loaded.override("server", "viewer_token", "same")
    with pytest.raises(configuration.ConfigError, match="the same as"):
        configuration.checkTogether(loaded)


# ---- tokens from the environment ---------------------------------------------------


def configFile(tmp_path, text: str) -> str:
    path = tmp_path / "statushub.toml"
    path.write_text(text)
    return str(path)


def test_environmentOverridesTheFile(tmp_path, monkeypatch) -> None:
    path = configFile(tmp_path, '[server]\ntoken = "file-op"\nviewer_token = "file-view"\n')
    monkeypatch.setenv("STATUSHUB_TOKEN", "env-op")
    monkeypatch.setenv("STATUSHUB_VIEWER_TOKEN", "env-view")
    options = Options()
    options.parseOptions(["--config", path])
    assert options.config["server"]["token"] == "env-op"
    assert options.config["server"]["viewer_token"] == "env-view"


def test_emptyEnvironmentVariableIsUnset(tmp_path, monkeypatch) -> None:
    path = configFile(tmp_path, '[server]\ntoken = "file-op"\n')
    monkeypatch.setenv("STATUSHUB_TOKEN", "")
    options = Options()
    options.parseOptions(["--config", path])
    assert options.config["server"]["token"] == "file-op"


def test_viewerTokenFromEnvironmentAloneStopsTheStart(monkeypatch) -> None:
    monkeypatch.delenv("STATUSHUB_TOKEN", raising=False)
    monkeypatch.setenv("STATUSHUB_VIEWER_TOKEN", "view")
    with pytest.raises(UsageError) as error:
        Options().parseOptions([])
    assert "viewer_token" in str(error.value) and "[server] token" in str(error.value)


def test_operatorTokenFromEnvironmentCompletesTheFile(tmp_path, monkeypatch) -> None:
    path = configFile(tmp_path, '[server]\nviewer_token = "view"\n')
    monkeypatch.setenv("STATUSHUB_TOKEN", "op")
    options = Options()
    options.parseOptions(["--config", path])
    assert options.config["server"]["token"] == "op"


# ---- the audit line ------------------------------------------------------------

FIELDS = {"action", "role", "peer", "deployment", "outcome", "reason", "code"}


def only(events: list[dict]) -> dict:
    assert len(events) == 1, events
    event = events[0]
    assert FIELDS <= set(event)
    assert event["peer"] == "127.0.0.1:40000"
    return event


def test_acceptedDeployIsAudited(twoRoles: Hub, audit: list[dict]) -> None:
    twoRoles.change(Authorization="Bearer op")
    event = only(audit)
    assert (event["action"], event["role"], event["deployment"], event["outcome"]) == (
        "deploy", "operator", "demo", "accepted"
    )
    assert event["code"] == 202 and event["reason"] is None


def test_acceptedTeardownIsAudited(twoRoles: Hub, audit: list[dict]) -> None:
    twoRoles.change("DELETE", b"", Authorization="Bearer op")
    event = only(audit)
    assert (event["action"], event["role"], event["outcome"]) == (
        "teardown", "operator", "accepted"
    )


def test_refusalByTheResourceIsAudited(twoRoles: Hub, audit: list[dict]) -> None:
    twoRoles.request("POST", "/api/deployment?refuse=1", {**bearer("op"), "Content-Type": JSON},
                     TOPOLOGY)
    event = only(audit)
    assert (event["outcome"], event["code"], event["reason"]) == (
        "refused", 409, "a deployment exists"
    )
    assert event["deployment"] == "demo"


@pytest.mark.parametrize(
    "headers, role, code, words",
    [
        ({"Authorization": "Bearer nope"}, "unauthenticated", 401, "valid token"),
        ({}, "unauthenticated", 401, "valid token"),
        ({"Authorization": "Bearer view"}, "viewer", 403, "operator token"),
        ({"Authorization": "Bearer op", "Origin": "http://evil.example"}, "operator", 403,
         "cross-site"),
        ({"Authorization": "Bearer op", "Sec-Fetch-Site": "cross-site"}, "operator", 403,
         "cross-site"),
        ({"Authorization": "Bearer op", "Content-Type": "text/plain"}, "operator", 415,
         "Content-Type"),
        ({"Authorization": "Bearer op", "Host": "evil.example"}, "operator", 403, "host"),
    ],
)
def test_refusalsByTheGuardsAreAudited(
    twoRoles: Hub, audit: list[dict], headers: dict, role: str, code: int, words: str
) -> None:
    headers = {"Content-Type": JSON, **headers}
    host = headers.pop("Host", HOST)
    twoRoles.request("POST", "/api/deployment", headers, TOPOLOGY, host=host)
    event = only(audit)
    assert (event["action"], event["role"], event["outcome"], event["code"]) == (
        "deploy", role, "refused", code
    )
    assert words in event["reason"]
    # refused as soon as the headers were in: the body was never read, so
    # the line cannot name the deployment in it
    assert event["deployment"] is None
    assert twoRoles.recorder.calls == []


def test_refusedTeardownOfANamedDeploymentNamesIt(twoRoles: Hub, audit: list[dict]) -> None:
    """
    C{DELETE /api/deployments/NAME} has no body: the name comes from the path.
    """
    twoRoles.request("DELETE", "/api/deployments/alpha", bearer("view"))
    event = only(audit)
    assert (event["action"], event["role"], event["outcome"], event["code"]) == (
        "teardown", "viewer", "refused", 403
    )
    assert event["deployment"] == "alpha"


def test_answerGivenLaterIsAuditedWhenFinished(audit: list[dict]) -> None:
    """
    A resource that answers later (C{NOT_DONE_YET}) is audited when it does,
    with the reason its answer gives.
    """

    class Later(Resource):
        isLeaf = True
        pending: list[Request] = []

        def render_POST(self, request: Request) -> object:
            self.pending.append(request)
            return NOT_DONE_YET

    hub = Hub(token="op")
    later = Later()
    hub.site.resource.putChild(b"later", Audited(later, hub.site.roles.identify))
    transport = hub.send("POST", "/later", {**bearer("op"), "Content-Type": JSON}, TOPOLOGY)
    assert audit == []
    [request] = later.pending
    request.setResponseCode(409)
    request.write(json.dumps({"error": "busy"}).encode())
    request.finish()
    assert _parseResponse(transport.value()).code == 409
    event = only(audit)
    assert (event["role"], event["outcome"], event["code"], event["reason"]) == (
        "operator", "refused", 409, "busy"
    )


def test_readsAreNotAudited(twoRoles: Hub, audit: list[dict]) -> None:
    twoRoles.request(headers=bearer("view"))
    twoRoles.request()
    twoRoles.request(host="evil.example")
    assert audit == []


# ---- the audit line on the deployments' own paths --------------------------------


@pytest.fixture
def deploymentsHub() -> Hub:
    """
    The site with the real deployments API on the in-memory engine.
    """
    hub = Hub(token="op", viewer_token="view")
    clock = Clock()
    board = StatusBoard(clock)
    manager = DeploymentManager(FakeEngine(), board, clock, 2.0, followEvents=False,
                                runInThread=callNow)
    config = configuration.defaults()
    config.override("server", "token", "op")
    config.override("server", "viewer_token", "view")
    hub.site = makeSite(
        board, StatusHubFactory(board, clock), config,
        api=deploymentsAPI(ManagerControl(manager, board), board),
    )
    return hub


def test_theDeploymentsPathsNameTheDeployment(deploymentsHub: Hub, audit: list[dict]) -> None:
    """
    Deploy and teardown on C{/api/deployments}: every line names the
    deployment, from the body, the answer or the path, accepted or refused.
    """
    operator = {**bearer("op"), "Content-Type": JSON}
    topology = json.dumps(
        {"name": "web", "nodes": [{"id": "n0", "image": "statushub/busybox"}]}
    ).encode()
    assert deploymentsHub.request("POST", "/api/deployments", operator, topology).code == 202
    assert deploymentsHub.request("DELETE", "/api/deployments/ghost", bearer("op")).code == 404
    assert deploymentsHub.request("DELETE", "/api/deployments/web", bearer("view")).code == 403
    assert deploymentsHub.request("DELETE", "/api/deployments/web", bearer("op")).code == 202
    lines = [(e["action"], e["deployment"], e["role"], e["outcome"], e["code"]) for e in audit]
    assert lines == [
        ("deploy", "web", "operator", "accepted", 202),
        ("teardown", "ghost", "operator", "refused", 404),
        ("teardown", "web", "viewer", "refused", 403),
        ("teardown", "web", "operator", "accepted", 202),
    ]
