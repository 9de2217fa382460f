"""
The bridge: poll results keyed by container id -> node statuses keyed by node id.
"""

from statushub.deploy.bridge import nodeStatuses
from statushub.engine import ContainerState
from statushub.status import NodeStatus

MAPPING = [("web", "c-web"), ("db", "c-db")]


def seen(*states: ContainerState) -> dict[str, ContainerState]:
    return {s.containerId: s for s in states}


def test_containerMapToNodeMap() -> None:
    """
    The seed's first case: every container maps to its node, in node order.
    """
    result = nodeStatuses(
        seen(ContainerState("c-db", "exited"), ContainerState("c-web", "running")),
        MAPPING,
    )
    assert result == (
        NodeStatus("web", "c-web", "running"),
        NodeStatus("db", "c-db", "exited"),
    )


def test_missingContainer() -> None:
    """
    The seed's second case: a node whose container is gone is C{missing}.
    """
    result = nodeStatuses(seen(ContainerState("c-web", "running")), MAPPING)
    assert result[1] == NodeStatus("db", "c-db", "missing")
    assert result[0].status == "running"


def test_unknownContainerIgnored() -> None:
    result = nodeStatuses(
        seen(ContainerState("c-web", "running"), ContainerState("c-stranger", "running"),
             ContainerState("c-db", "running")),
        MAPPING,
    )
    assert [n.containerId for n in result] == ["c-web", "c-db"]


def test_healthOnlyWhenRunning() -> None:
    result = nodeStatuses(
        seen(ContainerState("c-web", "running", "healthy"),
             ContainerState("c-db", "paused", "healthy")),
        MAPPING,
    )
    assert result[0].health == "healthy"
    assert result[1].health is None
    assert "health" not in result[1].toJSON()


def test_noHealthcheckNoHealth() -> None:
    [web] = nodeStatuses(seen(ContainerState("c-web", "running")), MAPPING[:1])
    assert web.health is None and "health" not in web.toJSON()


def test_engineUnreachable() -> None:
    """
    No poll result at all: every node is C{unknown}, none is C{missing}.
    """
    assert [n.status for n in nodeStatuses(None, MAPPING)] == ["unknown", "unknown"]


def test_unknownEngineState() -> None:
    [web] = nodeStatuses(seen(ContainerState("c-web", "frobnicated")), MAPPING[:1])
    assert web.status == "unknown"


def test_emptyMapping() -> None:
    assert nodeStatuses(seen(ContainerState("c-web", "running")), []) == ()
