"""
L{IContainerEngine} on a Docker Swarm, through a manager's API.

A node of a topology becomes a service with one replica, named after its
deployment and node (L{serviceName}) and labelled like a container: the deployment side
keeps working in containers and this engine maps its calls onto services.
Creating a container creates the service; starting it waits until its task
runs (or says why it cannot); removing it removes the service and waits for
its tasks to end on every host that is up; a list is three calls whatever the
number of services (services, tasks and nodes, by label), and gives each
service the state of its current task, with the host it is on.
"""

from __future__ import annotations

import hashlib
from typing import Any, Iterable, Mapping, Optional

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
    containerName,
)
from statushub.engine.docker import (
    LOG_DRIVER,
    LOG_OPTIONS,
    DockerEngine,
    DockerEventStream,
    labelFilter,
)
from statushub.interfaces import IContainerEngine, IEventStream

# a Swarm node label that names the host readably (hostnames may repeat)
HOST_LABEL = "io.statushub.host"
# how long a started service may take to run its task, and how often we look
START_DEADLINE = 60.0
REMOVAL_DEADLINE = 30.0
CHECK_DELAY = 0.25
# a node's process gets this long to end on SIGTERM before SIGKILL: the
# single engine kills at once, a service should not linger much longer
STOP_GRACE_SECONDS = 1

_RESTART_CONDITION = {"none": "none", "on-failure": "on-failure", "any": "any"}

# the task states of Swarm, in order, and the node status each one shows
_PENDING = ("new", "allocated", "pending", "assigned", "accepted", "preparing", "ready", "starting")
_TASK_STATUS = {
    **{state: "pending" for state in _PENDING},
    "running": "running",
    "complete": "exited",
    "shutdown": "exited",
    "failed": "failed",
    "rejected": "failed",
    "orphaned": "unknown",
    "remove": "removing",
}
# states a task does not leave
_FINAL = frozenset({"complete", "shutdown", "failed", "rejected", "orphaned", "remove"})
_HOST_STATUS = {"ready": "ready", "down": "down", "disconnected": "down"}


def taskStatus(taskState: str, hostStatus: str = "ready") -> str:
    """
    The node status that a task in C{taskState} shows (PRODUCT.md), on a
    host whose status is C{hostStatus} (C{ready}, C{down}, C{unknown}).

    A pure function.  A task on a host that is down is C{unknown} whatever
    it last said: nobody can tell what it does now.
    """
    if hostStatus == "down":
        return "unknown"
    return _TASK_STATUS.get(taskState, "unknown")


def hostStatus(node: Optional[Mapping[str, Any]]) -> str:
    """
    C{ready}, C{down} or C{unknown}, from a Swarm node as listed.
    """
    if node is None:
        return "unknown"
    return _HOST_STATUS.get((node.get("Status") or {}).get("State", ""), "unknown")


def hostName(node: Mapping[str, Any], nodes: Iterable[Mapping[str, Any]]) -> str:
    """
    A readable name for a Swarm node: its C{io.statushub.host} label, else
    its hostname, with the start of its id when another node has the same.
    """
    label = ((node.get("Spec") or {}).get("Labels") or {}).get(HOST_LABEL)
    if label:
        return label
    hostname = (node.get("Description") or {}).get("Hostname") or ""
    same = [n for n in nodes if (n.get("Description") or {}).get("Hostname") == hostname]
    if hostname and len(same) == 1:
        return hostname
    return f"{hostname or 'node'} {node['ID'][:12]}"


def _current(tasks: list[Mapping[str, Any]]) -> Mapping[str, Any]:
    """
    The task that says how a one-replica service is: the newest one meant
    to run, else the newest of all.
    """
    newest = lambda t: (t.get("Version") or {}).get("Index", 0)  # noqa: E731
    wanted = [t for t in tasks if t.get("DesiredState") == "running"]
    return max(wanted or tasks, key=newest)


