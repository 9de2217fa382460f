"""
Where each node runs, read from what a hub shows (its L{IStatusSource}):
the locator of a hub of a cluster, where the deployment manager (and its
own locator) lives only on the leader, a new one each term, while every hub
serves logs and resource use.
"""

from __future__ import annotations

from typing import Callable

from zope.interface import implementer

from statushub.engine import NodeLocation
from statushub.errors import UnknownDeployment
from statushub.interfaces import INodeLocator, IStatusSource

#: reference(deployment, node, containerId shown): what the engine's log and
#: resource calls take for that node
Reference = Callable[[str, str, str], str]


def shownContainer(deployment: str, node: str, containerId: str) -> str:
    """
    One Docker engine: the container the node's picture shows.
    """
    return containerId


@implementer(INodeLocator)
class SourceLocator:
    """
    L{INodeLocator} over the current pictures of C{source}: a node's
    status is the one its picture shows, its container the one C{reference}
    makes of it (on a swarm, its service: the picture shows the container
    of the service's task, which may run on another host).
    """

    def __init__(self, source: IStatusSource, reference: Reference = shownContainer) -> None:
        self._source = source
        self._reference = reference

    def deployments(self) -> list[str]:
        return sorted(self._source.names())

    def locate(self, deployment: str) -> list[NodeLocation]:
        if deployment not in self._source.names():
            raise UnknownDeployment(deployment)
        locations = []
        for node in self._source.current(deployment).get("nodeStatuses", ()):
            nodeId, shown = node["nodeId"], node.get("containerId") or ""
            locations.append(
                NodeLocation(
                    nodeId,
                    self._reference(deployment, nodeId, shown) if shown else "",
                    node.get("status", "unknown"),
                )
            )
        return locations
