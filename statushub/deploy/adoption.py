"""
What a restarted hub finds on the engine: its labelled containers, grouped
into deployments with every node's container (or none, when it is gone).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Iterable, Mapping, Sequence

from statushub.resources import ResourcePolicy
from statushub.topology import Node, Topology, nodeFromEntry
from statushub.engine import (
    DEPLOYMENT_LABEL,
    ENTRY_LABEL,
    INDEX_LABEL,
    NODE_LABEL,
    NODES_LABEL,
    ContainerState,
)


def _order(state: ContainerState) -> tuple[int, str]:
    try:
        return (int(state.labels.get(INDEX_LABEL, "")), "")
    except ValueError:
        return (1 << 30, state.labels.get(NODE_LABEL, ""))


def foundDeployments(
    states: Iterable[ContainerState],
) -> dict[str, list[tuple[str, str]]]:
    """
    Group labelled containers by deployment.

    A pure function: no engine, no clock, no state.

    @param states: every container carrying the deployment label (one list
        call).
    @return: per deployment name, its C{(nodeId, containerId)} pairs in node
        order.  The node list comes from the label every container carries
        (L{NODES_LABEL}), so a node whose container is gone is there with a
        container id of C{""} (the bridge then says C{missing}); containers
        made before that label existed give their own nodes, by index.
    """
    byName: dict[str, list[ContainerState]] = defaultdict(list)
    for state in states:
        name = state.labels.get(DEPLOYMENT_LABEL)
        if name:
            byName[name].append(state)
    found: dict[str, list[tuple[str, str]]] = {}
    for name, group in byName.items():
        group.sort(key=_order)
        byNode: dict[str, str] = {}
        for state in group:
            byNode.setdefault(state.labels.get(NODE_LABEL, state.containerId[:12]), state.containerId)
        nodeIds = [n for n in group[0].labels.get(NODES_LABEL, "").split(",") if n]
        # a node no label lists (an older container) is kept, after the rest
        nodeIds += [n for n in byNode if n not in nodeIds]
        found[name] = [(nodeId, byNode.get(nodeId, "")) for nodeId in nodeIds]
    return found


def adoptedTopology(
    name: str,
    mapping: Sequence[tuple[str, str]],
    seen: Mapping[str, ContainerState],
    policy: ResourcePolicy = ResourcePolicy(),
) -> Topology:
    """
    The topology of an adopted deployment, as far as its containers tell
    it: each node from the entry its container carries (L{ENTRY_LABEL}).  A
    node whose container is gone, or does not carry a valid entry, is there
    by id only (an empty C{image}): it cannot be made again.

    A pure function.
    """
    nodes = []
    for nodeId, containerId in mapping:
        state = seen.get(containerId) if containerId else None
        text = state.labels.get(ENTRY_LABEL, "") if state is not None else ""
        node = nodeFromEntry(text, policy) if text else None
        nodes.append(node if node is not None and node.id == nodeId else Node(id=nodeId, image=""))
    return Topology(name=name, nodes=tuple(nodes))
