"""
C{/api/deployment} on the fake engine: status codes and bodies.
"""

from __future__ import annotations

import json
from io import BytesIO

import pytest
from twisted.internet.task import Clock
from twisted.web.test.requesthelper import DummyRequest

from statushub.deploy.api import MAX_BODY, DeploymentResource
from statushub.deploy.manager import DeploymentManager
from statushub.status import StatusBoard
from tests.fakeengine import FakeEngine, callNow

GOOD = {"name": "demo", "nodes": [{"id": "web", "image": "statushub/busybox"}]}


@pytest.fixture
def api():
    clock = Clock()
    engine = FakeEngine()
    board = StatusBoard(clock)
    manager = DeploymentManager(engine, board, clock, 2.0, followEvents=False,
                                runInThread=callNow)
    return DeploymentResource(manager, board), engine, board


def call(resource: DeploymentResource, method: bytes, body: bytes = b"") -> tuple[int, dict]:
    request = DummyRequest([b""])
    request.method = method
    request.content = BytesIO(body)
    written = resource.render(request)
    return request.responseCode, json.loads(written)


def test_deployThenConflictThenTeardown(api) -> None:
    resource, engine, board = api
    code, body = call(resource, b"POST", json.dumps(GOOD).encode())
    assert code == 202 and body["type"] == "status_update"
    assert board.picture.deployStatus == "deployed"
    code, body = call(resource, b"POST", json.dumps(GOOD).encode())
    assert code == 409 and "tear it down" in body["error"]
    code, body = call(resource, b"DELETE")
    assert code == 202
    assert board.picture.deployStatus == "idle" and engine.containers == {}
    code, body = call(resource, b"DELETE")
    assert code == 200 and body["deployStatus"] == "idle"


def test_invalidNamesFieldCreatesNothing(api) -> None:
    resource, engine, board = api
    bad = {"name": "demo", "nodes": [{"id": "web", "image": "x", "privileged": True}]}
    code, body = call(resource, b"POST", json.dumps(bad).encode())
    assert code == 400
    assert body["field"] == "nodes[0].privileged"
    assert "nodes[0].privileged" in body["error"]
    assert engine.calls == [] and board.picture.deployStatus == "idle"


def test_notJSON(api) -> None:
    resource, engine, board = api
    code, body = call(resource, b"POST", b"{nope")
    assert code == 400 and body["field"] == "body"
    assert engine.calls == []


def test_tooLarge(api) -> None:
    resource, engine, board = api
    code, body = call(resource, b"POST", b" " * (MAX_BODY + 1))
    assert code == 413
    assert engine.calls == []
