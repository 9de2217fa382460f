"""
The node actions' HTTP API (C{POST /api/deployments/NAME/nodes/NODE/ACTION})
and C{GET /api/whoami}, on the fake engine, through the site the hub builds
(its guards and roles included), with treq's StubTreq: codes and bodies, the
roles, the body rule, the audit line; a control that answers later.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.logger import globalLogPublisher

from statushub import config as configuration
from statushub.deploy.control import ManagerControl
from statushub.deploy.manager import DeploymentManager
from statushub.errors import UnknownNode
from statushub.hub import StatusHubFactory
from statushub.interfaces import IDeploymentControl
from statushub.status import StatusBoard
from statushub.topology import validateTopology
from statushub.web.deployments import deploymentsAPI
from statushub.web.site import makeSite
from tests.fakeengine import FakeEngine, callNow
from tests.siteclient import SiteClient, answered, fired

OPERATOR = "operator-token"
VIEWER = "viewer-token"


def siteWith(control: IDeploymentControl, board: StatusBoard, clock: Clock,
             tokens: bool = True) -> SiteClient:
    config = configuration.defaults()
    if tokens:
        config.override("server", "token", OPERATOR)
        config.override("server", "viewer_token", VIEWER)
    site = makeSite(board, StatusHubFactory(board, clock), config,
                    api=deploymentsAPI(control, board), reactor=clock)
    return SiteClient(site)


class World:
    def __init__(self, tokens: bool = True) -> None:
        clock = Clock()
        self.engine = FakeEngine()
        self.board = StatusBoard(clock)
        self.manager = DeploymentManager(self.engine, self.board, clock, 2.0,
                                         followEvents=False, runInThread=callNow)
        self.clock = clock
        self.client = siteWith(ManagerControl(self.manager, self.board), self.board, clock, tokens)
        # polling, as the hub does: an action's end asks for a poll at once
        self.manager.startService()
        self.manager.deploy(validateTopology({"name": "demo", "nodes": [
            {"id": "web", "image": "statushub/busybox", "restart": "any"},
            {"id": "db", "image": "statushub/busybox"},
        ]}))

    def act(self, node: str, action: str, token: str = OPERATOR, body: bytes = b"{}",
            headers: dict[str, str] = {}, name: str = "demo") -> tuple[int, Any]:
        allHeaders = {"Authorization": f"Bearer {token}", **headers} if token else dict(headers)
        answer = self.client.request(
            "POST", f"/api/deployments/{name}/nodes/{node}/{action}", body or None, allHeaders
        )
        self.clock.advance(0)
        return answer.code, answer.json()


@pytest.fixture
def world():
    return World()


@pytest.fixture
def audit():
    lines: list[dict] = []

    def observe(event: dict) -> None:
        if event.get("log_namespace") == "statushub.audit":
            lines.append(event)

    globalLogPublisher.addObserver(observe)
    yield lines
    globalLogPublisher.removeObserver(observe)


def test_actions(world, audit) -> None:
    """
    202 with the picture when started, 200 when there is nothing to do;
    each audited with the action and the node.
    """
    code, body = world.act("web", "stop")
    assert code == 202 and body["deployment"] == "demo" and body["type"] == "status_update"
    [web] = [n for n in body["nodeStatuses"] if n["nodeId"] == "web"]
    assert web["stoppedBy"] == "operator"
    assert world.act("web", "stop")[0] == 200
    assert world.act("web", "start")[0] == 202
    assert world.act("web", "start")[0] == 200
    old = world.engine.idsByNode()["db"]
    code, body = world.act("db", "recreate", body=b"")
    assert code == 202
    assert world.engine.idsByNode()["db"] != old
    assert world.act("db", "restart", body=b" {} ")[0] == 202
    assert [(e["action"], e["node"], e["deployment"], e["outcome"], e["code"]) for e in audit] == [
        ("stop", "web", "demo", "accepted", 202), ("stop", "web", "demo", "accepted", 200),
        ("start", "web", "demo", "accepted", 202), ("start", "web", "demo", "accepted", 200),
        ("recreate", "db", "demo", "accepted", 202), ("restart", "db", "demo", "accepted", 202),
    ]


def test_refusals(world, audit) -> None:
    """
    Each refusal has its code, names the problem, and reaches no engine.
    """
    world.engine.calls.clear()
    cases = [
        (dict(node="web", action="stop", token=VIEWER), 403, "viewer"),
        (dict(node="web", action="stop", token=""), 401, "token"),
        (dict(node="web", action="stop", headers={"Origin": "http://evil.example"}), 403, "origin"),
        (dict(node="web", action="stop", body=b"stop", headers={"Content-Type": "text/plain"}),
         415, "application/json"),
        (dict(node="web", action="stop", body=b'{"now": true}'), 400, "empty body or {}"),
        (dict(node="web", action="stop", body=b"{nope"), 400, "not valid JSON"),
        (dict(node="nope", action="stop"), 404, "has no node 'nope'"),
        (dict(node="web", action="stop", name="nope"), 404, "no deployment named 'nope'"),
        (dict(node="web", action="explode"), 404, "not a node action"),
        (dict(node="Web!", action="stop"), 404, "has no node"),
    ]
    for kwargs, code, words in cases:
        answer, body = world.act(**kwargs)
        assert answer == code and words in body["error"], (kwargs, answer, body)
    assert not [c for c in world.engine.calls if c != "listContainers"]
    assert [(e["action"], e["code"]) for e in audit] == [
        ("stop", 403), ("stop", 401), ("stop", 403), ("stop", 415), ("stop", 400), ("stop", 400),
        ("stop", 404), ("stop", 404), ("node action", 404), ("stop", 404),
    ]
    assert world.client.request("GET", "/api/deployments/demo/nodes/web/stop",
                                headers={"Authorization": f"Bearer {OPERATOR}"}).code == 405
    # nor a HEAD (twisted.web's own looked for render_GET: a 500)
    head = world.client.request("HEAD", "/api/deployments/demo/nodes/web/stop",
                                headers={"Authorization": f"Bearer {OPERATOR}"})
    assert (head.code, head.headers["allow"]) == (405, "POST")


def test_conflicts(world) -> None:
    """
    409 naming the action under way; 409 while the deployment is torn down.
    """
    world.engine.hold.add("restartContainer")
    assert world.act("web", "restart")[0] == 202
    code, body = world.act("web", "stop")
    assert code == 409 and "a restart is under way" in body["error"]
    assert body["deployments"] == ["demo"]
    world.engine.hold.add("removeContainer")
    world.manager.teardown("demo")
    code, body = world.act("db", "start")
    assert code == 409 and "'demo' is tearing_down" in body["error"]
    world.engine.hold.clear()
    world.engine.release()
    world.engine.release()
    assert world.engine.containers == {}


def test_laterAnswer() -> None:
    """
    A control that answers later (a leader, for a follower): the request
    waits for it, then gets its code.
    """
    clock = Clock()
    board = StatusBoard(clock)
    pending: list[Deferred] = []

    class Later:
        def deploy(self, topology):
            raise AssertionError

        def teardown(self, name):
            raise AssertionError

        def act(self, name, node, action):
            d: Deferred = Deferred()
            pending.append(d)
            return d

    client = siteWith(Later(), board, clock, tokens=False)
    d = client.send("POST", "/api/deployments/demo/nodes/web/restart", b"{}")
    assert not answered(d)
    pending.pop().errback(UnknownNode("demo", "web"))
    client.flush()
    answer = fired(d)
    assert answer.code == 404 and "has no node 'web'" in json.loads(answer.body)["error"]
    d = client.send("POST", "/api/deployments/demo/nodes/web/restart", b"{}")
    pending.pop().callback((True, board.current("demo")))
    client.flush()
    assert fired(d).code == 202


def test_whoami(world) -> None:
    """
    What a token may do: the operator changes, the viewer reads; none is
    refused when tokens are set; without tokens anyone may change.
    """
    def whoami(client: SiteClient, token: str = "") -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        answer = client.request("GET", "/api/whoami", headers=headers)
        return answer.code, answer.json()

    assert whoami(world.client, OPERATOR) == (200, {"role": "operator", "canChange": True})
    assert whoami(world.client, VIEWER) == (200, {"role": "viewer", "canChange": False})
    assert whoami(world.client)[0] == 401
    assert whoami(World(tokens=False).client) == (200, {"role": "anonymous", "canChange": True})
