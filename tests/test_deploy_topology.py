"""
Topology validation: an allow-list, errors that name the field.
"""

import copy
import re

import pytest

from statushub.engine import DEPLOYMENT_LABEL, NODE_LABEL, OWNER_LABEL
from statushub.resources import GIB, MIB, NO_MAXIMA, ResourcePolicy, Resources
from statushub.topology import MAX_NODES, TopologyError, validateTopology

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
    assert specs[1][1].name == "statushub.demo.db"
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
        # patterns match in full: $ would let a final newline through
        (changed("name", "abc\n"), "name"),
        (changed("nodes.0.id", "a\n"), "nodes[0].id"),
        (changed("nodes.0.image", "statushub/busybox\n"), "nodes[0].image"),
        (changed("nodes.1.env", {"MODE\n": "x"}), "nodes[1].env.MODE\n"),
        (changed("nodes.0.constraints", ["node.hostname==b\n"]), "nodes[0].constraints[0]"),
        (changed("nodes.0.constraints", ["node.hostname\n==b"]), "nodes[0].constraints[0]"),
        # numbers that are not finite, anywhere
        (changed("nodes.0.healthcheck.interval", float("nan")), "nodes[0].healthcheck.interval"),
        (changed("nodes.0.healthcheck.timeout", float("inf")), "nodes[0].healthcheck.timeout"),
        (changed("nodes.0.healthcheck.start_period", float("-inf")),
         "nodes[0].healthcheck.start_period"),
        (changed("nodes.0.healthcheck.retries", float("nan")), "nodes[0].healthcheck.retries"),
        (changed("nodes.0.colour", [1, {"x": float("nan")}]), "nodes[0].colour[1].x"),
        # NUL characters, in values and in keys
        (changed("nodes.1.env", {"MODE": "x\x00y"}), "nodes[1].env.MODE"),
        (changed("nodes.0.command", ["sleep", "1\x00"]), "nodes[0].command[1]"),
        (changed("name", "demo\x00"), "name"),
        (changed("nodes.1.env", {"A\x00": "x"}), "nodes[1].env.A\x00"),
        # a health check more often than once a second
        (changed("nodes.0.healthcheck.interval", 0.5), "nodes[0].healthcheck.interval"),
        (changed("nodes.0.healthcheck.interval", 0.999), "nodes[0].healthcheck.interval"),
        # a node's resources: sizes, CPUs, within the hub's maxima
        (changed("nodes.0.resources", "64m"), "nodes[0].resources"),
        (changed("nodes.0.resources", {"memory": "64m", "disk": "1g"}), "nodes[0].resources.disk"),
        (changed("nodes.0.resources", {"memory": "64x"}), "nodes[0].resources.memory"),
        (changed("nodes.0.resources", {"memory": "-64m"}), "nodes[0].resources.memory"),
        (changed("nodes.0.resources", {"memory": "1m"}), "nodes[0].resources.memory"),
        (changed("nodes.0.resources", {"memory": 1024}), "nodes[0].resources.memory"),
        (changed("nodes.0.resources", {"memory": 64.5}), "nodes[0].resources.memory"),
        (changed("nodes.0.resources", {"memory": True}), "nodes[0].resources.memory"),
        (changed("nodes.0.resources", {"memory": "64m\n"}), "nodes[0].resources.memory"),
        (changed("nodes.0.resources", {"memory": "5g"}), "nodes[0].resources.memory"),
        (changed("nodes.0.resources", {"memory": 4 * GIB + 1}), "nodes[0].resources.memory"),
        (changed("nodes.0.resources", {"cpus": 2.5}), "nodes[0].resources.cpus"),
        (changed("nodes.0.resources", {"cpus": 0}), "nodes[0].resources.cpus"),
        (changed("nodes.0.resources", {"cpus": -1}), "nodes[0].resources.cpus"),
        (changed("nodes.0.resources", {"cpus": "1"}), "nodes[0].resources.cpus"),
        (changed("nodes.0.resources", {"cpus": float("nan")}), "nodes[0].resources.cpus"),
        (changed("nodes.0.resources", {"cpus": float("inf")}), "nodes[0].resources.cpus"),
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


