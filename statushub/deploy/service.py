"""
The orchestrator as a twistd service: the engine (one Docker engine, or a
Swarm through its manager: C{[engine] kind}), the deployment manager
(polling, events, adoption at start: its child services), and the
L{IDeploymentControl} the API acts through.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from twisted.application.service import MultiService
from twisted.internet.defer import Deferred

from statushub.config import Config, engineAddress, resourcePolicy
from statushub.deploy.actions import ActionObserver
from statushub.deploy.control import ManagerControl
from statushub.deploy.locator import ManagerLocator
from statushub.deploy.manager import DeploymentManager, EngineHealth
from statushub.deploy.owner import Owner
from statushub.engine.docker import DockerEngine
from statushub.engine.swarm import SwarmEngine
from statushub.interfaces import (
    IContainerEngine,
    IDeploymentControl,
    IHealthCheck,
    INodeLocator,
)
from statushub.metrics import EngineMetrics
from statushub.status import StatusBoard


def engineFromConfig(config: Config, reactor: Any) -> DockerEngine:
    """
    The engine C{[engine]} names: one Docker engine, or a Swarm through its
    manager (with the engines of its other hosts, C{[engine] hosts}, for
    resource use).
    """
    address, timeout = engineAddress(config), config["docker"]["timeout"]
    if config["engine"]["kind"] == "swarm":
        return SwarmEngine(
            reactor, host=address, timeout=timeout, hostEngines=config["engine"]["hosts"]
        )
    return DockerEngine(reactor, host=address, timeout=timeout)


class Orchestrator(MultiService):
    """
    The deployment side of the hub: its child is the L{DeploymentManager}
    (whose children poll, check the engine and follow its events); the
    engine's own threads end after it has stopped.

    @param metrics: where engine calls, events and polls are counted; L{None}:
        not counted.
    @param fence: wraps the engine the manager acts on (several hubs: a
        leader's calls stop with its leadership).
    @param observeAction: told how each node action ended (the metrics').
    @ivar control: what the API acts through.
    @ivar locator: where each node runs (the insight room reads logs and
        resource use through it, and through C{calls}).
    @ivar healthChecks: what C{/healthz} should report.
    """

    def __init__(
        self,
        board: StatusBoard,
        config: Config,
        reactor: Any,
        metrics: Optional[EngineMetrics] = None,
        fence: Callable[[IContainerEngine], IContainerEngine] = lambda engine: engine,
        observeAction: Optional[ActionObserver] = None,
    ) -> None:
        super().__init__()
        self.engine = engineFromConfig(config, reactor)
        #: the engine as the other rooms read it (counted, like the manager's
        #: calls; never fenced: reading a log acts on nothing)
        self.calls: IContainerEngine = (
            self.engine if metrics is None else metrics.wrap(self.engine)
        )
        # fence: of several hubs, every call fails once this one no longer leads
        acting = fence(self.engine)
        self.manager = DeploymentManager(
            acting if metrics is None else metrics.wrap(acting),
            board,
            reactor,
            pollInterval=config["polling"]["interval"],
            followEvents=config["events"]["enabled"],
            observePoll=None if metrics is None else metrics.observePoll,
            maxDeployments=config["deploy"]["max_deployments"],
            owner=Owner(config["deploy"]["owner"]),
            stopTimeout=config["deploy"]["stop_timeout"],
            observeAction=observeAction,
            policy=resourcePolicy(config),
        )
        # checks the engine and adopts the deployments found there when it
        # starts; an engine that is down is retried, the hub serves meanwhile
        self.manager.setServiceParent(self)
        self.control: IDeploymentControl = ManagerControl(self.manager, board)
        self.locator: INodeLocator = ManagerLocator(self.manager)
        self.healthChecks: list[IHealthCheck] = [EngineHealth(self.manager)]

    def stopService(self) -> "Deferred[None]":
        # the containers stay: a hub started later adopts them
        stopped = super().stopService()

        def stopEngine(result: Any) -> None:
            self.engine.stop()

        return stopped.addBoth(stopEngine)
