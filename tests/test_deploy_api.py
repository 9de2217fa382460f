"""
The deployments' HTTP API (C{/api/deployments}, C{/api/deployment},
C{/api/status}) on the fake engine, through the site the hub builds (its
guards included), with treq's StubTreq: status codes and bodies, with zero,
one and several deployments; a control that answers later.
"""

from __future__ import annotations

import json
from typing import Any, Iterator

import pytest
from twisted.internet.defer import Deferred, fail
from twisted.internet.task import Clock
from twisted.logger import globalLogPublisher
from zope.interface import implementer
from zope.interface.verify import verifyObject

from statushub import config as configuration
from statushub.deploy.control import ManagerControl
from statushub.deploy.manager import DeploymentManager
from statushub.errors import DeploymentConflict, RequestError
from statushub.hub import StatusHubFactory
from statushub.interfaces import IDeploymentControl
from statushub.status import StatusBoard
from statushub.web.deployments import deploymentsAPI
from statushub.web.site import makeSite
from tests.fakeengine import FakeEngine, callNow
from tests.siteclient import SiteClient, answered, fired

GOOD = {"name": "demo", "nodes": [{"id": "web", "image": "statushub/busybox"}]}


def named(name: str) -> bytes:
    return json.dumps(dict(GOOD, name=name)).encode()


def siteWith(control: IDeploymentControl, board: StatusBoard, clock: Clock) -> SiteClient:
    """
    The hub's site, as tap.py composes it, around C{control}.
    """
    site = makeSite(
        board, StatusHubFactory(board, clock), configuration.defaults(),
        api=deploymentsAPI(control, board), reactor=clock,
    )
    return SiteClient(site)


class API:
    def __init__(self) -> None:
        clock = Clock()
        self.engine = FakeEngine()
        self.board = StatusBoard(clock)
        self.manager = DeploymentManager(self.engine, self.board, clock, 2.0,
                                         followEvents=False, runInThread=callNow)
        self.client = siteWith(ManagerControl(self.manager, self.board), self.board, clock)

    def call(self, method: bytes, path: str, body: bytes = None) -> tuple[int, Any]:
        return self.client.call(method.decode(), "/api" + path, body)


@pytest.fixture
def api():
    world = API()
    return world, world.engine, world.board, world.manager


def call(world: API, method: bytes, path: str, body: bytes = None) -> tuple[int, Any]:
    return world.call(method, path, body)


# One deployment, the singular paths (as before several existed).


def test_deployThenConflictThenTeardown(api) -> None:
    root, engine, board, manager = api
    code, body = call(root, b"POST", "/deployment", json.dumps(GOOD).encode())
    assert code == 202 and body["type"] == "status_update" and body["deployment"] == "demo"
    assert board.picture("demo").deployStatus == "deployed"
    code, body = call(root, b"POST", "/deployment", json.dumps(GOOD).encode())
    assert code == 409 and "tear it down" in body["error"] and body["deployments"] == ["demo"]
    code, body = call(root, b"GET", "/status")
    assert code == 200 and body["deployment"] == "demo"
    code, body = call(root, b"DELETE", "/deployment")
    assert code == 202
    assert board.names() == [] and engine.containers == {}
    code, body = call(root, b"DELETE", "/deployment")
    assert code == 200 and body["deployStatus"] == "idle"


def test_invalidNamesFieldCreatesNothing(api) -> None:
    root, engine, board, manager = api
    bad = {"name": "demo", "nodes": [{"id": "web", "image": "x", "privileged": True}]}
    for path in ("/deployment", "/deployments"):
        code, body = call(root, b"POST", path, json.dumps(bad).encode())
        assert code == 400
        assert body["field"] == "nodes[0].privileged"
        assert "nodes[0].privileged" in body["error"]
    assert engine.calls == [] and board.names() == []


def test_notJSON(api) -> None:
    root, engine, board, manager = api
    code, body = call(root, b"POST", "/deployments", b"{nope")
    assert code == 400 and body["field"] == "body"
    assert engine.calls == []


@pytest.mark.parametrize(
    "raw, words, field",
    [
        (b"[" * 100_000, "nested more than", "body"),
        (b'{"name": "x", "nodes": [{"id": "a", "image": "i", '
         b'"healthcheck": {"test": ["CMD", "true"], "interval": NaN}}]}', "NaN",
         "nodes[0].healthcheck.interval"),
        (b'{"name": "x\\u0000", "nodes": []}', "NUL character in name", "name"),
    ],
)
def test_oddBodies(api, raw: bytes, words: str, field: str) -> None:
    """
    What JSON allows but nothing here can use: 400 naming it, and where it
    is (too large a body is the site's: tests/test_request_limits.py).
    """
    root, engine, board, manager = api
    code, body = call(root, b"POST", "/deployments", raw)
    assert (code, body["field"]) == (400, field) and words in body["error"]
    assert engine.calls == [] and board.names() == []


