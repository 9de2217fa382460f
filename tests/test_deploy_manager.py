"""
The deployment manager and its deployments: the state machine, polling,
events and recovery, one deployment and several, on the in-memory engine
with a L{task.Clock}.
"""

from __future__ import annotations

import pytest
from twisted.internet.task import Clock
from zope.interface.verify import verifyObject

from statushub.deploy.manager import (
    DeploymentConflict,
    DeploymentManager,
    EngineHealth,
    UnknownDeployment,
)
from statushub.deploy.details import RELOOKS
from statushub.topology import validateTopology
from statushub.engine import DEPLOYMENT_LABEL, EngineError, EngineEvent
from statushub.interfaces import IContainerEngine, IHealthCheck
from statushub.status import Picture, StatusBoard
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
    manager.startService()
    # the start's own message (the engine's word on the idle picture) is
    # not what the tests look at
    sink.messages.clear()
    engine.calls.clear()
    yield clock, engine, board, sink, manager
    if manager.running:
        manager.stopService()
    engine.assertStreamsClosed()


def test_interfaces(world) -> None:
    clock, engine, board, sink, manager = world
    verifyObject(IContainerEngine, engine)
    verifyObject(IHealthCheck, EngineHealth(manager))


def test_deployAndTeardown(world) -> None:
    """
    idle -> deploying -> deployed, polled; teardown -> tearing_down -> idle
    with no nodes, polling stopped, every container removed.
    """
    clock, engine, board, sink, manager = world
    manager.deploy(topology("web", "db", "cache"))
    assert board.picture("demo").deployStatus == "deployed"
    assert manager.polling
    assert [n.status for n in board.picture("demo").nodeStatuses] == ["running"] * 3
    assert [n.health for n in board.picture("demo").nodeStatuses] == ["starting"] * 3
    assert sink.statuses[0] == "deploying"
    assert len(engine.containers) == 3

    for containerId in engine.containers:
        engine.set(containerId, health="healthy")
    clock.advance(INTERVAL)
    assert [n.health for n in board.picture("demo").nodeStatuses] == ["healthy"] * 3

    assert manager.teardown("demo") is not None
    assert not manager.polling
    assert engine.containers == {}
    assert "tearing_down" in sink.statuses
    final = sink.messages[-1]
    assert final["deployStatus"] == "idle" and final["nodeStatuses"] == []
    mine = [m["seq"] for m in sink.messages if m["deployment"] == "demo"]
    assert mine == list(range(1, len(mine) + 1))
    polls = manager.poller.polls
    clock.advance(INTERVAL * 5)
    assert manager.poller.polls == polls


def test_onlyChangesEmit(world) -> None:
    clock, engine, board, sink, manager = world
    manager.deploy(topology("web"))
    count = len(sink.messages)
    clock.advance(INTERVAL * 3)
    assert len(sink.messages) == count
    engine.set(engine.idsByNode()["web"], status="exited", exitCode=0, health=None)
    clock.advance(INTERVAL)
    assert sink.messages[count]["nodeStatuses"][0]["status"] == "exited"
    # and the one look at a dead container (for an OOM kill) may add what it
    # tells (the restart count); then nothing more
    after = len(sink.messages)
    assert after in (count + 1, count + 2)
    clock.advance(INTERVAL * 3)
    assert len(sink.messages) == after


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


def test_duplicateNameConflicts(world) -> None:
    clock, engine, board, sink, manager = world
    manager.deploy(topology("web"))
    with pytest.raises(DeploymentConflict, match="'demo' exists") as caught:
        manager.deploy(topology("other"))
    assert caught.value.deployments == ["demo"]
    assert len(engine.containers) == 1
    # another name deploys beside it
    manager.deploy(topology("other", name="two"))
    assert manager.names() == ["demo", "two"]
    assert len(engine.containers) == 2


def test_limitConflicts(world) -> None:
    clock, engine, board, sink, manager = world
    manager.maxDeployments = 2
    manager.deploy(topology("web", name="a"))
    manager.deploy(topology("web", name="b"))
    with pytest.raises(DeploymentConflict, match="limit of 2") as caught:
        manager.deploy(topology("web", name="c"))
    assert caught.value.deployments == ["a", "b"]
    assert "c" not in board.names() and len(engine.containers) == 2
    manager.teardown("a")
    manager.deploy(topology("web", name="c"))
    assert manager.names() == ["b", "c"]


