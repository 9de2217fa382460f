"""
The orchestrator as a twistd service: the engine (one Docker engine, or a
Swarm through its manager: C{[engine] kind}), the deployment
manager (polling, events, adoption at start), and what it adds to the site.
"""

from __future__ import annotations

from typing import Any, Optional

from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.web.resource import IResource

from statushub.config import Config, engineAddress
from statushub.deploy.api import DeploymentResource, DeploymentsResource
from statushub.deploy.manager import DeploymentManager, EngineHealth
from statushub.engine.docker import DockerEngine
from statushub.engine.swarm import SwarmEngine
from statushub.interfaces import IHealthCheck
from statushub.metrics import EngineMetrics
from statushub.status import StatusBoard


class Orchestrator(Service):
    """
    @param metrics: where engine calls, events and polls are counted; L{None}:
        not counted.
    @ivar api: resources to mount under C{/api}.
    @ivar healthChecks: what C{/healthz} should report.
    """

    def __init__(
        self,
        board: StatusBoard,
        config: Config,
        reactor: Any,
        metrics: Optional[EngineMetrics] = None,
    ) -> None:
        kind = SwarmEngine if config["engine"]["kind"] == "swarm" else DockerEngine
        self.engine = kind(
            reactor, host=engineAddress(config), timeout=config["docker"]["timeout"]
        )
        self.manager = DeploymentManager(
            self.engine if metrics is None else metrics.wrap(self.engine),
            board,
            reactor,
            pollInterval=config["polling"]["interval"],
            followEvents=config["events"]["enabled"],
            observePoll=None if metrics is None else metrics.observePoll,
            maxDeployments=config["deploy"]["max_deployments"],
            stopTimeout=config["deploy"]["stop_timeout"],
        )
        self.api: dict[str, IResource] = {
            "deployment": DeploymentResource(self.manager, board),
            "deployments": DeploymentsResource(self.manager, board),
        }
        self.healthChecks: list[IHealthCheck] = [EngineHealth(self.manager)]

    def startService(self) -> None:
        super().startService()
        # checks the engine and adopts the deployments found there; an engine
        # that is down is retried, the hub serves meanwhile
        self.manager.start()

    def stopService(self) -> "Deferred[None]":
        super().stopService()
        # the containers stay: a hub started later adopts them
        stopped = self.manager.stop()

        def stopEngine(result: Any) -> Any:
            self.engine.stop()
            return result

        return stopped.addBoth(stopEngine)
