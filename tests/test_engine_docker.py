"""
L{DockerEngine} against the private Docker engine: the real SDK, off the
reactor thread.
"""

from __future__ import annotations

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.threads import deferToThread
from zope.interface.verify import verifyObject

from statushub.engine import (
    DEPLOYMENT_LABEL,
    NODE_LABEL,
    ContainerSpec,
    EngineError,
    HealthCheckSpec,
    ImageNotFound,
)
from statushub.engine.docker import DockerEngine, healthFromListStatus
from statushub.interfaces import IContainerEngine, IEventStream
from tests.fixtures.docker import IMAGE
from tests.waiting import waitUntil

pytestmark = pytest.mark.docker


@pytest.fixture
def engine(docker):
    engine = DockerEngine(reactor, host=docker.host, timeout=10)
    yield engine
    engine.stop()


def spec(name: str, **changes) -> ContainerSpec:
    fields = dict(
        name=name,
        image=IMAGE,
        command=("sleep", "infinity"),
        labels=((DEPLOYMENT_LABEL, "enginetest"), (NODE_LABEL, name)),
    )
    fields.update(changes)
    return ContainerSpec(**fields)


def test_healthFromListStatus() -> None:
    assert healthFromListStatus("Up 3 seconds (healthy)") == "healthy"
    assert healthFromListStatus("Up 3 seconds (unhealthy)") == "unhealthy"
    assert healthFromListStatus("Up 1 second (health: starting)") == "starting"
    assert healthFromListStatus("Up 3 seconds") is None
    assert healthFromListStatus("Up 3 seconds (Paused)") is None


@pytest_twisted.ensureDeferred
async def test_lifecycle(engine, docker) -> None:
    """
    Create, start, list by label (with health), remove; the container has no
    network, no privileges, no mounts.
    """
    verifyObject(IContainerEngine, engine)
    await engine.ping()
    containerId = await engine.createContainer(
        spec("et-one", healthcheck=HealthCheckSpec(test=("CMD-SHELL", "true"), interval=0.5))
    )
    await engine.startContainer(containerId)

    async def healthy():
        states = await engine.listContainers({DEPLOYMENT_LABEL: "enginetest"})
        return [s for s in states if s.containerId == containerId and s.health == "healthy"]

    [state] = await waitUntil(healthy, timeout=20, interval=0.2, what="healthy")
    assert state.status == "running"
    assert state.labels[NODE_LABEL] == "et-one"
    hostConfig = docker.docker(
        "inspect", "-f",
        "{{.HostConfig.NetworkMode}} {{.HostConfig.Privileged}} {{.HostConfig.SecurityOpt}} "
        "{{.HostConfig.PidsLimit}} {{len .Mounts}}",
        containerId,
    )
    assert hostConfig.split() == ["none", "false", "[no-new-privileges]", "256", "0"]

    # another deployment's label does not match
    assert await engine.listContainers({DEPLOYMENT_LABEL: "other"}) == []

    await engine.removeContainer(containerId)
    await engine.removeContainer(containerId)  # already gone: not an error
    assert await engine.listContainers({DEPLOYMENT_LABEL: "enginetest"}) == []


@pytest_twisted.ensureDeferred
async def test_restartPolicy(engine, docker) -> None:
    """
    The node's C{restart} is the container's restart policy: C{none} by
    default, C{any} restarts a container whose process ends.
    """
    plain = await engine.createContainer(spec("et-norestart"))
    again = await engine.createContainer(
        spec("et-restart", command=("sh", "-c", "sleep 0.2"), restart="any")
    )
    policy = lambda c: docker.docker("inspect", "-f", "{{.HostConfig.RestartPolicy.Name}}", c).strip()  # noqa: E731
    assert (policy(plain), policy(again)) == ("no", "always")
    await engine.startContainer(again)

    async def restarted():
        count = docker.docker("inspect", "-f", "{{.RestartCount}}", again).strip()
        return int(count) >= 1

    await waitUntil(restarted, timeout=20, interval=0.2, what="restarted by the engine")
    await engine.removeContainer(plain)
    await engine.removeContainer(again)


@pytest_twisted.ensureDeferred
async def test_unknownImage(engine) -> None:
    with pytest.raises(ImageNotFound):
        await engine.createContainer(spec("et-noimage", image="statushub/no-such-image"))


@pytest_twisted.ensureDeferred
async def test_unreachable(tmp_path) -> None:
    engine = DockerEngine(reactor, host=f"unix://{tmp_path}/nothing.sock", timeout=2)
    try:
        with pytest.raises(EngineError, match="cannot reach the engine"):
            await engine.ping()
        with pytest.raises(EngineError):
            await engine.listContainers({DEPLOYMENT_LABEL: None})
    finally:
        engine.stop()


@pytest_twisted.ensureDeferred
async def test_events(engine, docker) -> None:
    """
    The event stream carries our containers' events, with their labels, and
    closing it ends a blocked read.
    """
    stream = await engine.events({DEPLOYMENT_LABEL: "enginetest"})
    verifyObject(IEventStream, stream)
    containerId = await engine.createContainer(spec("et-events"))
    await engine.startContainer(containerId)
    await deferToThread(docker.docker, "kill", containerId)
    seen = []
    while True:
        event = await deferToThread(stream.next)
        assert event is not None
        seen.append(event.action)
        if event.action == "die":
            break
    assert event.containerId == containerId
    assert event.labels[NODE_LABEL] == "et-events"
    assert "start" in seen

    blocked = deferToThread(stream.next)
    stream.close()
    assert await blocked is None


@pytest_twisted.ensureDeferred
async def test_eventsFilteredByAction(engine, docker) -> None:
    """
    Asked for die and health_status only, the stream carries those (with the
    health word after the colon) and not the start, nor the health check's
    exec_* events.
    """
    stream = await engine.events({DEPLOYMENT_LABEL: "enginetest"}, ("die", "health_status"))
    try:
        containerId = await engine.createContainer(
            spec("et-filter", healthcheck=HealthCheckSpec(test=("CMD", "true"), interval=0.2))
        )
        await engine.startContainer(containerId)
        first = await deferToThread(stream.next)
        assert first.action == "health_status: healthy"
        await deferToThread(docker.docker, "kill", containerId)
        while True:
            event = await deferToThread(stream.next)
            assert event.action in ("die", "health_status: healthy"), event.action
            if event.action == "die":
                break
    finally:
        stream.close()
