"""
L{IContainerEngine} on a Docker Swarm, through a manager's API.

A node of a topology becomes a service with one replica, named after its
deployment and node (L{serviceName}) and labelled like a container: the deployment side
keeps working in containers and this engine maps its calls onto services.
Creating a container creates the service; starting it waits until its task
runs (or says why it cannot); removing it removes the service and waits for
its tasks to end on every host that is up; stopping it scales the service to
0 replicas (starting, back to 1); restarting or recreating it forces a new
task; a list is three calls whatever the number of services (services, tasks
and nodes, by label), and gives each service the state of its current task,
with the host it is on.
"""

from __future__ import annotations

import hashlib
from typing import Any, Mapping, Optional

import docker
import requests.exceptions

import docker.errors
from docker.types import (
    ContainerSpec as SwarmContainerSpec,
    DriverConfig,
    Healthcheck,
    Placement,
    Resources as SwarmResources,
    RestartPolicy,
    ServiceMode,
    TaskTemplate,
)
from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.task import deferLater
from zope.interface import implementer

from statushub.engine import (
    DEFAULT_OWNER,
    DEPLOYMENT_LABEL,
    NODE_LABEL,
    OWNER_LABEL,
    ContainerSpec,
    ContainerState,
    EngineError,
    EngineEvent,
    ImageNotFound,
    RecreateIncomplete,
    StatsUnavailable,
    containerName,
)
from statushub.engine.docker import (
    API_VERSION,
    LOG_DRIVER,
    LOG_OPTIONS,
    DockerEngine,
    DockerEventStream,
    dockerHost,
)
from statushub.engine.dockerstreams import SERVICE_LOGS, followStats
from statushub.engine.swarmstates import (  # noqa: F401 (the engine's public names)
    HOST_LABEL,
    currentTask,
    hostName,
    hostStatus,
    listSwarm,
    swarmStates,
    taskStatus,
    wantedReplicas,
)
from statushub.interfaces import IContainerEngine, IEventStream, IStatsStream

# how long a started service may take to run its task, and how often we look
START_DEADLINE = 60.0
REMOVAL_DEADLINE = 30.0
CHECK_DELAY = 0.25

_RESTART_CONDITION = {"none": "none", "on-failure": "on-failure", "any": "any"}

class _NoSuchService(EngineError):
    """
    The service is gone (removed behind the hub's back).
    """


# how much of the deployment's and the node's names a service's name shows,
# and how many hex digits of the digest follow: 20 + 1 + 20 + 1 + 20 = 62
_SHOWN = 20
_DIGEST = 20


def serviceName(spec: ContainerSpec) -> str:
    """
    C{<deployment>_<node>_<digest>}, from the labels every node's spec
    carries: the names as far as they fit, then 80 bits of the SHA-256 of
    the container's name (L{containerName}: owner, deployment and node,
    unambiguous).  Swarm's rule for a service's name is at most 63 of
    C{a-z A-Z 0-9 - _}, no dot, ending in a letter or digit, so the
    container's name cannot serve as it is.  Two services whose owner,
    deployment or node differ get different digests (and Swarm refuses a
    name in use rather than share it).
    """
    labels = dict(spec.labels)
    return nodeServiceName(
        labels.get(OWNER_LABEL, DEFAULT_OWNER), labels[DEPLOYMENT_LABEL], labels[NODE_LABEL]
    )


def nodeServiceName(owner: str, deployment: str, node: str) -> str:
    """
    The name of the service of C{node} of C{deployment}, made by a hub of
    C{owner} (L{serviceName}); the engine's calls take it as they take the
    service's id.
    """
    unique = containerName(owner, deployment, node)
    digest = hashlib.sha256(unique.encode()).hexdigest()[:_DIGEST]
    return f"{deployment[:_SHOWN]}_{node[:_SHOWN]}_{digest}"


