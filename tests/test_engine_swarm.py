"""
The Swarm engine's pure parts: task states to node statuses, hosts, what a
list of services, tasks and nodes shows; and its calls per poll, counted on
a stand-in client (the real swarm is tests/test_swarm.py's).
"""

from __future__ import annotations

import re

import pytest
import pytest_twisted
from twisted.internet import reactor

from statushub.deploy.bridge import nodeStatuses
from statushub.engine import DEPLOYMENT_LABEL, NODE_LABEL, OWNER_LABEL, ContainerSpec, EngineError
from statushub.engine.docker import DockerEngine
from statushub.engine.swarm import (
    SwarmEngine,
    hostName,
    hostStatus,
    serviceName,
    swarmStates,
    taskStatus,
)


@pytest.mark.parametrize(
    "state, status",
    [
        ("new", "pending"), ("allocated", "pending"), ("pending", "pending"),
        ("assigned", "pending"), ("accepted", "pending"), ("preparing", "pending"),
        ("ready", "pending"), ("starting", "pending"),
        ("running", "running"),
        ("complete", "exited"), ("shutdown", "exited"),
        ("failed", "failed"), ("rejected", "failed"),
        ("orphaned", "unknown"),
        ("remove", "removing"),
        ("something-new", "unknown"),
    ],
)
def test_taskStatus(state: str, status: str) -> None:
    assert taskStatus(state) == status
    assert taskStatus(state, "ready") == status


def test_taskOnHostDown() -> None:
    """
    Whatever a task last said, on a host that is down it is unknown.
    """
    assert taskStatus("running", "down") == "unknown"
    assert taskStatus("complete", "down") == "unknown"


def node(nodeId: str, state: str = "ready", hostname: str = "vm", label: str = "") -> dict:
    return {
        "ID": nodeId,
        "Spec": {"Labels": {"io.statushub.host": label} if label else {}},
        "Description": {"Hostname": hostname},
        "Status": {"State": state},
    }


def test_hosts() -> None:
    a, b, c = node("aaaaaaaaaaaaaaaa", label="rack1"), node("bbbbbbbbbbbbbbbb"), node("cc", hostname="other")
    assert hostName(a, [a, b, c]) == "rack1"
    # the same hostname twice: told apart by the node id
    b2 = node("dddddddddddddddd")
    assert hostName(b, [a, b, b2, c]) == "vm bbbbbbbbbbbb"
    assert hostName(c, [a, b, c]) == "other"
    assert [hostStatus(node("x", s)) for s in ("ready", "down", "disconnected", "unknown")] == [
        "ready", "down", "down", "unknown"
    ]
    assert hostStatus(None) == "unknown"


def service(serviceId: str, name: str, healthcheck: bool = False) -> dict:
    spec = {"Healthcheck": {"Test": ["CMD-SHELL", "true"]}} if healthcheck else {}
    return {
        "ID": serviceId,
        "Spec": {
            "Labels": {DEPLOYMENT_LABEL: "d", NODE_LABEL: name},
            "TaskTemplate": {"ContainerSpec": spec},
        },
    }


def task(serviceId: str, nodeId: str, state: str, index: int, desired: str = "running",
         container: str = "", err: str = "") -> dict:
    status = {"State": state}
    if container:
        status["ContainerStatus"] = {"ContainerID": container}
    if err:
        status["Err"] = err
    return {
        "ID": f"t{index}", "ServiceID": serviceId, "NodeID": nodeId, "DesiredState": desired,
        "Version": {"Index": index}, "Status": status,
        "Spec": {"ContainerSpec": {"Labels": {DEPLOYMENT_LABEL: "d", NODE_LABEL: "x"}}},
    }


def test_swarmStates() -> None:
    """
    Each service shows its current task (the newest meant to run): the
    rescheduled one with its new container on the host that is up; a failed
    task says why; a removed service whose task still runs on a host that is
    up shows as removing, one on a host that is down not at all.
    """
    up, down = node("up", label="manager"), node("down", "down", label="worker")
    services = [service("s1", "web", healthcheck=True), service("s2", "db"), service("s3", "new")]
    tasks = [
        task("s1", "down", "running", 1, desired="shutdown", container="old"),
        task("s1", "up", "running", 5, container="new"),
        task("s2", "up", "rejected", 3, err="No such image: x"),
        task("gone", "up", "running", 7, desired="shutdown", container="c"),
        task("gone2", "down", "running", 8, desired="shutdown", container="c2"),
    ]
    states = {s.containerId: s for s in swarmStates(services, tasks, [up, down])}
    assert set(states) == {"s1", "s2", "s3", "gone"}
    web = states["s1"]
    assert (web.status, web.health, web.container, web.host, web.hostStatus) == (
        "running", "healthy", "new", "manager", "ready"
    )
    assert web.labels[NODE_LABEL] == "web"
    assert (states["s2"].status, states["s2"].error) == ("failed", "No such image: x")
    assert states["s3"].status == "pending"
    assert states["gone"].status == "removing"

    # a node on the host that died: unknown, and says where
    stranded = swarmStates([service("s1", "web")], [task("s1", "down", "running", 1, container="c")], [up, down])
    assert (stranded[0].status, stranded[0].host, stranded[0].hostStatus) == ("unknown", "worker", "down")

    # through the bridge: the feed's fields
    [json] = [n.toJSON() for n in nodeStatuses({"s2": states["s2"]}, [("db", "s2")])]
    assert json == {"nodeId": "db", "containerId": "s2", "status": "failed",
                    "host": "manager", "hostStatus": "ready", "error": "No such image: x"}
    [json] = [n.toJSON() for n in nodeStatuses({"s1": web}, [("web", "s1")])]
    assert json["containerId"] == "new" and json["health"] == "healthy"