def test_deepDataIsNoRecursion() -> None:
    """
    Data as deep as a parser allows is refused, not a RecursionError.
    """
    deep: list = []
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(TopologyError) as caught:
        validateTopology(changed("nodes.0.colour", deep))
    assert caught.value.field == "nodes[0].colour"


def test_oneSecondChecks() -> None:
    topology = validateTopology(changed("nodes.0.healthcheck.interval", 1))
    assert topology.nodes[0].healthcheck.interval == 1.0


def test_resourcesDefaultToThePolicy() -> None:
    """
    A node that sets no resources gets the hub's defaults; one that sets
    one of the two gets the default of the other.
    """
    topology = validateTopology(changed("nodes.1.resources", {"memory": "64m"}))
    assert topology.nodes[0].resources == Resources(memory=512 * MIB, cpus=1.0)
    assert topology.nodes[1].resources == Resources(memory=64 * MIB, cpus=1.0)
    assert [spec.resources for _, spec in topology.containerSpecs()] == [
        Resources(512 * MIB, 1.0), Resources(64 * MIB, 1.0)]
    policy = ResourcePolicy(default=Resources(memory=128 * MIB, cpus=0.25), maxMemory=GIB,
                            maxCpus=0.5)
    topology = validateTopology(changed("nodes.1.resources", {"cpus": 0.5}), policy)
    assert topology.nodes[0].resources == Resources(128 * MIB, 0.25)
    assert topology.nodes[1].resources == Resources(128 * MIB, 0.5)


@pytest.mark.parametrize("written, size", [
    ("64m", 64 * MIB), ("64M", 64 * MIB), ("1g", GIB), ("1.5g", 3 * GIB // 2),
    ("65536k", 64 * MIB), (67108864, 64 * MIB), ("67108864", 64 * MIB), ("4g", 4 * GIB),
])
def test_memorySizes(written, size: int) -> None:
    topology = validateTopology(changed("nodes.0.resources", {"memory": written}))
    assert topology.nodes[0].resources.memory == size


def test_maximaAreTheHubs() -> None:
    """
    Above the maxima is refused with the key that sets them named; a hub
    with higher maxima (or the command line, which leaves them to the hub)
    takes it.
    """
    big = changed("nodes.0.resources", {"memory": "6g", "cpus": 4})
    with pytest.raises(TopologyError, match=r"max_memory"):
        validateTopology(big)
    roomy = ResourcePolicy(maxMemory=8 * GIB, maxCpus=4.0)
    assert validateTopology(big, roomy).nodes[0].resources == Resources(6 * GIB, 4.0)
    assert validateTopology(big, NO_MAXIMA).nodes[0].resources == Resources(6 * GIB, 4.0)
    with pytest.raises(TopologyError, match=r"max_cpus") as caught:
        validateTopology(changed("nodes.0.resources", {"cpus": 4}))
    assert caught.value.field == "nodes[0].resources.cpus"


def test_namesNeverCollide() -> None:
    """
    A container's name says its owner, deployment and node unambiguously:
    C{a-b}/C{c} and C{a}/C{b-c} are two containers, and so are two owners'.
    """
    def name(owner: str, deployment: str, node: str) -> str:
        topology = validateTopology({"name": deployment, "nodes": [{"id": node, "image": "i"}]})
        [(_, spec)] = topology.containerSpecs(owner)
        assert dict(spec.labels)[OWNER_LABEL] == owner
        return spec.name

    assert name("statushub", "a-b", "c") == "statushub.a-b.c"
    assert len({name("statushub", "a-b", "c"), name("statushub", "a", "b-c"),
                name("ops", "a-b", "c"), name("statushub-a", "b", "c")}) == 4
    # a valid Docker container name, however long
    assert re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+", name("o" * 32, "d" * 32, "n" * 32))
