"""
Several deployments at once on the in-memory engine with a L{task.Clock}:
one list call per poll for all of them, events routed by label, teardown
and failure kept to their own deployment, adoption of everything labelled.
"""

from __future__ import annotations

import pytest
from twisted.internet.task import Clock

from statushub.deploy.adoption import foundDeployments
from statushub.deploy.manager import DeploymentManager
from statushub.topology import validateTopology
from statushub.engine import (
    DEPLOYMENT_LABEL,
    INDEX_LABEL,
    NODE_LABEL,
    NODES_LABEL,
    ContainerState,
    EngineEvent,
)
from statushub.status import StatusBoard
from tests.fakeengine import FakeEngine, callNow

INTERVAL = 2.0
NAMES = ("alpha", "bravo", "charlie")


def topology(name: str, *nodeIds: str, image: str = "statushub/busybox"):
    return validateTopology(
        {"name": name, "nodes": [{"id": n, "image": image} for n in nodeIds or ("web", "db")]}
    )


class Recorder:
    def __init__(self) -> None:
        self.messages: list[dict] = []

    def broadcast(self, message: dict) -> None:
        self.messages.append(message)

    def about(self, name: str) -> list[dict]:
        return [m for m in self.messages if m["deployment"] == name]


@pytest.fixture
def world():
    clock = Clock()
    engine = FakeEngine(images=("statushub/busybox",))
    board = StatusBoard(clock)
    sink = Recorder()
    board.addSink(sink)
    managers: list[DeploymentManager] = []

    def makeManager(onBoard: StatusBoard = board) -> DeploymentManager:
        manager = DeploymentManager(engine, onBoard, clock, INTERVAL, runInThread=callNow)
        managers.append(manager)
        return manager

    manager = makeManager()
    manager.startService()
    for name in NAMES:
        manager.deploy(topology(name))
    yield clock, engine, board, sink, manager, makeManager
    for each in managers:
        if each.running:
            each.stopService()
    engine.assertStreamsClosed()


def containerOf(engine: FakeEngine, name: str, node: str) -> str:
    [containerId] = [
        cid for cid, c in engine.containers.items()
        if c["labels"][DEPLOYMENT_LABEL] == name and c["labels"][NODE_LABEL] == node
    ]
    return containerId


def statuses(board: StatusBoard, name: str) -> list[str]:
    return [n.status for n in board.picture(name).nodeStatuses]


def test_threeDeployedAtOnce(world) -> None:
    clock, engine, board, sink, manager, _ = world
    assert manager.names() == list(NAMES) == board.names()
    for name in NAMES:
        picture = board.picture(name)
        assert picture.deployStatus == "deployed"
        assert [n.nodeId for n in picture.nodeStatuses] == ["web", "db"]
        ids = {n.containerId for n in picture.nodeStatuses}
        assert ids == {containerOf(engine, name, "web"), containerOf(engine, name, "db")}


def test_onePollIsOneListCallForAll(world) -> None:
    clock, engine, board, sink, manager, _ = world
    engine.calls.clear()
    clock.advance(INTERVAL)
    assert engine.calls == ["listContainers"]


def test_aChangeIsNewsOnlyForItsDeployment(world) -> None:
    clock, engine, board, sink, manager, _ = world
    clock.advance(INTERVAL)
    before = len(sink.messages)
    engine.set(containerOf(engine, "bravo", "db"), status="exited", exitCode=0)
    clock.advance(INTERVAL)
    # the change, and what the hub's one look at the dead container adds
    assert {m["deployment"] for m in sink.messages[before:]} == {"bravo"}
    assert statuses(board, "bravo") == ["running", "exited"]
    assert statuses(board, "alpha") == statuses(board, "charlie") == ["running", "running"]


def test_seqIsPerDeployment(world) -> None:
    clock, engine, board, sink, manager, _ = world
    engine.set(containerOf(engine, "alpha", "web"), status="paused")
    clock.advance(INTERVAL)
    for name in NAMES:
        seqs = [m["seq"] for m in sink.about(name)]
        assert seqs == list(range(1, len(seqs) + 1))
    assert len(sink.about("alpha")) == len(sink.about("bravo")) + 1


def test_eventRoutedByLabel(world) -> None:
    clock, engine, board, sink, manager, _ = world
    clock.advance(INTERVAL)
    before = len(sink.messages)
    containerId = containerOf(engine, "charlie", "web")
    [stream] = engine.streams
    # a die carries the exit code, as Docker's does
    labels = {**engine.containers[containerId]["labels"], "exitCode": "0"}
    stream.push(EngineEvent(containerId, "die", labels))
    assert {m["deployment"] for m in sink.messages[before:]} == {"charlie"}
    assert statuses(board, "charlie") == ["exited", "running"]


def test_eventWithoutLabelsRoutedByContainer(world) -> None:
    clock, engine, board, sink, manager, _ = world
    clock.advance(INTERVAL)
    containerId = containerOf(engine, "alpha", "db")
    engine.streams[0].push(EngineEvent(containerId, "pause", {}))
    assert statuses(board, "alpha") == ["running", "paused"]
    assert statuses(board, "bravo") == ["running", "running"]


def test_eventOfAnotherHubsDeploymentIgnored(world) -> None:
    """
    A deployment this hub does not have (another hub's on the same engine)
    costs nothing, even with a container id one of ours once had.
    """
    clock, engine, board, sink, manager, _ = world
    clock.advance(INTERVAL)
    before = len(sink.messages)
    containerId = containerOf(engine, "alpha", "web")
    engine.streams[0].push(EngineEvent(containerId, "die", {DEPLOYMENT_LABEL: "elsewhere"}))
    assert sink.messages[before:] == []