def test_teardownWhileDeployingConflicts(world) -> None:
    clock, engine, board, sink, manager = world
    manager.deploy(topology("web"))
    # the fake's starts are immediate; hold the deploy in "deploying" by hand
    deployment = manager.get("demo")
    deployment.picture = deployment.picture.evolve(deployStatus="deploying")
    with pytest.raises(DeploymentConflict, match="deploying"):
        manager.teardown("demo")


def test_teardownOfUnknownName(world) -> None:
    clock, engine, board, sink, manager = world
    with pytest.raises(UnknownDeployment, match="'demo'"):
        manager.teardown("demo")
    assert sink.messages == []


def test_missingImageRemovesEverything(world) -> None:
    """
    A node that cannot be created: what was created is removed, the status
    is failed with the reason, nothing polls.
    """
    clock, engine, board, sink, manager = world
    manager.deploy(topology("web", "db", "bad"))
    assert engine.containers == {}
    assert board.picture("demo").deployStatus == "failed"
    assert "'bad'" in board.picture("demo").error and "no such image" in board.picture("demo").error
    assert board.picture("demo").nodeStatuses == ()
    assert not manager.polling
    # failed allows a fresh deploy
    manager.deploy(topology("web"))
    assert board.picture("demo").deployStatus == "deployed"
    assert board.picture("demo").error is None


def test_startFailureRemovesEverything(world) -> None:
    clock, engine, board, sink, manager = world
    engine.failNext["startContainer"] = EngineError("start container x: boom")
    manager.deploy(topology("web", "db"))
    assert engine.containers == {}
    assert board.picture("demo").deployStatus == "failed"
    assert "boom" in board.picture("demo").error


def test_engineErrorDoesNotStopPolling(world) -> None:
    """
    The engine goes away: nodes unknown, engine unreachable, polling goes
    on; it comes back: everything recovers by itself.
    """
    clock, engine, board, sink, manager = world
    health = EngineHealth(manager)
    manager.deploy(topology("web", "db"))
    assert health.health() == "reachable"
    engine.reachable = False
    clock.advance(INTERVAL)
    assert [n.status for n in board.picture("demo").nodeStatuses] == ["unknown", "unknown"]
    assert health.health() == "unreachable"
    assert board.picture("demo").deployStatus == "deployed"
    clock.advance(INTERVAL * 3)
    assert manager.polling
    engine.reachable = True
    clock.advance(INTERVAL)
    assert [n.status for n in board.picture("demo").nodeStatuses] == ["running", "running"]
    assert health.health() == "reachable"


def test_removedContainerIsMissing(world) -> None:
    clock, engine, board, sink, manager = world
    manager.deploy(topology("web", "db"))
    del engine.containers[engine.idsByNode()["db"]]
    clock.advance(INTERVAL)
    assert [n.status for n in board.picture("demo").nodeStatuses] == ["running", "missing"]


def test_recoverAdopts(world) -> None:
    """
    A new manager on an engine holding a deployment adopts it and polls.
    """
    clock, engine, board, sink, manager = world
    manager.deploy(topology("web", "db", "cache"))
    mapping = manager.get("demo").mapping
    manager.stopService()

    board2 = StatusBoard(clock)
    manager2 = DeploymentManager(engine, board2, clock, INTERVAL, runInThread=callNow)
    manager2.startService()
    assert board2.picture("demo").deployStatus == "deployed"
    assert board2.picture("demo").deployment == "demo"
    assert manager2.get("demo").mapping == mapping  # node order kept
    assert manager2.polling
    manager2.teardown("demo")
    assert engine.containers == {}
    assert board2.picture("demo").deployStatus == "idle"
    assert manager2.stopService().called


def test_recoverEndsWhatTheEngineDoesNotHave(world) -> None:
    """
    A board that took over another's pictures (a new leader of several
    hubs) shows a deployment that has nothing on the engine (its first
    container was never made): recovery ends it, and adopts the others.
    """
    clock, engine, board, sink, manager = world
    manager.deploy(topology("web"))
    manager.stopService()
    board2 = StatusBoard(clock)
    shown = [board.current("demo"),
             Picture("deploying", deployment="ghost", engine="reachable").toMessage(3, "t", "")]
    board2.restore(shown)
    sink2 = Recorder()
    board2.addSink(sink2)
    manager2 = DeploymentManager(engine, board2, clock, INTERVAL, runInThread=callNow)
    manager2.startService()
    assert board2.names() == ["demo"]
    ended = [m for m in sink2.messages if m["deployment"] == "ghost"]
    assert [(m["deployStatus"], m["seq"]) for m in ended] == [("idle", 1)]
    manager2.stopService()


