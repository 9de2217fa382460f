"""
The deployments' HTTP API (C{/api/deployments}, C{/api/deployment},
C{/api/status}) on the fake engine: status codes and bodies, with zero, one
and several deployments.
"""

from __future__ import annotations

import json
from io import BytesIO

import pytest
from twisted.internet.task import Clock
from twisted.web.resource import getChildForRequest
from twisted.web.test.requesthelper import DummyRequest

from statushub.deploy.control import ManagerControl
from statushub.deploy.manager import DeploymentManager
from statushub.status import StatusBoard
from statushub.web.deployments import MAX_BODY, deploymentsAPI
from statushub.web.site import APIRoot
from statushub.web.status import StatusResource
from tests.fakeengine import FakeEngine, callNow

GOOD = {"name": "demo", "nodes": [{"id": "web", "image": "statushub/busybox"}]}


def named(name: str) -> bytes:
    return json.dumps(dict(GOOD, name=name)).encode()


@pytest.fixture
def api():
    clock = Clock()
    engine = FakeEngine()
    board = StatusBoard(clock)
    manager = DeploymentManager(engine, board, clock, 2.0, followEvents=False,
                                runInThread=callNow)
    root = APIRoot()
    root.putChild(b"status", StatusResource(board))
    for name, resource in deploymentsAPI(ManagerControl(manager, board), board).items():
        root.putChild(name.encode(), resource)
    return root, engine, board, manager


def call(root, method: bytes, path: str, body: bytes = b"") -> tuple[int, dict]:
    path, _, query = path.partition("?")
    request = DummyRequest([part.encode() for part in path.strip("/").split("/")])
    request.method = method
    request.content = BytesIO(body)
    for pair in filter(None, query.split("&")):
        key, _, value = pair.partition("=")
        request.args.setdefault(key.encode(), []).append(value.encode())
    resource = getChildForRequest(root, request)
    written = resource.render(request)
    return request.responseCode or 200, json.loads(written)


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


def test_tooLarge(api) -> None:
    root, engine, board, manager = api
    code, body = call(root, b"POST", "/deployment", b" " * (MAX_BODY + 1))
    assert code == 413
    assert engine.calls == []


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
