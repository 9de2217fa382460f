"""
Owners on the in-memory engine with a L{task.Clock}: two hubs with
different C{[deploy] owner} share an engine without seeing each other;
containers made before owners belong to the default owner.
"""

from __future__ import annotations

import pytest
from twisted.internet.task import Clock
from twisted.logger import LogLevel, globalLogPublisher

from statushub.deploy.manager import DeploymentManager
from statushub.deploy.owner import Owner
from statushub.topology import validateTopology
from statushub.engine import (
    DEPLOYMENT_LABEL,
    INDEX_LABEL,
    NODE_LABEL,
    NODES_LABEL,
    OWNER_LABEL,
    ContainerSpec,
    EngineEvent,
)
from statushub.status import StatusBoard
from tests.fakeengine import FakeEngine, callNow

INTERVAL = 2.0


def topology(name: str, *nodeIds: str):
    return validateTopology(
        {"name": name, "nodes": [{"id": n, "image": "statushub/busybox"}
                                 for n in nodeIds or ("web", "db")]}
    )


@pytest.fixture
def hubs():
    """
    A factory of managers on one engine, each on a board of its own.
    """
    clock = Clock()
    engine = FakeEngine()
    managers: list[DeploymentManager] = []

    def hub(owner: str) -> tuple[DeploymentManager, StatusBoard]:
        board = StatusBoard(clock)
        manager = DeploymentManager(
            engine, board, clock, INTERVAL, runInThread=callNow, owner=Owner(owner)
        )
        managers.append(manager)
        manager.startService()
        return manager, board

    yield clock, engine, hub
    for manager in managers:
        if manager.running:
            manager.stopService()
    engine.assertStreamsClosed()


def ownersOf(engine: FakeEngine, name: str) -> set:
    return {c["labels"].get(OWNER_LABEL) for c in engine.containers.values()
            if c["labels"][DEPLOYMENT_LABEL] == name}


def test_owns() -> None:
    mine, default = Owner("ops"), Owner()
    assert mine.owns({OWNER_LABEL: "ops"}) and not mine.owns({OWNER_LABEL: "dev"})
    assert not mine.owns({DEPLOYMENT_LABEL: "old"})
    assert default.owns({DEPLOYMENT_LABEL: "old"}) and default.owns({OWNER_LABEL: "statushub"})
    assert not default.owns({OWNER_LABEL: "ops"})
    # the engine is asked for the owner's label when that is enough
    assert mine.selector("x") == {DEPLOYMENT_LABEL: "x", OWNER_LABEL: "ops"}
    assert default.selector() == {DEPLOYMENT_LABEL: None}


def test_twoOwnersDoNotSeeEachOther(hubs) -> None:
    """
    Each hub labels what it makes with its owner, adopts, polls, follows
    and tears down only that.
    """
    clock, engine, hub = hubs
    ops, opsBoard = hub("ops")
    dev, devBoard = hub("dev")
    ops.deploy(topology("alpha"))
    dev.deploy(topology("alpha"))
    dev.deploy(topology("bravo"))
    # one name, two owners: two deployments, with containers of their own
    assert ownersOf(engine, "alpha") == {"ops", "dev"} and ownersOf(engine, "bravo") == {"dev"}
    assert len(engine.containers) == 6
    assert ops.names() == ["alpha"] and dev.names() == ["alpha", "bravo"]
    assert opsBoard.names() == ["alpha"]

    # a restarted hub adopts its owner's deployments only
    ops.stopService()
    again, againBoard = hub("ops")
    assert again.names() == ["alpha"]
    assert again.get("alpha").mapping == ops.get("alpha").mapping

    # an event about another owner's container of the same name reaches
    # no one here
    [devWeb] = [cid for cid, c in engine.containers.items()
                if c["labels"][DEPLOYMENT_LABEL] == "alpha" and c["labels"][NODE_LABEL] == "web"
                and c["labels"][OWNER_LABEL] == "dev"]
    clock.advance(INTERVAL)
    before = againBoard.picture("alpha")
    engine.streams[-1].push(EngineEvent(devWeb, "die", dict(engine.containers[devWeb]["labels"])))
    assert againBoard.picture("alpha") == before

    # nor does a teardown
    again.teardown("alpha")
    assert ownersOf(engine, "alpha") == {"dev"}
    clock.advance(INTERVAL)
    assert [n.status for n in devBoard.picture("alpha").nodeStatuses] == ["running", "running"]


def unlabelled(engine: FakeEngine, name: str, nodeIds: tuple[str, ...]) -> None:
    """
    Containers as a hub before owners made them: no owner label.
    """
    for index, nodeId in enumerate(nodeIds):
        labels = {DEPLOYMENT_LABEL: name, NODE_LABEL: nodeId, INDEX_LABEL: str(index),
                  NODES_LABEL: ",".join(nodeIds)}
        spec = ContainerSpec(name=f"statushub-{name}-{nodeId}", image="statushub/busybox",
                             labels=tuple(labels.items()))
        engine.startContainer(engine.createContainer(spec).result)


def test_theDefaultOwnerTakesWhatCameBeforeOwners(hubs) -> None:
    """
    Containers without an owner label are the default owner's: adopted,
    polled and torn down by it; a hub with another owner leaves them
    alone and says so.
    """
    clock, engine, hub = hubs
    unlabelled(engine, "legacy", ("web", "db"))
    said: list[dict] = []
    globalLogPublisher.addObserver(said.append)
    try:
        ops, opsBoard = hub("ops")
    finally:
        globalLogPublisher.removeObserver(said.append)
    assert ops.names() == []
    [warning] = [e for e in said if e.get("log_level") == LogLevel.warn]
    assert warning["names"] == "legacy"

    default, board = hub("statushub")
    assert default.names() == ["legacy"]
    assert [n.status for n in board.picture("legacy").nodeStatuses] == ["running", "running"]
    default.teardown("legacy")
    assert engine.containers == {}
