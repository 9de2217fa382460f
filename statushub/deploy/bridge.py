"""
The bridge (the seed's conversion): from what a poll found, keyed by
container id, to the nodes' statuses, keyed by node id.
"""

from __future__ import annotations

from typing import Mapping, Optional, Sequence

from statushub.engine import ContainerDetail, ContainerState
from statushub.status import HEALTH_OUTPUT_MAX, HEALTH_STATUSES, NODE_STATUSES, NodeStatus


def nodeStatuses(
    containers: Optional[Mapping[str, ContainerState]],
    mapping: Sequence[tuple[str, str]],
    details: Mapping[str, ContainerDetail] = {},
) -> tuple[NodeStatus, ...]:
    """
    Convert one poll result to node statuses, in the deployment's node order.

    A pure function: no engine, no clock, no state.

    @param containers: the containers the poll found, keyed by container id;
        L{None} when the engine could not be asked (every node is then
        C{unknown}).
    @param mapping: the deployment's C{(nodeId, containerId)} pairs.
    @return: one L{NodeStatus} per mapped node.  A node whose container is
        not among C{containers} is C{missing}; a container no node maps to
        is ignored; C{health} is given only for a running container that
        has a health check.
    """
    statuses = []
    for nodeId, containerId in mapping:
        if containers is None:
            statuses.append(NodeStatus(nodeId, containerId, "unknown"))
            continue
        state = containers.get(containerId)
        if state is None:
            statuses.append(NodeStatus(nodeId, containerId, "missing"))
            continue
        # an engine newer than this code may invent a state: say unknown
        # rather than pass on a word clients were never promised
        status = state.status if state.status in NODE_STATUSES else "unknown"
        health = None
        if status == "running" and state.health in HEALTH_STATUSES:
            health = state.health
        detail = details.get(containerId)
        exitCode = None
        oomKilled = None
        if status in ("exited", "dead"):
            exitCode = state.exitCode
            if exitCode is None and detail is not None:
                exitCode = detail.exitCode
            # from the look taken after it died (exit 137 alone cannot tell
            # the OOM killer from a docker kill)
            if detail is not None and detail.oomKilled:
                oomKilled = True
        output = None
        if health == "unhealthy" and detail is not None and detail.healthOutput is not None:
            output = detail.healthOutput.strip()[:HEALTH_OUTPUT_MAX]
        statuses.append(
            NodeStatus(
                nodeId,
                # on a swarm, the container the node's service runs now
                state.container or containerId,
                status,
                health,
                host=state.host,
                hostStatus=state.hostStatus,
                error=state.error if status == "failed" else None,
                exitCode=exitCode,
                restartCount=None if detail is None else detail.restartCount,
                healthOutput=output,
                oomKilled=oomKilled,
            )
        )
    return tuple(statuses)
