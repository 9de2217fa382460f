"""
What the API acts through to change deployments, for one hub: the
deployment manager, answering at once.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred, fail, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from statushub.deploy.manager import DeploymentManager
from statushub.errors import RequestError
from statushub.interfaces import IDeploymentControl, IStatusSource
from statushub.topology import Topology

log = Logger()


def _logFailure(failure: Failure, what: str, name: str) -> None:
    log.failure("{what} of {name} failed unexpectedly", failure, what=what, name=name)


@implementer(IDeploymentControl)
class ManagerControl:
    """
    L{IDeploymentControl} over a L{DeploymentManager}: a change is accepted
    or refused before the call returns, so every Deferred has fired by then.
    The work goes on after; the feed tells how it ends.

    @param source: where the accepted deployment's picture is read (the
        board the manager draws on).
    """

    def __init__(self, manager: DeploymentManager, source: IStatusSource) -> None:
        self._manager = manager
        self._source = source

    def deploy(self, topology: Topology) -> "Deferred[dict[str, Any]]":
        try:
            working = self._manager.deploy(topology)
        except RequestError as e:
            return fail(e)
        working.addErrback(_logFailure, "deploy", topology.name)
        return succeed(self._source.current(topology.name))

    def teardown(self, name: str) -> "Deferred[dict[str, Any]]":
        try:
            working = self._manager.teardown(name)
        except RequestError as e:
            return fail(e)
        working.addErrback(_logFailure, "teardown", name)
        return succeed(self._source.current(name))

    def act(self, name: str, node: str, action: str) -> "Deferred[tuple[bool, dict[str, Any]]]":
        try:
            started = self._manager.act(name, node, action)
        except RequestError as e:
            return fail(e)
        return succeed((started, self._source.current(name)))