def test_scaledToZero() -> None:
    """
    A service scaled to 0 replicas is kept stopped: its ended task shows
    exited, and with its tasks pruned it is exited too, not pending.
    """
    up = node("up")
    stopped = service("s1", "web")
    stopped["Spec"]["Mode"] = {"Replicated": {"Replicas": 0}}
    ended = task("s1", "up", "shutdown", 4, desired="shutdown", container="c")
    [withTask] = swarmStates([stopped], [ended], [up])
    assert (withTask.status, withTask.keptStopped) == ("exited", True)
    [pruned] = swarmStates([stopped], [], [up])
    assert (pruned.status, pruned.keptStopped) == ("exited", True)
    running = service("s2", "api")
    running["Spec"]["Mode"] = {"Replicated": {"Replicas": 1}}
    [waiting] = swarmStates([running], [], [up])
    assert (waiting.status, waiting.keptStopped) == ("pending", False)


# Swarm's rule for a service's name (swarmkit: at most 63, no dot, a letter
# or digit at both ends)
SWARM_NAME = re.compile(r"[a-zA-Z0-9](?:[-_]*[A-Za-z0-9]+)*")


def named(owner: str, deployment: str, node: str) -> str:
    labels = ((OWNER_LABEL, owner), (DEPLOYMENT_LABEL, deployment), (NODE_LABEL, node))
    return serviceName(ContainerSpec(name="x", image="i", labels=labels))


def test_serviceName() -> None:
    """
    Readable as far as it fits, never shared: not between deployments whose
    names join alike, not between owners, whatever the names' lengths and
    ends (a node may end in - or _, which a service's name may not).
    """
    assert re.fullmatch(r"demo_web_[0-9a-f]{20}", named("statushub", "demo", "web"))
    names = {
        named("statushub", "a-b", "c"), named("statushub", "a", "b-c"),
        named("statushub", "a_b", "c"), named("statushub", "a", "b_c"),
        named("ops", "a-b", "c"), named("statushub-a", "b", "c"),
    }
    assert len(names) == 6
    longest = named("o" * 32, "d" * 32, "n" * 31 + "-")
    assert len(longest) <= 63 and SWARM_NAME.fullmatch(longest)
    assert SWARM_NAME.fullmatch(named("o", "d_", "n-"))
    # one without an owner label is the default owner's
    spec = ContainerSpec(name="x", image="i", labels=((DEPLOYMENT_LABEL, "demo"), (NODE_LABEL, "web")))
    assert serviceName(spec) == named("statushub", "demo", "web")


class CountingClient:
    """
    Stands in for the Docker SDK's client: answers the three list calls
    from a swarm of C{count} services, and counts every call made.
    """

    def __init__(self, count: int) -> None:
        self.calls: list[str] = []
        self._services = [service(f"s{i}", f"n{i}") for i in range(count)]
        self._tasks = [task(f"s{i}", "up", "running", i, container=f"c{i}") for i in range(count)]

    def services(self, filters=None):
        self.calls.append("services")
        return self._services

    def tasks(self, filters=None):
        self.calls.append("tasks")
        return self._tasks

    def nodes(self, filters=None):
        self.calls.append("nodes")
        return [node("up")]

    def close(self) -> None:
        pass

    def __getattr__(self, name: str):
        raise AssertionError(f"unexpected call: {name}")


@pytest.mark.parametrize("count", [10, 100])
@pytest_twisted.ensureDeferred
async def test_callsPerPoll(count: int) -> None:
    """
    One poll is three engine calls, whatever the number of services.
    """
    engine = SwarmEngine(reactor, host="unix:///nonexistent.sock")
    engine._client.close()
    engine._client = CountingClient(count)
    try:
        states = await engine.listContainers({DEPLOYMENT_LABEL: None})
    finally:
        engine.stop()
    assert len(states) == count
    assert sorted(engine._client.calls) == ["nodes", "services", "tasks"]


@pytest_twisted.ensureDeferred
async def test_dockerRefusesConstraints() -> None:
    """
    One engine has nowhere to place a node: constraints are refused, with
    the way out, before the engine is asked anything.
    """
    engine = DockerEngine(reactor, host="unix:///nonexistent.sock")
    spec = ContainerSpec(name="statushub.d.web", image="i", constraints=("node.hostname==b",))
    try:
        with pytest.raises(EngineError, match=r'node.hostname==b.*\[engine\] kind = "swarm"'):
            await engine.createContainer(spec)
    finally:
        engine.stop()
