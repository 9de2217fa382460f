"""
L{IContainerEngine} on a Docker Swarm, through a manager's API.

A node of a topology becomes a service with one replica, named
C{<deployment>_<node>} and labelled like a container: the deployment side
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

from dataclasses import replace
from typing import Any, Iterable, Mapping, Optional

import docker.errors
from docker.types import (
    ContainerSpec as SwarmContainerSpec,
    Healthcheck,
    Placement,
    RestartPolicy,
    ServiceMode,
    TaskTemplate,
)
from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.task import deferLater
from zope.interface import implementer

from statushub.engine import (
    DEPLOYMENT_LABEL,
    NODE_LABEL,
    ContainerSpec,
    ContainerState,
    EngineError,
    EngineEvent,
    ImageNotFound,
    RecreateIncomplete,
)
from statushub.engine.docker import DockerEngine, DockerEventStream, labelFilter
from statushub.interfaces import IContainerEngine, IEventStream

# a Swarm node label that names the host readably (hostnames may repeat)
HOST_LABEL = "io.statushub.host"
# how long a started service may take to run its task, and how often we look
START_DEADLINE = 60.0
REMOVAL_DEADLINE = 30.0
CHECK_DELAY = 0.25

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
        stopped = wantedReplicas(service) == 0
        if not serviceTasks:
            # scaled to 0 with its tasks pruned: stopped, not waiting
            states.append(ContainerState(
                serviceId, "exited" if stopped else "pending", labels=labels, keptStopped=stopped,
            ))
            continue
        task = _current(serviceTasks)
        state = _taskState(serviceId, labels, task, byId, nodes, service)
        states.append(replace(state, keptStopped=True) if stopped else state)
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


def wantedReplicas(service: Mapping[str, Any]) -> Optional[int]:
    """
    How many replicas a replicated service asks for (L{None}: another mode).
    """
    mode = ((service.get("Spec") or {}).get("Mode") or {}).get("Replicated")
    return None if mode is None else int(mode.get("Replicas", 1))


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


class _NoSuchService(EngineError):
    """
    The service is gone (removed behind the hub's back).
    """


def serviceName(spec: ContainerSpec) -> str:
    """
    C{<deployment>_<node>}, from the labels every node's spec carries.
    """
    labels = dict(spec.labels)
    return f"{labels[DEPLOYMENT_LABEL]}_{labels[NODE_LABEL]}"


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
                # the grace a task gets when it is stopped or replaced
                stop_grace_period=int(spec.stopTimeout * 1e9),
            )
            template = TaskTemplate(
                container,
                # Swarm's own default is "any": say "none" when the node does
                restart_policy=RestartPolicy(condition=_RESTART_CONDITION[spec.restart]),
                placement=Placement(constraints=list(spec.constraints)) if spec.constraints else None,
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