# Several deployments, the plural paths.


def test_listCreateGetDelete(api) -> None:
    root, engine, board, manager = api
    assert call(root, b"GET", "/deployments") == (200, {"deployments": []})
    for name in ("charlie", "alpha", "bravo"):
        code, body = call(root, b"POST", "/deployments", named(name))
        assert code == 202 and body["deployment"] == name
    code, body = call(root, b"GET", "/deployments")
    assert [p["deployment"] for p in body["deployments"]] == ["alpha", "bravo", "charlie"]
    assert all(p["type"] == "status_update" for p in body["deployments"])
    code, body = call(root, b"GET", "/deployments/bravo")
    assert code == 200 and body["deployment"] == "bravo" and body["deployStatus"] == "deployed"
    code, body = call(root, b"DELETE", "/deployments/bravo")
    assert code == 202
    assert board.names() == ["alpha", "charlie"]
    assert len(engine.containers) == 2


def test_duplicateNameIs409(api) -> None:
    root, engine, board, manager = api
    call(root, b"POST", "/deployments", named("alpha"))
    code, body = call(root, b"POST", "/deployments", named("alpha"))
    assert code == 409 and "'alpha'" in body["error"]
    assert len(engine.containers) == 1


def test_limitIs409(api) -> None:
    root, engine, board, manager = api
    manager.maxDeployments = 2
    call(root, b"POST", "/deployments", named("alpha"))
    call(root, b"POST", "/deployments", named("bravo"))
    code, body = call(root, b"POST", "/deployments", named("charlie"))
    assert code == 409 and "limit" in body["error"]
    assert board.names() == ["alpha", "bravo"]


@pytest.mark.parametrize("method", [b"GET", b"DELETE"])
@pytest.mark.parametrize("name", ["nothing", "Not_A-Name", "a" * 40])
def test_unknownNameIs404JSON(api, method, name) -> None:
    root, engine, board, manager = api
    call(root, b"POST", "/deployments", named("alpha"))
    code, body = call(root, method, f"/deployments/{name}")
    assert code == 404 and "no deployment named" in body["error"]
    assert board.names() == ["alpha"]


def test_teardownWhileDeployingIs409(api) -> None:
    root, engine, board, manager = api
    call(root, b"POST", "/deployments", named("alpha"))
    deployment = manager.get("alpha")
    deployment.picture = deployment.picture.evolve(deployStatus="deploying")
    code, body = call(root, b"DELETE", "/deployments/alpha")
    assert code == 409 and "deploying" in body["error"]


# The singular paths with zero, one and several deployments.


def test_singularPathsWithNone(api) -> None:
    root, engine, board, manager = api
    code, body = call(root, b"GET", "/status")
    assert code == 200 and body["deployment"] is None and body["deployStatus"] == "idle"
    code, body = call(root, b"DELETE", "/deployment")
    assert code == 200 and body["deployStatus"] == "idle"


def test_singularPathsWithSeveralAre409NamingThem(api) -> None:
    root, engine, board, manager = api
    call(root, b"POST", "/deployments", named("bravo"))
    call(root, b"POST", "/deployment", named("alpha"))
    code, body = call(root, b"GET", "/status")
    assert code == 409 and body["deployments"] == ["alpha", "bravo"]
    assert "alpha" in body["error"] and "bravo" in body["error"]
    code, body = call(root, b"DELETE", "/deployment")
    assert code == 409 and body["deployments"] == ["alpha", "bravo"]
    assert board.names() == ["alpha", "bravo"] and len(engine.containers) == 2
    # naming one is never ambiguous
    code, body = call(root, b"GET", "/status?deployment=bravo")
    assert code == 200 and body["deployment"] == "bravo"
    code, body = call(root, b"GET", "/status?deployment=zulu")
    assert code == 200 and (body["deployment"], body["deployStatus"]) == ("zulu", "idle")
    code, body = call(root, b"GET", "/status?deployment=Bad%20Name")
    assert code == 400 and body["field"] == "deployment"


@pytest.mark.parametrize(
    "method, path, allowed",
    [
        (b"PUT", "/deployments", "GET, HEAD, POST"),
        (b"POST", "/deployments/demo", "DELETE, GET, HEAD"),
        (b"GET", "/deployment", "DELETE, POST"),
        (b"DELETE", "/status", "GET, HEAD"),
    ],
)
def test_aMethodAPathDoesNotTakeIsAJSON405(api, method: bytes, path: str, allowed: str) -> None:
    root, engine, board, manager = api
    code, body = call(root, method, path)
    assert code == 405
    assert method.decode() in body["error"] and allowed in body["error"]
    assert engine.containers == {}


