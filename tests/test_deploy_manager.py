"""
The deployment manager's state machine, polling, events and recovery, on the
in-memory engine with a L{task.Clock}.
"""

from __future__ import annotations

import pytest
from twisted.internet.task import Clock
from zope.interface.verify import verifyObject

from statushub.deploy.manager import DeploymentConflict, DeploymentManager, EngineHealth
from statushub.deploy.topology import validateTopology
from statushub.engine import DEPLOYMENT_LABEL, EngineError, EngineEvent
from statushub.interfaces import IContainerEngine, IHealthCheck
from statushub.status import StatusBoard
from tests.fakeengine import FakeEngine, callNow

INTERVAL = 2.0


def topology(*nodeIds: str, image: str = "statushub/busybox", name: str = "demo"):
    return validateTopology(
        {
            "name": name,
            "nodes": [
                {"id": n, "image": image if n != "bad" else "no/such-image",
                 "healthcheck": {"test": ["CMD-SHELL", "true"]}}
                for n in nodeIds
            ],
        }
    )


class Recorder:
    def __init__(self) -> None:
        self.messages: list[dict] = []

    def broadcast(self, message: dict) -> None:
        self.messages.append(message)

    @property
    def statuses(self) -> list[str]:
        return [m["deployStatus"] for m in self.messages]


@pytest.fixture
def world():
    clock = Clock()
    engine = FakeEngine()
    board = StatusBoard(clock)
    sink = Recorder()
    board.addSink(sink)
    manager = DeploymentManager(engine, board, clock, INTERVAL, runInThread=callNow)
    yield clock, engine, board, sink, manager
    engine.assertStreamsClosed()


def test_interfaces(world) -> None:
    clock, engine, board, sink, manager = world
    verifyObject(IContainerEngine, engine)
    verifyObject(IHealthCheck, EngineHealth(board))


def test_deployAndTeardown(world) -> None:
    """
    idle -> deploying -> deployed, polled; teardown -> tearing_down -> idle
    with no nodes, polling stopped, every container removed.
    """
    clock, engine, board, sink, manager = world
    manager.deploy(topology("web", "db", "cache"))
    assert board.picture.deployStatus == "deployed"
    assert manager.poller.started
    assert [n.status for n in board.picture.nodeStatuses] == ["running"] * 3
    assert [n.health for n in board.picture.nodeStatuses] == ["starting"] * 3
    assert sink.statuses[0] == "deploying"
    assert len(engine.containers) == 3

    for containerId in engine.containers:
        engine.set(containerId, health="healthy")
    clock.advance(INTERVAL)
    assert [n.health for n in board.picture.nodeStatuses] == ["healthy"] * 3

    assert manager.teardown() is not None
    assert not manager.poller.started
    assert engine.containers == {}
    assert "tearing_down" in sink.statuses
    final = sink.messages[-1]
    assert final["deployStatus"] == "idle" and final["nodeStatuses"] == []
    assert [m["seq"] for m in sink.messages] == list(range(1, len(sink.messages) + 1))
    polls = manager.poller.polls
    clock.advance(INTERVAL * 5)
    assert manager.poller.polls == polls


def test_onlyChangesEmit(world) -> None:
    clock, engine, board, sink, manager = world
    manager.deploy(topology("web"))
    count = len(sink.messages)
    clock.advance(INTERVAL * 3)
    assert len(sink.messages) == count
    engine.set(engine.idsByNode()["web"], status="exited", health=None)
    clock.advance(INTERVAL)
    assert len(sink.messages) == count + 1
    assert sink.messages[-1]["nodeStatuses"][0]["status"] == "exited"


def test_oneListPerPoll(world) -> None:
    """
    A poll costs one engine call, however many containers there are.
    """
    clock, engine, board, sink, manager = world
    manager.deploy(topology(*[f"n{i}" for i in range(12)]))
    engine.calls.clear()
    clock.advance(INTERVAL)
    assert engine.calls == ["listContainers"]


def test_pollsNeverOverlap(world) -> None:
    clock, engine, board, sink, manager = world
    manager.deploy(topology("web"))
    engine.holdLists = True
    clock.advance(INTERVAL)
    assert len(engine.heldLists) == 1
    manager.poller.pollSoon(0)
    clock.advance(INTERVAL * 3)
    assert len(engine.heldLists) == 1  # still the one poll
    engine.holdLists = False
    engine.releaseLists()
    # the on-demand poll asked for meanwhile runs once, right after
    assert engine.calls.count("listContainers") >= 2


