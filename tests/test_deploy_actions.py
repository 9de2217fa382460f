"""
Node actions (restart, stop, start, recreate) in the deployment manager, on
the in-memory engine with a L{task.Clock}: what is accepted and refused, what
the feed shows while an action is under way and after it, an action that
fails half-way, a teardown that arrives meanwhile, adoption.
"""

from __future__ import annotations

import pytest
from twisted.internet.task import Clock

from statushub.deploy.actions import ACTION_OUTCOMES, NODE_ACTIONS
from statushub.deploy.manager import DeploymentConflict, DeploymentManager, UnknownDeployment
from statushub.topology import validateTopology
from statushub.engine import ENTRY_LABEL, EngineError, RecreateIncomplete
from statushub.errors import RequestError, UnknownNode
from statushub.status import StatusBoard
from tests.fakeengine import FakeEngine, callNow
from tests.test_deploy_manager import Recorder

INTERVAL = 2.0
GRACE = 7.0


def topology(name: str = "demo"):
    return validateTopology({
        "name": name,
        "nodes": [
            {"id": "web", "image": "statushub/busybox", "restart": "any",
             "healthcheck": {"test": ["CMD-SHELL", "true"]}},
            {"id": "db", "image": "statushub/busybox", "env": {"ROLE": "db"},
             "resources": {"memory": "64m", "cpus": 0.5}},
        ],
    })


class World:
    def __init__(self) -> None:
        self.clock = Clock()
        self.clock.advance(1_000_000)
        self.engine = FakeEngine()
        self.board = StatusBoard(self.clock)
        self.sink = Recorder()
        self.board.addSink(self.sink)
        self.outcomes: list[tuple[str, str]] = []
        self.manager = self.newManager()

    def newManager(self) -> DeploymentManager:
        return DeploymentManager(
            self.engine, self.board, self.clock, INTERVAL, runInThread=callNow,
            stopTimeout=GRACE, observeAction=lambda *outcome: self.outcomes.append(outcome),
        )

    def node(self, nodeId: str, name: str = "demo") -> dict:
        [node] = [n for n in self.board.current(name)["nodeStatuses"] if n["nodeId"] == nodeId]
        return node

    def container(self, nodeId: str) -> dict:
        return self.engine.containers[self.engine.idsByNode()[nodeId]]

    def poll(self, times: int = 1) -> None:
        for _ in range(times):
            self.clock.advance(INTERVAL)


@pytest.fixture
def world():
    world = World()
    world.manager.startService()
    world.manager.deploy(topology())
    yield world
    world.manager.stopService()
    world.engine.assertStreamsClosed()


def test_stopThenStart(world) -> None:
    """
    A stop marks the node stopped by the operator at once (its dying is no
    crash), with the action under way; done, the node is exited, its
    restart policy none while stopped, and stays so over several polls.  A
    start gives the policy back, runs it, clears the mark.
    """
    world.engine.hold.add("stopContainer")
    assert world.manager.act("demo", "web", "stop") is True
    under = world.node("web")
    assert (under["stoppedBy"], under["action"], under["status"]) == ("operator", "stop", "running")
    assert world.engine.release("stopContainer") == 1
    world.poll()
    stopped = world.node("web")
    assert (stopped["status"], stopped["stoppedBy"]) == ("exited", "operator")
    assert "action" not in stopped
    assert world.container("web")["restart"] == "none"
    assert ("stopContainer", GRACE) in world.engine.graces
    world.poll(5)
    assert world.node("web")["status"] == "exited" and world.node("web")["stoppedBy"] == "operator"
    # a second stop: nothing to do
    assert world.manager.act("demo", "web", "stop") is False

    world.clock.advance(1)
    assert world.manager.act("demo", "web", "start") is True
    world.poll()
    started = world.node("web")
    assert started["status"] == "running" and "stoppedBy" not in started
    assert started["since"] != stopped["since"]
    assert world.container("web")["restart"] == "any"
    # running: a start has nothing to do
    assert world.manager.act("demo", "web", "start") is False
    assert world.outcomes == [
        ("stop", "succeeded"), ("stop", "unchanged"), ("start", "succeeded"), ("start", "unchanged"),
    ]