@pytest.mark.parametrize("path, allowed", [("/deployment", "DELETE, POST"),
                                           ("/deployments", "GET, HEAD, POST")])
def test_aHeadIsAGetWithoutItsBody(api, path: str, allowed: str) -> None:
    """
    A C{HEAD} where there is no C{GET} is a 405 like any other method
    (twisted.web's own asked for the missing render_GET: a 500).
    """
    root, engine, board, manager = api
    answer = root.client.request("HEAD", "/api" + path)
    assert answer.code == (200 if "GET" in allowed else 405)
    assert answer.body == b""
    if answer.code == 405:
        assert answer.headers["allow"] == allowed


# The API acts through an IDeploymentControl: one hub's answers at once,
# another (a follower handing the request on) later.


def test_managerControlAnswersAtOnce(api) -> None:
    world, engine, board, manager = api
    control = ManagerControl(manager, board)
    verifyObject(IDeploymentControl, control)
    picture = fired(control.deploy(validate(GOOD)))
    assert picture == board.current("demo") and picture["deployStatus"] == "deployed"
    refused = control.deploy(validate(GOOD))
    with pytest.raises(DeploymentConflict):
        fired(refused)
    assert fired(control.teardown("demo"))["deployment"] == "demo"


def validate(data: dict) -> Any:
    from statushub.topology import validateTopology

    return validateTopology(data)


@implementer(IDeploymentControl)
class LaterControl:
    """
    Answers when the test says: every call waits in C{calls}.
    """

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any, Deferred]] = []

    def deploy(self, topology: Any) -> Deferred:
        d: Deferred = Deferred()
        self.calls.append(("deploy", topology, d))
        return d

    def teardown(self, name: str) -> Deferred:
        d: Deferred = Deferred()
        self.calls.append(("teardown", name, d))
        return d


@pytest.fixture
def audit() -> Iterator[list[dict]]:
    events: list[dict] = []

    def observe(event: dict) -> None:
        if event.get("log_namespace") == "statushub.audit":
            events.append(event)

    globalLogPublisher.addObserver(observe)
    yield events
    globalLogPublisher.removeObserver(observe)


def test_answeredWhenTheControlFires(audit: list[dict]) -> None:
    """
    A change the control accepts or refuses later is answered then, with
    its picture or its refusal, and audited with the reason.
    """
    clock = Clock()
    board = StatusBoard(clock)
    control = LaterControl()
    client = siteWith(control, board, clock)

    deploying = client.send("POST", "/api/deployments", named("alpha"))
    [(what, topology, d)] = control.calls
    assert (what, topology.name) == ("deploy", "alpha")
    assert not answered(deploying) and audit == []
    d.callback({"deployment": "alpha", "deployStatus": "deploying"})
    client.flush()
    answer = fired(deploying)
    assert (answer.code, answer.json()["deployment"]) == (202, "alpha")
    assert answer.headers["content-type"] == "application/json"
    assert [(e["outcome"], e["deployment"], e["code"]) for e in audit] == [
        ("accepted", "alpha", 202)
    ]

    refused = client.send("POST", "/api/deployment", named("alpha"))
    control.calls[-1][2].errback(
        DeploymentConflict("the leader says: deployment 'alpha' exists", ["alpha"])
    )
    client.flush()
    answer = fired(refused)
    assert answer.code == 409
    assert answer.json() == {
        "error": "the leader says: deployment 'alpha' exists", "deployments": ["alpha"]
    }
    assert (audit[-1]["outcome"], audit[-1]["code"], audit[-1]["reason"]) == (
        "refused", 409, "the leader says: deployment 'alpha' exists"
    )


def test_refusalCarriesItsCode() -> None:
    """
    Any L{RequestError} is answered with its own code (503: nobody can
    carry the request out now).
    """

    class Unavailable(RequestError):
        code = 503

    @implementer(IDeploymentControl)
    class NoLeader:
        def deploy(self, topology: Any) -> Deferred:
            return fail(Unavailable("no leader"))

        def teardown(self, name: str) -> Deferred:
            return fail(Unavailable("no leader"))

    clock = Clock()
    board = StatusBoard(clock)
    client = siteWith(NoLeader(), board, clock)
    assert client.call("POST", "/api/deployments", named("alpha")) == (
        503, {"error": "no leader"}
    )


def test_unexpectedFailureIsA500(api) -> None:
    @implementer(IDeploymentControl)
    class Broken:
        def deploy(self, topology: Any) -> Deferred:
            return fail(RuntimeError("a bug"))

        def teardown(self, name: str) -> Deferred:
            return fail(RuntimeError("a bug"))

    clock = Clock()
    board = StatusBoard(clock)
    client = siteWith(Broken(), board, clock)
    code, body = client.call("POST", "/api/deployments", named("alpha"))
    assert code == 500 and "deploy failed" in body["error"]