def test_recoverWaitsForEngine(world) -> None:
    clock, engine, board, sink, manager = world
    manager.deploy(topology("web"))
    manager.stopService()
    engine.reachable = False
    board2 = StatusBoard(clock)
    manager2 = DeploymentManager(engine, board2, clock, INTERVAL, runInThread=callNow)
    manager2.startService()
    assert board2.picture("demo").engine == "unreachable"
    assert board2.picture("demo").deployStatus == "idle"
    clock.advance(INTERVAL * 3)  # events reconnect with backoff meanwhile
    engine.reachable = True
    clock.advance(INTERVAL)
    assert board2.picture("demo").deployStatus == "deployed"
    assert board2.picture("demo").engine == "reachable"
    manager2.stopService()


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
    manager.deploy(topology("web", "db"))
    [stream] = engine.streams
    stream.push(event(engine, "db", "die"))
    assert [n.status for n in board.picture("demo").nodeStatuses] == ["running", "exited"]
    count = len(sink.messages)
    clock.advance(INTERVAL)  # the list still says running
    assert [n.status for n in board.picture("demo").nodeStatuses] == ["running", "exited"]
    assert len(sink.messages) == count
    engine.set(engine.idsByNode()["db"], status="exited", health=None)
    clock.advance(INTERVAL)
    assert manager.get("demo")._overlay == {}
    manager.stopService()
    assert stream.closed


def test_healthEvent(world) -> None:
    clock, engine, board, sink, manager = world
    manager.deploy(topology("web"))
    engine.streams[0].push(event(engine, "web", "health_status: unhealthy"))
    assert board.picture("demo").nodeStatuses[0].health == "unhealthy"
    manager.stopService()


def test_eventsOfStrangersIgnored(world) -> None:
    clock, engine, board, sink, manager = world
    manager.deploy(topology("web"))
    count = len(sink.messages)
    engine.streams[0].push(EngineEvent("f" * 64, "die", {DEPLOYMENT_LABEL: "other"}))
    assert len(sink.messages) == count
    manager.stopService()


def test_eventWordExpires(world) -> None:
    """
    An event the list never confirms (say the container was started again
    while the stream was down) stops counting after a while: polling wins.
    """
    clock, engine, board, sink, manager = world
    manager.deploy(topology("web"))
    engine.streams[0].push(event(engine, "web", "die"))
    assert board.picture("demo").nodeStatuses[0].status == "exited"
    clock.advance(max(5.0, 3 * INTERVAL) + INTERVAL)
    assert board.picture("demo").nodeStatuses[0].status == "running"
    manager.stopService()


def test_eventStreamReconnectsWithBackoff(world) -> None:
    clock, engine, board, sink, manager = world
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
    manager.stopService()
    assert engine.streams[1].closed


def test_unreachableDeployFails(world) -> None:
    clock, engine, board, sink, manager = world
    engine.reachable = False
    manager.deploy(topology("web"))
    assert board.picture("demo").deployStatus == "failed"
    assert board.picture("demo").engine == "unreachable"
    assert "cannot reach" in board.picture("demo").error


def test_failedTeardownCanBeRetried(world) -> None:
    clock, engine, board, sink, manager = world
    manager.deploy(topology("web", "db"))
    engine.reachable = False
    manager.teardown("demo")
    assert board.picture("demo").deployStatus == "failed"
    assert "teardown failed" in board.picture("demo").error
    assert len(engine.containers) == 2
    engine.reachable = True
    manager.teardown("demo")
    assert board.picture("demo").deployStatus == "idle"
    assert engine.containers == {}


def test_execEventsCostNothing(world) -> None:
    """
    Every health check run is an exec_* event; none of them costs a poll.
    """
    clock, engine, board, sink, manager = world
    manager.deploy(topology("web"))
    engine.calls.clear()
    for action in ("exec_create: true", "exec_start: true", "exec_die"):
        engine.streams[0].push(event(engine, "web", action))
    clock.advance(1.0)
    assert engine.calls == []
    engine.streams[0].push(event(engine, "web", "rename"))
    clock.advance(0)
    assert engine.calls == ["listContainers"]
    manager.stopService()


def test_eventAboutNoContainerPolls(world) -> None:
    """
    An event about no one container (a Swarm service or host changed) asks
    for a poll at once: the list says what changed.
    """
    clock, engine, board, sink, manager = world
    manager.deploy(topology("web"))
    engine.calls.clear()
    engine.streams[0].push(EngineEvent("", "node update"))
    clock.advance(0)
    assert engine.calls == ["listContainers"]
    manager.stopService()