def test_restart(world) -> None:
    """
    A restart keeps the container, starts it anew, and gives the node a new
    since even when no poll saw it down.
    """
    before = world.node("web")
    containerId = world.engine.idsByNode()["web"]
    started = {n: c["startedAt"] for n, c in ((n, world.container(n)) for n in ("web", "db"))}
    world.clock.advance(3)
    assert world.manager.act("demo", "web", "restart") is True
    after = world.node("web")
    assert after["containerId"] == containerId
    assert after["status"] == "running"
    assert after["since"] != before["since"]
    assert world.container("web")["startedAt"] > started["web"]
    assert ("restartContainer", GRACE) in world.engine.graces
    # the other node was not touched
    assert world.container("db")["startedAt"] == started["db"]


def test_recreate(world) -> None:
    """
    A recreate makes the node's container anew from the deploy's very spec;
    the old one is gone, the feed shows the new id.
    """
    old = world.engine.idsByNode()["db"]
    [deployed] = [s for s in world.engine.specs if dict(s.labels)["io.statushub.node"] == "db"]
    assert world.manager.act("demo", "db", "recreate") is True
    new = world.engine.idsByNode()["db"]
    assert new != old and old not in world.engine.containers
    assert len(world.engine.containers) == 2
    assert world.engine.specs[-1] == deployed
    assert deployed.stopTimeout == GRACE
    assert (deployed.resources.memory, deployed.resources.cpus) == (64 << 20, 0.5)
    world.poll()
    assert world.node("db")["containerId"] == new
    assert world.node("db")["status"] == "running"


def test_stopOfACrashedNodeKeepsItStopped(world) -> None:
    """
    A node that exited by itself is no stopped node yet (its restart policy
    could bring it back): a stop is carried out, and marks it.
    """
    world.engine.set(world.engine.idsByNode()["web"], status="exited", health=None, exitCode=1)
    world.poll()
    assert "stoppedBy" not in world.node("web")
    assert world.manager.act("demo", "web", "stop") is True
    assert world.node("web")["stoppedBy"] == "operator"
    assert world.container("web")["restart"] == "none"


def test_refusals(world) -> None:
    """
    Unknown deployment or node: 404s; a second action on a node while one is
    under way: 409 naming it (another node may be acted on); start or
    restart of a node without a container: 409 saying recreate.
    """
    with pytest.raises(UnknownDeployment):
        world.manager.act("nope", "web", "restart")
    with pytest.raises(UnknownNode) as unknown:
        world.manager.act("demo", "nope", "restart")
    assert unknown.value.code == 404 and "'nope'" in str(unknown.value)
    with pytest.raises(RequestError) as bad:
        world.manager.act("demo", "web", "explode")
    assert bad.value.code == 400

    world.engine.hold.add("restartContainer")
    assert world.manager.act("demo", "web", "restart")
    for action in NODE_ACTIONS:
        with pytest.raises(DeploymentConflict, match="a restart is under way") as busy:
            world.manager.act("demo", "web", action)
        assert busy.value.code == 409
    assert world.manager.act("demo", "db", "stop") is True
    world.engine.release()

    world.engine.containers.pop(world.engine.idsByNode()["db"])
    world.poll(4)  # past what the stop told (believed as an event is)
    assert world.node("db")["status"] == "missing"
    for action in ("start", "restart"):
        with pytest.raises(DeploymentConflict, match="recreate it"):
            world.manager.act("demo", "db", action)
    assert world.manager.act("demo", "db", "recreate") is True
    assert world.node("db")["status"] == "running"
    assert world.outcomes.count(("restart", "refused")) == 4
    assert {outcome for _, outcome in world.outcomes} <= set(ACTION_OUTCOMES)


def test_refusedWhileDeployingOrTearingDown(world) -> None:
    """
    Nodes are acted on only in a deployment that is deployed: 409 while it
    deploys or is torn down; nothing reaches the engine.
    """
    world.engine.hold.add("startContainer")
    world.manager.deploy(topology("other"))
    assert world.board.picture("other").deployStatus == "deploying"
    world.engine.calls.clear()
    with pytest.raises(DeploymentConflict, match="'other' is deploying"):
        world.manager.act("other", "web", "restart")
    world.engine.release()
    world.engine.hold.clear()

    world.engine.hold.add("removeContainer")
    world.manager.teardown("demo")
    with pytest.raises(DeploymentConflict, match="'demo' is tearing_down"):
        world.manager.act("demo", "web", "stop")
    assert not any(c.endswith(("stopContainer", "restartContainer")) for c in world.engine.calls)
    world.engine.release()
    world.engine.hold.clear()
    world.engine.release()