def test_secondDeployConflicts(world) -> None:
    clock, engine, board, sink, manager = world
    manager.deploy(topology("web"))
    with pytest.raises(DeploymentConflict, match="deployed"):
        manager.deploy(topology("other", name="two"))
    assert len(engine.containers) == 1


def test_teardownWhileDeployingConflicts(world) -> None:
    clock, engine, board, sink, manager = world
    engine.holdLists = True
    manager.deploy(topology("web"))
    # the fake's starts are immediate; hold the deploy in "deploying" by hand
    board.change(deployStatus="deploying")
    with pytest.raises(DeploymentConflict):
        manager.teardown()


def test_teardownWhenIdle(world) -> None:
    clock, engine, board, sink, manager = world
    assert manager.teardown() is None
    assert sink.messages == []


def test_missingImageRemovesEverything(world) -> None:
    """
    A node that cannot be created: what was created is removed, the status
    is failed with the reason, nothing polls.
    """
    clock, engine, board, sink, manager = world
    manager.deploy(topology("web", "db", "bad"))
    assert engine.containers == {}
    assert board.picture.deployStatus == "failed"
    assert "'bad'" in board.picture.error and "no such image" in board.picture.error
    assert board.picture.nodeStatuses == ()
    assert not manager.poller.started
    # failed allows a fresh deploy
    manager.deploy(topology("web"))
    assert board.picture.deployStatus == "deployed"
    assert board.picture.error is None


def test_startFailureRemovesEverything(world) -> None:
    clock, engine, board, sink, manager = world
    engine.failNext["startContainer"] = EngineError("start container x: boom")
    manager.deploy(topology("web", "db"))
    assert engine.containers == {}
    assert board.picture.deployStatus == "failed"
    assert "boom" in board.picture.error


def test_engineErrorDoesNotStopPolling(world) -> None:
    """
    The engine goes away: nodes unknown, engine unreachable, polling goes
    on; it comes back: everything recovers by itself.
    """
    clock, engine, board, sink, manager = world
    health = EngineHealth(board)
    manager.deploy(topology("web", "db"))
    assert health.health() == "reachable"
    engine.reachable = False
    clock.advance(INTERVAL)
    assert [n.status for n in board.picture.nodeStatuses] == ["unknown", "unknown"]
    assert health.health() == "unreachable"
    assert board.picture.deployStatus == "deployed"
    clock.advance(INTERVAL * 3)
    assert manager.poller.started
    engine.reachable = True
    clock.advance(INTERVAL)
    assert [n.status for n in board.picture.nodeStatuses] == ["running", "running"]
    assert health.health() == "reachable"


def test_removedContainerIsMissing(world) -> None:
    clock, engine, board, sink, manager = world
    manager.deploy(topology("web", "db"))
    del engine.containers[engine.idsByNode()["db"]]
    clock.advance(INTERVAL)
    assert [n.status for n in board.picture.nodeStatuses] == ["running", "missing"]


def test_recoverAdopts(world) -> None:
    """
    A new manager on an engine holding a deployment adopts it and polls.
    """
    clock, engine, board, sink, manager = world
    manager.deploy(topology("web", "db", "cache"))
    mapping = manager.mapping
    manager.stop()

    board2 = StatusBoard(clock)
    manager2 = DeploymentManager(engine, board2, clock, INTERVAL, runInThread=callNow)
    manager2.start()
    assert board2.picture.deployStatus == "deployed"
    assert board2.picture.deployment == "demo"
    assert manager2.mapping == mapping  # node order kept
    assert manager2.poller.started
    manager2.teardown()
    assert engine.containers == {}
    assert board2.picture.deployStatus == "idle"
    assert manager2.stop().called


def test_recoverWaitsForEngine(world) -> None:
    clock, engine, board, sink, manager = world
    manager.deploy(topology("web"))
    manager.stop()
    engine.reachable = False
    board2 = StatusBoard(clock)
    manager2 = DeploymentManager(engine, board2, clock, INTERVAL, runInThread=callNow)
    manager2.start()
    assert board2.picture.engine == "unreachable"
    assert board2.picture.deployStatus == "idle"
    clock.advance(INTERVAL * 3)  # events reconnect with backoff meanwhile
    engine.reachable = True
    clock.advance(INTERVAL)
    assert board2.picture.deployStatus == "deployed"
    assert board2.picture.engine == "reachable"
    manager2.stop()