def test_oomKilled(world) -> None:
    """
    A node the OOM killer ended says so (one look at it after its death),
    beside its exit code; one killed otherwise, with the same code, does
    not; started again, it no longer does.
    """
    clock, engine, board, sink, manager = world
    manager.deploy(topology("hungry", "killed"))
    ids = engine.idsByNode()
    engine.outOfMemory(ids["hungry"])
    engine.exit(ids["killed"], 137)
    clock.advance(INTERVAL)
    hungry, killed = board.picture("demo").nodeStatuses
    assert (hungry.status, hungry.exitCode, hungry.oomKilled) == ("exited", 137, True)
    assert (killed.status, killed.exitCode, killed.oomKilled) == ("exited", 137, None)
    message = sink.messages[-1]["nodeStatuses"]
    assert message[0]["oomKilled"] is True and message[0]["exitCode"] == 137
    assert "oomKilled" not in message[1]
    engine.startContainer(ids["hungry"])
    clock.advance(INTERVAL)
    assert board.picture("demo").nodeStatuses[0].oomKilled is None
    manager.stopService()


def test_oomMarkAfterTheDeath(world) -> None:
    """
    The engine may mark a container OOM-killed only after its die event
    (the look after the die saw no mark): its oom event is a look of its own.
    """
    clock, engine, board, sink, manager = world
    manager.deploy(topology("hungry"))
    [containerId] = engine.idsByNode().values()
    engine.exit(containerId, 137)
    clock.advance(0)
    assert board.picture("demo").nodeStatuses[0].oomKilled is None
    engine.containers[containerId]["oomKilled"] = True
    engine.streams[0].push(event(engine, "hungry", "oom"))
    clock.advance(0)
    [node] = board.picture("demo").nodeStatuses
    assert (node.status, node.exitCode, node.oomKilled) == ("exited", 137, True)
    manager.stopService()


def test_oomMarkAfterTheLook(world) -> None:
    """
    A death by SIGKILL whose look saw no OOM mark is looked at again a
    little later, a few times: the engine may set the mark a moment after
    the death, with no event of its own.
    """
    clock, engine, board, sink, manager = world
    manager.deploy(topology("hungry"))
    [containerId] = engine.idsByNode().values()
    engine.exit(containerId, 137)
    clock.advance(0)
    assert board.picture("demo").nodeStatuses[0].oomKilled is None
    engine.containers[containerId]["oomKilled"] = True  # set late, told by nothing
    clock.advance(INTERVAL)
    assert board.picture("demo").nodeStatuses[0].oomKilled is True
    engine.calls.clear()
    for _ in range(5):
        clock.advance(INTERVAL)
    assert board.picture("demo").nodeStatuses[0].oomKilled is True
    assert "inspectContainer" not in engine.calls
    manager.stopService()


def test_killedIsLookedAtAFewTimesOnly(world) -> None:
    """
    A node killed by someone else (137, never marked) costs a few more
    looks, then none.
    """
    clock, engine, board, sink, manager = world
    manager.deploy(topology("killed"))
    [containerId] = engine.idsByNode().values()
    engine.calls.clear()
    engine.exit(containerId, 137)
    for _ in range(10):
        clock.advance(INTERVAL)
    # its death's look (the die event's, maybe the poll's too), and those
    assert engine.calls.count("inspectContainer") <= 2 + RELOOKS
    engine.calls.clear()
    for _ in range(10):
        clock.advance(INTERVAL)
    assert "inspectContainer" not in engine.calls
    assert board.picture("demo").nodeStatuses[0].oomKilled is None
    manager.stopService()


def test_oomKilledWithoutAnEvent(world) -> None:
    """
    A death no event told of (it came while the deployment was deploying,
    or before the hub started): the poll that shows it makes the one look,
    and only one, however many polls follow.
    """
    clock, engine, board, sink, manager = world
    manager.deploy(topology("hungry"))
    [containerId] = engine.idsByNode().values()
    engine.set(containerId, status="exited", exitCode=137, health=None, oomKilled=True)
    engine.calls.clear()
    clock.advance(INTERVAL)
    [node] = board.picture("demo").nodeStatuses
    assert (node.status, node.exitCode, node.oomKilled) == ("exited", 137, True)
    clock.advance(INTERVAL * 3)
    assert engine.calls.count("inspectContainer") == 1
    manager.stopService()
