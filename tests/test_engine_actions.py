"""
The node actions of L{DockerEngine} against the private Docker engine, where
Docker asks more than the engine contract (tests/test_engine_contract.py)
says: the grace period of a stop and of a removal, a node kept stopped
through a daemon restart, a recreated container configured exactly as the
first, a recreate that fails half-way.
"""

from __future__ import annotations

import json

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.threads import deferToThread

from statushub.engine import (
    DEPLOYMENT_LABEL,
    NODE_LABEL,
    ContainerSpec,
    HealthCheckSpec,
    RecreateIncomplete,
)
from statushub.engine.docker import DockerEngine
from tests.fixtures.docker import IMAGE
from tests.waiting import waitUntil

pytestmark = pytest.mark.docker

DEPLOYMENT = "actiontest"


def trapping(code: int, pause: float = 0) -> tuple[str, ...]:
    """
    A process that ends with exit code C{code} on SIGTERM, after C{pause}
    seconds of tidying up (C{sleep} alone, as PID 1, ignores SIGTERM).
    """
    tidy = f"sleep {pause}; " if pause else ""
    return ("sh", "-c", f"trap '{tidy}exit {code}' TERM; sleep infinity & wait")


def spec(name: str, **changes) -> ContainerSpec:
    fields = dict(
        name=name,
        image=IMAGE,
        command=trapping(3),
        labels=((DEPLOYMENT_LABEL, DEPLOYMENT), (NODE_LABEL, name)),
        stopTimeout=5,
    )
    fields.update(changes)
    return ContainerSpec(**fields)


@pytest.fixture
def engine(docker):
    engine = DockerEngine(reactor, host=docker.host, timeout=10)
    yield engine
    engine.stop()


def inspect(docker, containerId: str) -> dict:
    return json.loads(docker.docker("inspect", containerId))[0]


async def started(engine: DockerEngine, s: ContainerSpec) -> str:
    containerId = await engine.createContainer(s)
    await engine.startContainer(containerId)
    return containerId


@pytest_twisted.ensureDeferred
async def test_stopGrace(engine, docker) -> None:
    """
    A stop sends SIGTERM and waits out the grace: a process that tidies up
    within it ends with its own exit code; one that takes longer, or
    ignores SIGTERM, is killed (137) when the grace is over.
    """
    tidy = await started(engine, spec("at-tidy", command=trapping(3, pause=1)))
    slow = await started(engine, spec("at-slow", command=trapping(3, pause=30)))
    deaf = await started(engine, spec("at-deaf", command=("sleep", "infinity")))
    await engine.stopContainer(tidy, timeout=10)
    await engine.stopContainer(slow, timeout=1)
    await engine.stopContainer(deaf, timeout=1)
    codes = await deferToThread(
        lambda: [inspect(docker, c)["State"]["ExitCode"] for c in (tidy, slow, deaf)]
    )
    assert codes == [3, 137, 137]
    # stopping what is stopped is no error
    await engine.stopContainer(tidy, timeout=1)


@pytest_twisted.ensureDeferred
async def test_stopKeepsStoppedThroughDaemonRestart(engine, docker) -> None:
    """
    Docker's own stop keeps a restart policy of "always" from acting only
    until the daemon restarts; ours keeps the node stopped through one, and
    a start gives it its policy back.
    """
    ours = await started(engine, spec("at-ours", restart="any"))
    theirs = await started(engine, spec("at-theirs", restart="any"))
    await engine.stopContainer(ours, timeout=5)
    await deferToThread(docker.docker, "stop", "-t", "5", theirs)
    policy = await deferToThread(lambda: inspect(docker, ours)["HostConfig"]["RestartPolicy"]["Name"])
    assert policy == "no"

    engine._client.close()  # its connections die with the daemon
    await deferToThread(docker.stop)
    await deferToThread(docker.start)

    async def theirsBack() -> bool:
        return await deferToThread(lambda: inspect(docker, theirs)["State"]["Running"])

    # the control: Docker's restart policy brings a merely stopped one back
    await waitUntil(theirsBack, timeout=30, interval=0.2, what="the daemon restarting 'theirs'")
    state = await deferToThread(lambda: inspect(docker, ours)["State"])
    assert (state["Status"], state["ExitCode"]) == ("exited", 3)

    await engine.startContainer(ours, restart="any")
    found = await deferToThread(inspect, docker, ours)
    assert found["State"]["Running"]
    assert found["HostConfig"]["RestartPolicy"]["Name"] == "always"


@pytest_twisted.ensureDeferred
async def test_recreate(engine, docker) -> None:
    """
    A recreate replaces the container with one made as the first was: same
    name, labels, command, health check, restart policy and grace; the old
    one is gone, one container is left.
    """
    made = spec(
        "at-recreate", restart="on-failure", env=(("ROLE", "worker"),),
        healthcheck=HealthCheckSpec(test=("CMD-SHELL", "true"), interval=1.0),
    )
    old = await started(engine, made)
    newId = await engine.recreateContainer(old, made, timeout=5)
    assert newId != old
    ids = await deferToThread(docker.labelledContainers, DEPLOYMENT)
    assert ids == [newId[:12]]
    after = await deferToThread(inspect, docker, newId)
    config, host = after["Config"], after["HostConfig"]
    assert after["Name"] == "/at-recreate"
    assert after["State"]["Running"]
    assert config["Labels"] == dict(made.labels)
    assert config["Cmd"] == list(made.command)
    assert "ROLE=worker" in config["Env"]
    assert config["Healthcheck"]["Test"] == ["CMD-SHELL", "true"]
    assert config["StopTimeout"] == 5
    assert host["RestartPolicy"]["Name"] == "on-failure"
    assert (host["NetworkMode"], host["SecurityOpt"]) == ("none", ["no-new-privileges"])


@pytest_twisted.ensureDeferred
async def test_recreateIncomplete(engine, docker) -> None:
    """
    A recreate whose new container cannot be made says so, and that the old
    one is gone: the node has no container now.
    """
    old = await started(engine, spec("at-broken"))
    with pytest.raises(RecreateIncomplete, match="the old container is removed") as caught:
        await engine.recreateContainer(old, spec("at-broken", image="statushub/no-such-image"), 1)
    assert caught.value.containerId == ""
    assert await deferToThread(docker.labelledContainers, DEPLOYMENT) == []


@pytest_twisted.ensureDeferred
async def test_removeGrace(engine, docker) -> None:
    """
    A removal with a grace period lets the process end on SIGTERM (its die
    event carries its own exit code); without one it is killed.
    """
    stream = await engine.events({DEPLOYMENT_LABEL: DEPLOYMENT}, ("die",))
    try:
        graceful = await started(engine, spec("at-rm-graceful"))
        killed = await started(engine, spec("at-rm-killed"))
        await engine.removeContainer(graceful, timeout=5)
        await engine.removeContainer(killed)
        codes = {}
        while len(codes) < 2:
            event = await deferToThread(stream.next)
            codes[event.containerId] = event.labels.get("exitCode")
    finally:
        stream.close()
    assert codes == {graceful: "3", killed: "137"}
    assert await deferToThread(docker.labelledContainers, DEPLOYMENT) == []
