"""
Where each node of the current deployments runs, for the insight room's
logs and resource use (L{INodeLocator}), read from the deployment manager.
"""

from __future__ import annotations

from zope.interface import implementer

from statushub.deploy.manager import DeploymentManager
from statushub.engine import NodeLocation
from statushub.interfaces import INodeLocator


@implementer(INodeLocator)
class ManagerLocator:
    """
    L{INodeLocator} over a L{DeploymentManager}: a node's container is its
    deployment's (on a swarm, its service), its status the one its picture
    shows.
    """

    def __init__(self, manager: DeploymentManager) -> None:
        self._manager = manager

    def deployments(self) -> list[str]:
        return self._manager.names()

    def locate(self, deployment: str) -> list[NodeLocation]:
        found = self._manager.get(deployment)  # UnknownDeployment if none
        statuses = {node.nodeId: node.status for node in found.picture.nodeStatuses}
        return [
            NodeLocation(nodeId, containerId, statuses.get(nodeId, "unknown"))
            for nodeId, containerId in found.mapping
        ]