class _SwarmEventStream(DockerEventStream):
    """
    The manager's C{service} and C{node} events, each told as an event
    without a container: something in the swarm changed, poll soon.
    """

    def next(self) -> Optional[EngineEvent]:
        for raw in self._stream:
            kind = raw.get("Type")
            if kind not in ("service", "node"):
                continue
            return EngineEvent(
                containerId="",
                action=f"{kind} {raw.get('Action', '')}",
                timeNano=int(raw.get("timeNano") or 0),
            )
        return None


@implementer(IContainerEngine)
class SwarmEngine(DockerEngine):
    """
    A Docker Swarm, through the manager at C{host}: the same client, thread
    pool and error handling as L{DockerEngine}, services instead of
    containers.

    The logs of every node come through the manager (its service's log).
    Resource use comes from the engine of the host a node's task runs on:
    the manager's own, and those named in C{hostEngines} (a host's readable
    name, see L{hostName}, to that engine's address); a node elsewhere has
    none (L{StatsUnavailable}).
    """

    _logsPath = SERVICE_LOGS

    def __init__(
        self,
        reactor: Any,
        host: str = "",
        timeout: float = 10.0,
        hostEngines: Optional[Mapping[str, str]] = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(reactor, host=host, timeout=timeout, **kwargs)
        self.hostEngines = dict(hostEngines or {})
        self._hostClients: dict[str, Any] = {}

    def stop(self) -> None:
        super().stop()
        for client in self._hostClients.values():
            client.close()

    def _clientOf(self, address: str) -> Any:
        if address not in self._hostClients:
            self._hostClients[address] = docker.APIClient(
                base_url=dockerHost(address), version=API_VERSION, timeout=self.timeout
            )
        return self._hostClients[address]

    def followStats(self, containerId: str) -> "Deferred[IStatsStream]":
        """
        The resource use of the container the service's running task is in,
        read from the engine of its host.
        """
        what = f"follow the resource use of service {containerId[:12]}"

        def openStream() -> IStatsStream:
            tasks = self._client.tasks(filters={"service": containerId, "desired-state": "running"})
            running = [t for t in tasks if (t.get("Status") or {}).get("State") == "running"]
            if not running:
                raise EngineError(f"{what}: no task of it runs")
            task = currentTask(running)
            container = ((task.get("Status") or {}).get("ContainerStatus") or {}).get("ContainerID")
            nodes = self._client.nodes()
            node = next((n for n in nodes if n["ID"] == task.get("NodeID")), None)
            if node is None or not container:
                raise EngineError(f"{what}: its task has no container yet")
            own = (self._client.info().get("Swarm") or {}).get("NodeID")
            if node["ID"] == own:
                client = self._client
            else:
                name = hostName(node, nodes)
                address = self.hostEngines.get(name)
                if address is None:
                    raise StatsUnavailable(
                        f"runs on host {name}, whose engine the hub does not reach "
                        "(name it in [engine] hosts)"
                    )
                try:
                    return followStats(self._clientOf(address), container)
                except (requests.exceptions.RequestException, OSError) as e:
                    raise StatsUnavailable(
                        f"runs on host {name}, whose engine at {address} does not answer: {e}"
                    ) from e
            return followStats(client, container)

        return self._call(what, openStream)

    def createContainer(self, spec: ContainerSpec) -> "Deferred[str]":
        name = serviceName(spec)

        def create() -> str:
            healthcheck = None
            if spec.healthcheck is not None:
                check = spec.healthcheck
                healthcheck = Healthcheck(
                    test=list(check.test),
                    interval=int(check.interval * 1e9),
                    timeout=int(check.timeout * 1e9),
                    retries=check.retries,
                    start_period=int(check.startPeriod * 1e9),
                )
            container = SwarmContainerSpec(
                image=spec.image,
                # a service's "command" replaces the entrypoint; the node's
                # command is what a container's Cmd is: the args
                args=list(spec.command) if spec.command is not None else None,
                env=[f"{k}={v}" for k, v in spec.env],
                labels=dict(spec.labels),
                healthcheck=healthcheck,
                # the grace a task gets when it is stopped or replaced
                stop_grace_period=int(spec.stopTimeout * 1e9),
            )
            template = TaskTemplate(
                container,
                # Swarm's own default is "any": say "none" when the node does
                restart_policy=RestartPolicy(condition=_RESTART_CONDITION[spec.restart]),
                placement=Placement(constraints=list(spec.constraints)) if spec.constraints else None,
                # the same limits as on one engine (a service has no swap
                # limit of its own to set)
                resources=SwarmResources(
                    cpu_limit=spec.resources.nanoCpus, mem_limit=spec.resources.memory
                ),
                log_driver=DriverConfig(LOG_DRIVER, LOG_OPTIONS),
            )
            created = self._client.create_service(
                template, name=name, labels=dict(spec.labels), mode=ServiceMode("replicated", 1)
            )
            return created["ID"]

        return self._call(f"create service {name!r}", create)

    def startContainer(self, containerId: str, restart: Optional[str] = None) -> "Deferred[None]":
        """
        Scale the service back to one replica if it was stopped (Swarm
        schedules at once), then wait until its task runs; fail with the
        task's reason if it cannot.  C{restart}: a service's restart policy
        is never changed by a stop, so there is nothing to undo.
        """

        async def start() -> None:
            old = await self._update(containerId, "start", replicas=1, onlyIfStopped=True)
            # after a scale-up, only a task made since counts (an old one
            # may have failed long ago)
            await self._running(containerId, old or frozenset())

        return ensureDeferred(start())

    def stopContainer(self, containerId: str, timeout: float) -> "Deferred[None]":
        """
        Scale the service to 0 replicas (nothing restarts a task that is not
        wanted) and wait until its task has ended on every host that is up;
        the task gets the service's grace period.
        """
        return ensureDeferred(self._stop(containerId, timeout))

    async def _stop(self, serviceId: str, timeout: float) -> None:
        what = f"service {serviceId[:12]}"
        await self._update(serviceId, "stop", replicas=0)
        deadline = self._reactor.seconds() + REMOVAL_DEADLINE + timeout
        while True:
            states = await self.listContainers({DEPLOYMENT_LABEL: None})
            mine = [s for s in states if s.containerId == serviceId]
            if not mine or mine[0].status not in ("running", "pending"):
                return
            if self._reactor.seconds() > deadline:
                raise EngineError(f"{what}: its task still runs {REMOVAL_DEADLINE:.0f} s after the stop")
            await deferLater(self._reactor, CHECK_DELAY, lambda: None)

    def restartContainer(self, containerId: str, timeout: float) -> "Deferred[None]":
        """
        Force a new task of the service (the old one gets the service's
        grace period) and wait until it runs.
        """

        async def restart() -> None:
            old = await self._update(containerId, "restart", replicas=1, force=True)
            await self._running(containerId, old or frozenset())

        return ensureDeferred(restart())

    def recreateContainer(
        self, containerId: str, spec: ContainerSpec, timeout: float
    ) -> "Deferred[str]":
        """
        As L{restartContainer} (a new task is a new container from the
        service's spec, which is C{spec}); a service that is gone is created
        anew from C{spec}, under a new id.
        """
        return ensureDeferred(self._recreate(containerId, spec))

    async def _recreate(self, serviceId: str, spec: ContainerSpec) -> str:
        try:
            old = await self._update(serviceId, "recreate", replicas=1, force=True)
        except _NoSuchService:
            pass
        else:
            await self._running(serviceId, old or frozenset())
            return serviceId
        try:
            newId = await self.createContainer(spec)
        except EngineError as e:
            raise RecreateIncomplete(f"{e} (its service was gone; no new one was created)") from e
        try:
            await self.startContainer(newId)
        except EngineError as e:
            raise RecreateIncomplete(
                f"{e} (its service was gone; the new one {newId[:12]} has no running task)", newId,
            ) from e
        return newId

    def _update(
        self, serviceId: str, action: str, replicas: int,
        force: bool = False, onlyIfStopped: bool = False,
    ) -> "Deferred[Optional[frozenset[str]]]":
        """
        Set the service's replicas (and, with C{force}, ask for a new task);
        fire with the ids of the tasks it had before.

        @param onlyIfStopped: change nothing (and fire with L{None}) unless
            it has 0 replicas.
        """
        what = f"{action} service {serviceId[:12]}"

        def update() -> Optional[frozenset[str]]:
            try:
                current = self._client.inspect_service(serviceId)
            except docker.errors.NotFound:
                raise _NoSuchService(f"{what}: no such service") from None
            if onlyIfStopped and wantedReplicas(current) != 0:
                return None
            before = frozenset(
                t["ID"] for t in self._client.tasks(filters={"service": serviceId})
            )
            template = (current.get("Spec") or {}).get("TaskTemplate") or {}
            self._client.update_service(
                serviceId,
                current["Version"]["Index"],
                mode=ServiceMode("replicated", replicas),
                task_template=(
                    {"ForceUpdate": int(template.get("ForceUpdate") or 0) + 1} if force else None
                ),
                fetch_current_spec=True,
            )
            return before

        return self._call(what, update)

    async def _running(self, serviceId: str, old: frozenset[str] = frozenset()) -> None:
        """
        Wait until a task of the service that is not one of C{old} runs.
        """
        what = f"service {serviceId[:12]}"
        deadline = self._reactor.seconds() + START_DEADLINE
        while True:
            tasks = await self._call(
                f"list the tasks of {what}", self._client.tasks, filters={"service": serviceId}
            )
            for task in tasks:
                if task.get("ID") in old:
                    continue
                status = task.get("Status") or {}
                if status.get("State") == "running":
                    return
                if status.get("State") == "pending" and "no suitable node" in (status.get("Err") or ""):
                    # nowhere to place it (its constraints fit no host): it
                    # would wait for a host that may never come
                    raise EngineError(f"{what}: cannot be placed: {status['Err']}")
                if status.get("State") in ("failed", "rejected"):
                    reason = status.get("Err") or status.get("Message") or status["State"]
                    if "no such image" in reason.lower():
                        raise ImageNotFound(f"{what}: {reason}")
                    raise EngineError(f"{what}: task {status['State']}: {reason}")
            if self._reactor.seconds() > deadline:
                states = sorted({(t.get("Status") or {}).get("State", "?") for t in tasks})
                raise EngineError(
                    f"{what}: no task running after {START_DEADLINE:.0f} s "
                    f"(tasks: {', '.join(states) or 'none'}; can any host place it?)"
                )
            await deferLater(self._reactor, CHECK_DELAY, lambda: None)

    def removeContainer(self, containerId: str, timeout: float = 0) -> "Deferred[None]":
        """
        Remove the service, then wait until its tasks have ended on every
        host that is up (one that is down may list them for a long time).
        Its task gets the service's grace period (C{timeout} only lets the
        wait be that much longer).
        """
        return ensureDeferred(self._remove(containerId, timeout))

    async def _remove(self, serviceId: str, timeout: float = 0) -> None:
        what = f"service {serviceId[:12]}"

        def remove() -> None:
            try:
                self._client.remove_service(serviceId)
            except docker.errors.NotFound:
                pass

        await self._call(f"remove {what}", remove)
        deadline = self._reactor.seconds() + REMOVAL_DEADLINE + timeout
        while True:
            states = await self.listContainers({DEPLOYMENT_LABEL: None})
            if not any(s.containerId == serviceId for s in states):
                return
            if self._reactor.seconds() > deadline:
                raise EngineError(f"{what}: its task still runs {REMOVAL_DEADLINE:.0f} s after removal")
            await deferLater(self._reactor, CHECK_DELAY, lambda: None)

    def listContainers(self, labels: dict[str, Optional[str]]) -> "Deferred[list[ContainerState]]":
        return self._call("list services", listSwarm, self._client, labels)

    def events(
        self, labels: dict[str, Optional[str]], actions: tuple[str, ...] = ()
    ) -> "Deferred[IEventStream]":
        # service and node events carry no labels: every one asks for a poll
        filters = {"type": ["service", "node"]}

        def openStream() -> IEventStream:
            return _SwarmEventStream(self._client.events(filters=filters, decode=True))

        return self._call("open the event stream", openStream)
