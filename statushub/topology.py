"""
Topologies: the user's description of a deployment, validated before
anything is created.

Validation is an allow-list: a node may have exactly the fields below and no
other, so nothing that reaches the host (privileged mode, mounts, host
namespaces, devices, capabilities, ports...) can get through, whatever the
engine would accept.  Every error names the field, e.g. C{nodes[1].id}.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

from statushub.engine import (
    DEFAULT_OWNER,
    DEFAULT_STOP_TIMEOUT,
    DEPLOYMENT_LABEL,
    ENTRY_LABEL,
    INDEX_LABEL,
    NODE_LABEL,
    NODES_LABEL,
    OWNER_LABEL,
    ContainerSpec,
    RESTART_POLICIES,
    HealthCheckSpec,
    containerName,
)
from statushub.resources import (
    ResourceError,
    ResourcePolicy,
    Resources,
    checkCpus,
    checkMemory,
    formatMemory,
)
from statushub.names import CONSTRAINT, ENV_NAME, IMAGE_REFERENCE, SAFE_NAME

MAX_NODES = 32
MAX_ARGUMENT = 4096

TOPOLOGY_FIELDS = {"name", "nodes"}
NODE_FIELDS = {
    "id", "image", "command", "env", "healthcheck", "restart", "constraints", "resources",
}
RESOURCE_FIELDS = {"memory", "cpus"}
MAX_CONSTRAINTS = 16
HEALTHCHECK_FIELDS = {"test", "interval", "timeout", "retries", "start_period"}
# a check more often than this is a load on the host, not a health check
MIN_CHECK_INTERVAL = 1.0
# fields the engine knows that would give a node a way to the host: named
# in the error so the user learns why, not just that the field is unknown
HOST_REACHING = {
    "privileged", "volumes", "mounts", "binds", "devices", "cap_add", "capabilities",
    "network_mode", "network", "pid_mode", "pid", "ipc_mode", "ipc", "uts_mode",
    "userns_mode", "ports", "security_opt", "user", "sysctls", "cgroup_parent",
    "host_config", "hostconfig",
}


class TopologyError(ValueError):
    """
    The topology cannot be deployed.  C{field} names where (C{nodes[0].image});
    C{str()} says where and why.
    """

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


@dataclass(frozen=True)
class Node:
    id: str
    image: str
    command: Optional[tuple[str, ...]] = None
    env: tuple[tuple[str, str], ...] = ()
    healthcheck: Optional[HealthCheckSpec] = None
    restart: str = "none"
    constraints: tuple[str, ...] = ()
    # what it asked for, else the hub's defaults ([deploy] default_memory...)
    resources: Resources = Resources()
    # the entry this node was validated from (its resources as resolved), as
    # compact JSON ("" when not known: adopted from a container that did not
    # say)
    entry: str = field(default="", compare=False)


@dataclass(frozen=True)
class Topology:
    """
    @ivar document: the JSON document it was validated from (only allowed
        fields, by then): how it crosses to another hub (several hubs as
        one), which validates it again.
    """

    name: str
    nodes: tuple[Node, ...]
    document: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def containerSpecs(
        self, owner: str = DEFAULT_OWNER, stopTimeout: float = DEFAULT_STOP_TIMEOUT
    ) -> list[tuple[Node, ContainerSpec]]:
        """
        One container per node, named and labelled after the deployment and
        the node (the labels are how a restarted hub finds them again, and
        tells which nodes' containers are gone), and labelled with the
        C{owner} of the hub that makes them: the one way a node's container
        is made, by a deploy and by a recreate.

        @param stopTimeout: the grace each container gets to end on SIGTERM.
        """
        allNodes = ",".join(node.id for node in self.nodes)
        return [
            (
                node,
                ContainerSpec(
                    name=containerName(owner, self.name, node.id),
                    image=node.image,
                    command=node.command,
                    env=node.env,
                    labels=(
                        (OWNER_LABEL, owner),
                        (DEPLOYMENT_LABEL, self.name),
                        (NODE_LABEL, node.id),
                        (INDEX_LABEL, str(index)),
                        (NODES_LABEL, allNodes),
                    ) + (((ENTRY_LABEL, node.entry),) if node.entry else ()),
                    healthcheck=node.healthcheck,
                    restart=node.restart,
                    constraints=node.constraints,
                    resources=node.resources,
                    stopTimeout=stopTimeout,
                ),
            )
            for index, node in enumerate(self.nodes)
        ]


def _fieldName(where: str, key: Any) -> str:
    if isinstance(key, int):
        return f"{where}[{key}]"
    return f"{where}.{key}" if where else str(key)


def _refuseOddValues(data: Any) -> None:
    """
    Refuse what no field may hold, wherever it is: a number that is not
    finite (JSON's C{NaN} and C{Infinity}, TOML's C{nan} and C{inf}) or a
    NUL character in a string or a key.  Walked with a list, not recursion:
    the data may be as deep as the parser allowed.

    @raise TopologyError: naming the first such field.
    """
    pending: list[tuple[str, Any]] = [("", data)]
    while pending:
        where, value = pending.pop()
        if isinstance(value, float) and not math.isfinite(value):
            raise TopologyError(where or "topology", f"must be a finite number, not {value}")
        if isinstance(value, str) and "\x00" in value:
            raise TopologyError(where or "topology", "must not contain a NUL character")
        if isinstance(value, dict):
            items = list(value.items())
        elif isinstance(value, list):
            items = list(enumerate(value))
        else:
            continue
        for key, item in reversed(items):
            field = _fieldName(where, key)
            if isinstance(key, str) and "\x00" in key:
                raise TopologyError(field, "a key must not contain a NUL character")
            pending.append((field, item))


def _unknownFields(data: Mapping[str, Any], allowed: set[str], where: str) -> None:
    for key in data:
        if key in allowed:
            continue
        field = f"{where}.{key}" if where else str(key)
        if str(key).lower() in HOST_REACHING:
            raise TopologyError(field, "not allowed: it would give the node access to the host")
        raise TopologyError(field, f"unknown field (allowed: {', '.join(sorted(allowed))})")


def _string(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise TopologyError(field, f"must be a string, not {_typeName(value)}")
    return value


def _typeName(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
             int: "a number", float: "a number", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def _seconds(value: Any, field: str, minimum: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TopologyError(field, f"must be a number of seconds, not {_typeName(value)}")
    if not math.isfinite(value) or value < minimum or value > 3600:
        raise TopologyError(field, f"must be between {minimum} and 3600 seconds")
    return float(value)


def _stringList(value: Any, field: str, allowEmpty: bool = False) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise TopologyError(field, f"must be a list of strings, not {_typeName(value)}")
    if not value and not allowEmpty:
        raise TopologyError(field, "must not be empty")
    items = []
    for i, item in enumerate(value):
        item = _string(item, f"{field}[{i}]")
        if len(item) > MAX_ARGUMENT or "\x00" in item:
            raise TopologyError(f"{field}[{i}]", "too long or contains a NUL byte")
        items.append(item)
    return tuple(items)


def _healthcheck(value: Any, field: str) -> HealthCheckSpec:
    if not isinstance(value, dict):
        raise TopologyError(field, f"must be an object, not {_typeName(value)}")
    _unknownFields(value, HEALTHCHECK_FIELDS, field)
    if "test" not in value:
        raise TopologyError(f"{field}.test", "is required")
    test = _stringList(value["test"], f"{field}.test")
    if test[0] not in ("CMD", "CMD-SHELL") or len(test) < 2:
        raise TopologyError(
            f"{field}.test", 'must be ["CMD", program, args...] or ["CMD-SHELL", command]'
        )
    retries = value.get("retries", 3)
    if isinstance(retries, bool) or not isinstance(retries, int) or not 1 <= retries <= 100:
        raise TopologyError(f"{field}.retries", "must be a whole number from 1 to 100")
    return HealthCheckSpec(
        test=test,
        interval=_seconds(value.get("interval", 1.0), f"{field}.interval", MIN_CHECK_INTERVAL),
        timeout=_seconds(value.get("timeout", 1.0), f"{field}.timeout", 0.1),
        retries=retries,
        startPeriod=_seconds(value.get("start_period", 0.0), f"{field}.start_period", 0.0),
    )


def _resources(value: Any, field: str, policy: ResourcePolicy) -> Resources:
    """
    A node's C{resources}: what it sets, the defaults for the rest, each
    within the maxima.
    """
    if not isinstance(value, dict):
        raise TopologyError(field, f"must be an object, not {_typeName(value)}")
    _unknownFields(value, RESOURCE_FIELDS, field)
    memory, cpus = policy.default.memory, policy.default.cpus
    try:
        if "memory" in value:
            memory = checkMemory(value["memory"])
    except ResourceError as e:
        raise TopologyError(f"{field}.memory", str(e)) from None
    try:
        if "cpus" in value:
            cpus = checkCpus(value["cpus"])
    except ResourceError as e:
        raise TopologyError(f"{field}.cpus", str(e)) from None
    if memory > policy.maxMemory:
        raise TopologyError(
            f"{field}.memory",
            f"{formatMemory(memory)} is above this hub's most, "
            f"{formatMemory(policy.maxMemory)} ([deploy] max_memory)",
        )
    if cpus > policy.maxCpus:
        raise TopologyError(
            f"{field}.cpus",
            f"{cpus:g} is above this hub's most, {policy.maxCpus:g} ([deploy] max_cpus)",
        )
    return Resources(memory=memory, cpus=cpus)


def _node(data: Any, where: str, policy: ResourcePolicy) -> Node:
    if not isinstance(data, dict):
        raise TopologyError(where, f"must be an object, not {_typeName(data)}")
    _unknownFields(data, NODE_FIELDS, where)
    for required in ("id", "image"):
        if required not in data:
            raise TopologyError(f"{where}.{required}", "is required")
    nodeId = _string(data["id"], f"{where}.id")
    if not SAFE_NAME.fullmatch(nodeId):
        raise TopologyError(
            f"{where}.id",
            f"{nodeId!r} is not a safe id: 1-32 of a-z, 0-9, '_', '-', starting with a letter or digit",
        )
    image = _string(data["image"], f"{where}.image")
    if not IMAGE_REFERENCE.fullmatch(image):
        raise TopologyError(f"{where}.image", f"{image!r} is not an image reference")
    command = None
    if "command" in data:
        command = _stringList(data["command"], f"{where}.command")
    env: tuple[tuple[str, str], ...] = ()
    if "env" in data:
        if not isinstance(data["env"], dict):
            raise TopologyError(f"{where}.env", f"must be an object, not {_typeName(data['env'])}")
        pairs = []
        for key, value in data["env"].items():
            if not ENV_NAME.fullmatch(key):
                raise TopologyError(f"{where}.env.{key}", "is not a valid variable name")
            pairs.append((key, _string(value, f"{where}.env.{key}")))
        env = tuple(pairs)
    healthcheck = None
    if "healthcheck" in data:
        healthcheck = _healthcheck(data["healthcheck"], f"{where}.healthcheck")
    restart = "none"
    if "restart" in data:
        restart = _string(data["restart"], f"{where}.restart")
        if restart not in RESTART_POLICIES:
            raise TopologyError(
                f"{where}.restart",
                f"{restart!r} is not a restart policy (one of: {', '.join(RESTART_POLICIES)})",
            )
    constraints: tuple[str, ...] = ()
    if "constraints" in data:
        constraints = _stringList(data["constraints"], f"{where}.constraints", allowEmpty=True)
        if len(constraints) > MAX_CONSTRAINTS:
            raise TopologyError(f"{where}.constraints", f"at most {MAX_CONSTRAINTS}")
        for i, constraint in enumerate(constraints):
            if not CONSTRAINT.fullmatch(constraint):
                raise TopologyError(
                    f"{where}.constraints[{i}]",
                    f"{constraint!r} is not a Swarm placement constraint "
                    "(node.id, node.hostname, node.role, node.platform.os, "
                    "node.platform.arch, node.labels.KEY or engine.labels.KEY, "
                    "then == or !=, then a value; e.g. node.hostname==b)",
                )
    resources = policy.default
    if "resources" in data:
        resources = _resources(data["resources"], f"{where}.resources", policy)
    # the entry its containers carry, with its resources as resolved now: a
    # hub that makes the node again later makes it the same
    entry = entryText({**data, "resources": {"memory": resources.memory, "cpus": resources.cpus}})
    return Node(id=nodeId, image=image, command=command, env=env, healthcheck=healthcheck,
                restart=restart, constraints=constraints, resources=resources, entry=entry)


def entryText(data: Mapping[str, Any]) -> str:
    """
    A node's topology entry as the compact JSON its containers carry.
    """
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def nodeFromEntry(text: str, policy: ResourcePolicy = ResourcePolicy()) -> Optional[Node]:
    """
    The node a container's entry label describes, validated as a deploy
    validates it (with this hub's C{policy}); L{None} when it is not one (a
    label edited, a rule changed since).
    """
    try:
        data = json.loads(text)
        _refuseOddValues(data)
        return _node(data, "entry", policy)
    except (ValueError, TopologyError):
        return None


def validateTopology(data: Any, policy: ResourcePolicy = ResourcePolicy()) -> Topology:
    """
    Check a topology (parsed JSON or TOML) and return it as a value.

    @param policy: the resources of a node that sets none, and the most one
        may set (the hub's C{[deploy]} section).
    @raise TopologyError: naming the first field that is wrong.
    """
    _refuseOddValues(data)
    if not isinstance(data, dict):
        raise TopologyError("topology", f"must be an object, not {_typeName(data)}")
    _unknownFields(data, TOPOLOGY_FIELDS, "")
    if "name" not in data:
        raise TopologyError("name", "is required")
    name = _string(data["name"], "name")
    if not SAFE_NAME.fullmatch(name):
        raise TopologyError(
            "name",
            f"{name!r} is not a safe name: 1-32 of a-z, 0-9, '_', '-', starting with a letter or digit",
        )
    if "nodes" not in data:
        raise TopologyError("nodes", "is required")
    if not isinstance(data["nodes"], list):
        raise TopologyError("nodes", f"must be a list, not {_typeName(data['nodes'])}")
    if not data["nodes"]:
        raise TopologyError("nodes", "must have at least one node")
    if len(data["nodes"]) > MAX_NODES:
        raise TopologyError("nodes", f"at most {MAX_NODES} nodes")
    nodes: list[Node] = []
    seen: set[str] = set()
    for index, nodeData in enumerate(data["nodes"]):
        node = _node(nodeData, f"nodes[{index}]", policy)
        if node.id in seen:
            raise TopologyError(f"nodes[{index}].id", f"duplicate node id {node.id!r}")
        seen.add(node.id)
        nodes.append(node)
    return Topology(name=name, nodes=tuple(nodes), document=data)
