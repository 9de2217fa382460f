"""
What a Swarm shows of a deployment's nodes: from one list of services, tasks
and nodes (hosts), each service's state as a L{ContainerState}, and the host
it is on.  Pure functions, and the one call that lists (L{listSwarm}); the
engine itself is L{statushub.engine.swarm}.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Iterable, Mapping, Optional

from statushub.engine import ContainerState
from statushub.engine.docker import labelFilter

# a Swarm node label that names the host readably (hostnames may repeat)
HOST_LABEL = "io.statushub.host"

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


def currentTask(tasks: list[Mapping[str, Any]]) -> Mapping[str, Any]:
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
        task = currentTask(serviceTasks)
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