def test_teardownDuringAnAction(world) -> None:
    """
    A teardown that arrives while a recreate is under way waits for it, then
    removes everything, the new container too: nothing is left.
    """
    world.engine.hold.add("recreateContainer")
    assert world.manager.act("demo", "web", "recreate")
    world.manager.teardown("demo")
    assert world.board.picture("demo").deployStatus == "tearing_down"
    assert world.engine.release("recreateContainer") == 1
    assert world.engine.containers == {}
    assert world.sink.messages[-1]["deployStatus"] == "idle"
    assert ("removeContainer", GRACE) in world.engine.graces


def test_recreateFailsHalfWay(world) -> None:
    """
    A recreate whose old container went but whose new one could not be
    made: the node is still there, missing, and says what happened.
    """
    world.engine.failNext["recreateContainer"] = RecreateIncomplete(
        "create container 'x': no such image (the old container is removed; "
        "no new one was created)"
    )
    assert world.manager.act("demo", "web", "recreate") is True
    world.engine.containers.pop(world.engine.idsByNode()["web"])
    world.poll()
    node = world.node("web")
    assert node["status"] == "missing" and node["containerId"] == ""
    assert node["actionError"].startswith("recreate failed: create container")
    assert "old container is removed" in node["actionError"]
    assert world.outcomes[-1] == ("recreate", "failed")
    # the next action clears the error
    assert world.manager.act("demo", "web", "recreate") is True
    assert "actionError" not in world.node("web")


def test_failedStopUnmarks(world) -> None:
    """
    A stop the engine refused: the node is not marked stopped, and says why.
    """
    world.engine.failNext["stopContainer"] = EngineError("stop container abc: refused")
    assert world.manager.act("demo", "web", "stop") is True
    node = world.node("web")
    assert "stoppedBy" not in node and node["status"] == "running"
    assert node["actionError"] == "stop failed: stop container abc: refused"


def test_stalePollAndOutOfBandStart(world) -> None:
    """
    A list asked for before a stop ended that still shows the node running
    does not undo the mark; a node started behind the hub's back (seen
    running by a later poll) is no longer stopped.
    """
    webId = world.engine.idsByNode()["web"]
    world.engine.holdLists = True
    world.poll()  # a poll asks...
    assert world.manager.act("demo", "web", "stop")
    world.engine.set(webId, status="running")  # ...and the answer is from before the stop
    world.engine.releaseLists()
    assert world.node("web")["stoppedBy"] == "operator"
    world.engine.holdLists = False
    world.engine.set(webId, status="exited")
    world.poll()
    assert world.node("web")["stoppedBy"] == "operator"

    world.engine.set(webId, status="running")  # docker start, by hand
    world.poll(4)
    assert "stoppedBy" not in world.node("web")


def test_adoptedNodes(world) -> None:
    """
    A hub that adopts the deployment knows each node's topology entry from
    its container: a recreate makes the same container; a node stopped on
    purpose (in the board's last picture, or kept stopped by the engine)
    stays marked.  A container without the entry cannot be recreated.
    """
    assert world.manager.act("demo", "web", "stop")
    world.poll()
    [deployed] = [s for s in world.engine.specs if dict(s.labels)["io.statushub.node"] == "db"]
    world.manager.stopService()

    world.manager = world.newManager()
    world.manager.startService()
    assert world.manager.names() == ["demo"]
    assert world.node("web")["stoppedBy"] == "operator"
    assert world.manager.act("demo", "db", "recreate")
    assert world.engine.specs[-1] == deployed

    # the engine keeps it stopped (a Swarm service at 0 replicas)
    dbId = world.engine.idsByNode()["db"]
    world.engine.set(dbId, status="exited", keptStopped=True)
    world.poll()
    assert world.node("db")["stoppedBy"] == "operator"

    # a container made without its entry (an older hub's)
    del world.engine.containers[dbId]["labels"][ENTRY_LABEL]
    world.manager.stopService()
    world.manager = world.newManager()
    world.manager.startService()
    with pytest.raises(DeploymentConflict, match="does not know its topology entry"):
        world.manager.act("demo", "db", "recreate")
