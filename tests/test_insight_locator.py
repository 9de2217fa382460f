"""
Where each node runs, read from what a hub shows (the locator of every hub
of a cluster): a real L{StatusBoard} as the source, the engine's names.
"""

from __future__ import annotations

import pytest
from twisted.internet.task import Clock
from zope.interface.verify import verifyObject

from statushub.engine import NodeLocation
from statushub.engine.swarm import nodeServiceName, serviceName
from statushub.errors import UnknownDeployment
from statushub.insight.locator import SourceLocator
from statushub.interfaces import INodeLocator
from statushub.status import NodeStatus, Picture, StatusBoard
from statushub.topology import validateTopology


def shown() -> StatusBoard:
    board = StatusBoard(Clock())
    board.update(Picture("deployed", (
        NodeStatus("web", "c-web", "running"),
        NodeStatus("worker", "c-worker", "exited", exitCode=137),
        NodeStatus("gone", "", "missing"),
    ), deployment="demo"))
    return board


def test_theNodesAsTheirPictureShowsThem() -> None:
    locator = SourceLocator(shown())
    assert verifyObject(INodeLocator, locator)
    assert locator.deployments() == ["demo"]
    assert locator.locate("demo") == [
        NodeLocation("web", "c-web", "running"),
        NodeLocation("worker", "c-worker", "exited"),
        NodeLocation("gone", "", "missing"),  # no container: nothing to read
    ]


def test_anUnknownOrEndedDeployment() -> None:
    board = shown()
    locator = SourceLocator(board)
    with pytest.raises(UnknownDeployment):
        locator.locate("other")
    board.update(Picture("idle", deployment="demo"))  # torn down
    assert locator.deployments() == []
    with pytest.raises(UnknownDeployment):
        locator.locate("demo")


def test_onASwarmTheNodesService() -> None:
    """
    A swarm's picture shows the container of the service's task (perhaps
    on another host); the engine reads the service's log by its name, the
    one the deploying hub gave it.
    """
    locator = SourceLocator(
        shown(), lambda deployment, node, container: nodeServiceName("team", deployment, node)
    )
    web = locator.locate("demo")[0]
    topology = validateTopology({"name": "demo", "nodes": [{"id": "web", "image": "busybox"}]})
    [(node, spec)] = topology.containerSpecs(owner="team")
    assert web == NodeLocation("web", serviceName(spec), "running")