def swarmStates(
    services: Iterable[Mapping[str, Any]],
    tasks: Iterable[Mapping[str, Any]],
    nodes: Iterable[Mapping[str, Any]],
) -> list[ContainerState]:
    """
    What one list of services, tasks and nodes shows, as one
    L{ContainerState} per service (keyed by the service's id), plus one per
    removed service whose task still runs on a host that is up (C{removing}:
    a teardown waits for it; one on a host that is down it never waits for).

    A pure function.
    """
    nodes = list(nodes)
    byId = {n["ID"]: n for n in nodes}
    byService: dict[str, list[Mapping[str, Any]]] = {}
    for task in tasks:
        byService.setdefault(task.get("ServiceID", ""), []).append(task)
    states = []
    listed = set()
    for service in services:
        serviceId = service["ID"]
        listed.add(serviceId)
        labels = dict((service.get("Spec") or {}).get("Labels") or {})
        serviceTasks = byService.get(serviceId, [])
        if not serviceTasks:
            states.append(ContainerState(serviceId, "pending", labels=labels))
            continue
        task = _current(serviceTasks)
        states.append(_taskState(serviceId, labels, task, byId, nodes, service))
    for serviceId, serviceTasks in byService.items():
        if serviceId in listed:
            continue
        for task in serviceTasks:
            node = byId.get(task.get("NodeID", ""))
            state = (task.get("Status") or {}).get("State", "")
            if state in _FINAL or hostStatus(node) != "ready":
                continue
            labels = dict(((task.get("Spec") or {}).get("ContainerSpec") or {}).get("Labels") or {})
            states.append(
                ContainerState(serviceId, "removing", labels=labels,
                               host=hostName(node, nodes) if node else None, hostStatus="ready")
            )
            break
    return states


def _taskState(
    serviceId: str,
    labels: dict[str, str],
    task: Mapping[str, Any],
    byId: Mapping[str, Mapping[str, Any]],
    nodes: list[Mapping[str, Any]],
    service: Mapping[str, Any],
) -> ContainerState:
    status = task.get("Status") or {}
    node = byId.get(task.get("NodeID", ""))
    host = hostStatus(node) if task.get("NodeID") else "unknown"
    word = taskStatus(status.get("State", ""), host)
    error = None
    if word == "failed":
        error = status.get("Err") or status.get("Message") or "the task failed"
    containerId = (status.get("ContainerStatus") or {}).get("ContainerID") or None
    health = None
    taskSpec = ((service.get("Spec") or {}).get("TaskTemplate") or {}).get("ContainerSpec") or {}
    if word == "running" and (taskSpec.get("Healthcheck") or {}).get("Test"):
        # Swarm runs a task with a health check only once it is healthy,
        # and replaces it when it turns unhealthy
        health = "healthy"
    return ContainerState(
        serviceId,
        word,
        health,
        labels=labels,
        container=containerId,
        host=hostName(node, nodes) if node is not None else None,
        hostStatus=host,
        error=error,
    )


def listSwarm(client: Any, labels: dict[str, Optional[str]]) -> list[ContainerState]:
    """
    One list (see L{swarmStates}) from the Docker SDK's C{client}: three
    calls, whatever the number of services.  Blocks.
    """
    filters = {"label": labelFilter(labels)}
    services = client.services(filters=filters)
    tasks = client.tasks(filters=filters)
    nodes = client.nodes()
    return swarmStates(services, tasks, nodes)


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
    deployment, node = labels[DEPLOYMENT_LABEL], labels[NODE_LABEL]
    unique = containerName(labels.get(OWNER_LABEL, DEFAULT_OWNER), deployment, node)
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
    """

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
                stop_grace_period=STOP_GRACE_SECONDS * 10**9,
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

    def startContainer(self, containerId: str) -> "Deferred[None]":
        """
        Nothing to start (Swarm schedules at once): wait until the service's
        task runs; fail with the task's reason if it cannot.
        """
        return ensureDeferred(self._running(containerId))

    async def _running(self, serviceId: str) -> None:
        what = f"service {serviceId[:12]}"
        deadline = self._reactor.seconds() + START_DEADLINE
        while True:
            tasks = await self._call(
                f"list the tasks of {what}", self._client.tasks, filters={"service": serviceId}
            )
            for task in tasks:
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

    def removeContainer(self, containerId: str) -> "Deferred[None]":
        """
        Remove the service, then wait until its tasks have ended on every
        host that is up (one that is down may list them for a long time).
        """
        return ensureDeferred(self._remove(containerId))

    async def _remove(self, serviceId: str) -> None:
        what = f"service {serviceId[:12]}"

        def remove() -> None:
            try:
                self._client.remove_service(serviceId)
            except docker.errors.NotFound:
                pass

        await self._call(f"remove {what}", remove)
        deadline = self._reactor.seconds() + REMOVAL_DEADLINE
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