def test_teardownLeavesTheOthersAlone(world) -> None:
    clock, engine, board, sink, manager, _ = world
    others = {cid for cid, c in engine.containers.items()
              if c["labels"][DEPLOYMENT_LABEL] != "bravo"}
    manager.teardown("bravo")
    assert set(engine.containers) == others
    assert manager.names() == ["alpha", "charlie"] == board.names()
    final = sink.about("bravo")[-1]
    assert (final["deployStatus"], final["nodeStatuses"]) == ("idle", [])
    assert manager.polling  # the others are still polled
    engine.set(containerOf(engine, "alpha", "web"), status="exited")
    clock.advance(INTERVAL)
    assert statuses(board, "alpha") == ["exited", "running"]
    manager.teardown("alpha")
    manager.teardown("charlie")
    assert engine.containers == {} and not manager.polling


def test_failedDeployRemovesOnlyItsOwn(world) -> None:
    clock, engine, board, sink, manager, _ = world
    before = set(engine.containers)
    manager.deploy(topology("delta", "web", "db", image="no/such-image"))
    assert board.picture("delta").deployStatus == "failed"
    assert set(engine.containers) == before
    for name in NAMES:
        assert board.picture(name).deployStatus == "deployed"


def test_restartedHubAdoptsEveryDeploymentInOneCall(world) -> None:
    clock, engine, board, sink, manager, makeManager = world
    mappings = {name: manager.get(name).mapping for name in NAMES}
    manager.stopService()
    board2 = StatusBoard(clock)
    manager2 = makeManager(board2)
    engine.calls.clear()
    manager2.startService()
    assert engine.calls == ["listContainers", "events"]
    assert manager2.names() == list(NAMES) == board2.names()
    for name in NAMES:
        assert manager2.get(name).mapping == mappings[name]
        assert board2.picture(name).deployStatus == "deployed"
        assert statuses(board2, name) == ["running", "running"]
    assert manager2.polling
    manager2.stopService()


def test_partlyGoneDeploymentIsAdoptedWithMissingNodes(world) -> None:
    clock, engine, board, sink, manager, makeManager = world
    manager.stopService()
    del engine.containers[containerOf(engine, "bravo", "web")]
    board2 = StatusBoard(clock)
    manager2 = makeManager(board2)
    manager2.startService()
    picture = board2.picture("bravo")
    assert picture.deployStatus == "deployed"
    assert [(n.nodeId, n.status) for n in picture.nodeStatuses] == [
        ("web", "missing"), ("db", "running")]
    assert picture.nodeStatuses[0].containerId == ""
    # it can be torn down like any other
    manager2.teardown("bravo")
    assert "bravo" not in board2.names()
    assert all(c["labels"][DEPLOYMENT_LABEL] != "bravo" for c in engine.containers.values())
    manager2.stopService()


def test_unreachableEngineMakesEveryNodeUnknown(world) -> None:
    clock, engine, board, sink, manager, _ = world
    engine.reachable = False
    clock.advance(INTERVAL)
    for name in NAMES:
        assert statuses(board, name) == ["unknown", "unknown"]
        assert board.picture(name).engine == "unreachable"
    assert manager.engineState == "unreachable"


# The pure grouping behind adoption.


def state(cid: str, name: str, node: str, index: int, nodes: str = None) -> ContainerState:
    labels = {DEPLOYMENT_LABEL: name, NODE_LABEL: node, INDEX_LABEL: str(index)}
    if nodes is not None:
        labels[NODES_LABEL] = nodes
    return ContainerState(cid, "running", None, labels)


def test_foundDeploymentsGroupsAndOrders() -> None:
    found = foundDeployments([
        state("c2", "a", "db", 1, "web,db"),
        state("c1", "a", "web", 0, "web,db"),
        state("c3", "b", "x", 0, "x"),
    ])
    assert found == {"a": [("web", "c1"), ("db", "c2")], "b": [("x", "c3")]}


def test_foundDeploymentsNamesTheNodesThatAreGone() -> None:
    found = foundDeployments([state("c2", "a", "db", 1, "web,db,cache")])
    assert found == {"a": [("web", ""), ("db", "c2"), ("cache", "")]}


def test_foundDeploymentsWithoutTheNodeListLabel() -> None:
    # containers of an older hub: their own nodes, by index
    found = foundDeployments([state("c2", "a", "db", 1), state("c1", "a", "web", 0)])
    assert found == {"a": [("web", "c1"), ("db", "c2")]}


def test_adoptionStillHappensWhenADeployCameFirst(world) -> None:
    """
    The engine is down when the hub starts; it comes back and a deploy gets
    in before the next check: the deployments found on the engine are still
    adopted, beside the new one.
    """
    clock, engine, board, sink, manager, makeManager = world
    manager.stopService()
    engine.reachable = False
    board2 = StatusBoard(clock)
    manager2 = makeManager(board2)
    manager2.startService()
    assert manager2.names() == [] and manager2.engineState == "unreachable"
    engine.reachable = True
    manager2.deploy(topology("delta"))
    assert manager2.polling
    clock.advance(INTERVAL)
    assert manager2.names() == ["alpha", "bravo", "charlie", "delta"]
    assert statuses(board2, "bravo") == ["running", "running"]