def event(engine: FakeEngine, node: str, action: str) -> EngineEvent:
    containerId = engine.idsByNode()[node]
    return EngineEvent(containerId, action, engine.containers[containerId]["labels"])


def test_eventsBeatThePoll(world) -> None:
    """
    A die event shows at once, even though the engine's list still says
    running (as Docker 20.10's may for a moment); the poll does not flip it
    back; once the list agrees the event's word is dropped.
    """
    clock, engine, board, sink, manager = world
    manager.start()
    manager.deploy(topology("web", "db"))
    [stream] = engine.streams
    stream.push(event(engine, "db", "die"))
    assert [n.status for n in board.picture.nodeStatuses] == ["running", "exited"]
    count = len(sink.messages)
    clock.advance(INTERVAL)  # the list still says running
    assert [n.status for n in board.picture.nodeStatuses] == ["running", "exited"]
    assert len(sink.messages) == count
    engine.set(engine.idsByNode()["db"], status="exited", health=None)
    clock.advance(INTERVAL)
    assert manager._overlay == {}
    manager.stop()
    assert stream.closed


def test_healthEvent(world) -> None:
    clock, engine, board, sink, manager = world
    manager.start()
    manager.deploy(topology("web"))
    engine.streams[0].push(event(engine, "web", "health_status: unhealthy"))
    assert board.picture.nodeStatuses[0].health == "unhealthy"
    manager.stop()


def test_eventsOfStrangersIgnored(world) -> None:
    clock, engine, board, sink, manager = world
    manager.start()
    manager.deploy(topology("web"))
    count = len(sink.messages)
    engine.streams[0].push(EngineEvent("f" * 64, "die", {DEPLOYMENT_LABEL: "other"}))
    assert len(sink.messages) == count
    manager.stop()


def test_eventWordExpires(world) -> None:
    """
    An event the list never confirms (say the container was started again
    while the stream was down) stops counting after a while: polling wins.
    """
    clock, engine, board, sink, manager = world
    manager.start()
    manager.deploy(topology("web"))
    engine.streams[0].push(event(engine, "web", "die"))
    assert board.picture.nodeStatuses[0].status == "exited"
    clock.advance(max(5.0, 3 * INTERVAL) + INTERVAL)
    assert board.picture.nodeStatuses[0].status == "running"
    manager.stop()


def test_eventStreamReconnectsWithBackoff(world) -> None:
    clock, engine, board, sink, manager = world
    manager.start()
    assert manager.events.connections == 1
    engine.reachable = False
    engine.streams[0].push(None)  # the stream breaks
    assert not manager.events.connected
    clock.advance(0.5)
    clock.advance(1.0)
    assert manager.events.connections == 1  # still failing, waiting longer
    engine.reachable = True
    clock.advance(2.0)
    assert manager.events.connected and manager.events.connections == 2
    manager.stop()
    assert engine.streams[1].closed


def test_unreachableDeployFails(world) -> None:
    clock, engine, board, sink, manager = world
    engine.reachable = False
    manager.deploy(topology("web"))
    assert board.picture.deployStatus == "failed"
    assert board.picture.engine == "unreachable"
    assert "cannot reach" in board.picture.error


def test_failedTeardownCanBeRetried(world) -> None:
    clock, engine, board, sink, manager = world
    manager.deploy(topology("web", "db"))
    engine.reachable = False
    manager.teardown()
    assert board.picture.deployStatus == "failed"
    assert "teardown failed" in board.picture.error
    assert len(engine.containers) == 2
    engine.reachable = True
    manager.teardown()
    assert board.picture.deployStatus == "idle"
    assert engine.containers == {}


def test_execEventsCostNothing(world) -> None:
    """
    Every health check run is an exec_* event; none of them costs a poll.
    """
    clock, engine, board, sink, manager = world
    manager.start()
    manager.deploy(topology("web"))
    engine.calls.clear()
    for action in ("exec_create: true", "exec_start: true", "exec_die"):
        engine.streams[0].push(event(engine, "web", action))
    clock.advance(1.0)
    assert engine.calls == []
    engine.streams[0].push(event(engine, "web", "oom"))
    clock.advance(0)
    assert engine.calls == ["listContainers"]
    manager.stop()
