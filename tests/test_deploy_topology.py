"""
Topology validation: an allow-list, errors that name the field.
"""

import copy

import pytest

from statushub.topology import MAX_NODES, TopologyError, validateTopology
from statushub.engine import DEPLOYMENT_LABEL, NODE_LABEL

GOOD = {
    "name": "demo",
    "nodes": [
        {"id": "web", "image": "statushub/busybox", "command": ["sleep", "infinity"],
         "healthcheck": {"test": ["CMD-SHELL", "true"], "interval": 1.0}},
        {"id": "db", "image": "statushub/busybox", "env": {"MODE": "x"}},
    ],
}


def changed(path: str, value, delete: bool = False) -> dict:
    data = copy.deepcopy(GOOD)
    target = data
    keys = path.split(".")
    for key in keys[:-1]:
        target = target[int(key)] if isinstance(target, list) else target[key]
    last = keys[-1]
    if delete:
        del target[last]
    elif isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value
    return data


def test_good() -> None:
    topology = validateTopology(GOOD)
    assert topology.name == "demo"
    assert [n.id for n in topology.nodes] == ["web", "db"]
    web = topology.nodes[0]
    assert web.command == ("sleep", "infinity")
    assert web.healthcheck.test == ("CMD-SHELL", "true")
    assert web.healthcheck.interval == 1.0
    specs = topology.containerSpecs()
    assert specs[1][1].name == "statushub-demo-db"
    labels = dict(specs[1][1].labels)
    assert labels[DEPLOYMENT_LABEL] == "demo" and labels[NODE_LABEL] == "db"
    assert specs[1][1].env == (("MODE", "x"),)


@pytest.mark.parametrize(
    "data, field",
    [
        (changed("nodes.1.id", "web"), "nodes[1].id"),
        (changed("nodes.0.id", "../etc"), "nodes[0].id"),
        (changed("nodes.0.id", "a" * 33), "nodes[0].id"),
        (changed("nodes.0.id", 7), "nodes[0].id"),
        (changed("nodes.0.id", None, delete=True), "nodes[0].id"),
        (changed("nodes.0.image", "x; rm -rf /"), "nodes[0].image"),
        (changed("nodes.0.privileged", True), "nodes[0].privileged"),
        (changed("nodes.0.volumes", ["/:/host"]), "nodes[0].volumes"),
        (changed("nodes.1.network_mode", "host"), "nodes[1].network_mode"),
        (changed("nodes.0.pid_mode", "host"), "nodes[0].pid_mode"),
        (changed("nodes.0.devices", ["/dev/sda"]), "nodes[0].devices"),
        (changed("nodes.0.cap_add", ["ALL"]), "nodes[0].cap_add"),
        (changed("nodes.0.colour", "blue"), "nodes[0].colour"),
        (changed("nodes.0.command", "sleep 1"), "nodes[0].command"),
        (changed("nodes.0.command", ["sleep", 1]), "nodes[0].command[1]"),
        (changed("nodes.1.env", {"A B": "x"}), "nodes[1].env.A B"),
        (changed("nodes.0.healthcheck.test", ["true"]), "nodes[0].healthcheck.test"),
        (changed("nodes.0.healthcheck.interval", -1), "nodes[0].healthcheck.interval"),
        (changed("nodes.0.healthcheck.interval", True), "nodes[0].healthcheck.interval"),
        (changed("nodes.0.healthcheck.retries", 0), "nodes[0].healthcheck.retries"),
        (changed("nodes.0.healthcheck.privileged", True), "nodes[0].healthcheck.privileged"),
        (changed("nodes.0.restart", "always"), "nodes[0].restart"),
        (changed("nodes.0.restart", True), "nodes[0].restart"),
        (changed("nodes.0.constraints", "node.hostname==b"), "nodes[0].constraints"),
        (changed("nodes.0.constraints", ["node.hostname=b"]), "nodes[0].constraints[0]"),
        (changed("nodes.0.constraints", ["node.labels.x==y", "node.pid==1"]), "nodes[0].constraints[1]"),
        (changed("nodes.0.constraints", ["node.hostname==b; true"]), "nodes[0].constraints[0]"),
        (changed("name", "Demo!"), "name"),
        (changed("name", None, delete=True), "name"),
        (changed("nodes", []), "nodes"),
        (changed("nodes", {"web": {}}), "nodes"),
        (changed("nodes", [{"id": f"n{i}", "image": "i"} for i in range(MAX_NODES + 1)]), "nodes"),
        (changed("nodes.0", "web"), "nodes[0]"),
        (changed("owner", "me"), "owner"),
        ([GOOD], "topology"),
    ],
)
def test_invalidNamesField(data, field: str) -> None:
    with pytest.raises(TopologyError) as caught:
        validateTopology(data)
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ")


def test_hostReachingFieldSaysWhy() -> None:
    with pytest.raises(TopologyError, match="access to the host"):
        validateTopology(changed("nodes.0.privileged", True))


def test_restart() -> None:
    """
    C{restart} defaults to C{none} (Swarm's own default is C{any}: it must
    be said) and reaches the container spec.
    """
    topology = validateTopology(changed("nodes.1.restart", "any"))
    assert [n.restart for n in topology.nodes] == ["none", "any"]
    assert [spec.restart for _, spec in topology.containerSpecs()] == ["none", "any"]
    assert validateTopology(changed("nodes.0.restart", "on-failure")).nodes[0].restart == "on-failure"


def test_constraints() -> None:
    """
    Swarm placement constraints reach the spec as they were written.
    """
    pins = ["node.hostname==b", "node.labels.io.statushub.host != worker", "engine.labels.x==1"]
    topology = validateTopology(changed("nodes.0.constraints", pins))
    assert topology.nodes[0].constraints == tuple(pins)
    assert topology.nodes[1].constraints == ()
    assert topology.containerSpecs()[0][1].constraints == tuple(pins)
