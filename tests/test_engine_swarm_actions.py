"""
The node actions of L{SwarmEngine} on the test swarm (tests/fixtures/swarm.py):
stop scales the node's service to 0 replicas and nothing brings it back,
start scales it back to 1, restart and recreate force a new task (a new
container), recreate makes a service that is gone anew.
"""

from __future__ import annotations

import json

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.task import deferLater
from twisted.internet.threads import deferToThread

from statushub.engine import DEPLOYMENT_LABEL, NODE_LABEL, ContainerSpec, ContainerState
from statushub.engine.swarm import SwarmEngine
from tests.fixtures.docker import IMAGE
from tests.test_engine_actions import trapping
from tests.waiting import waitUntil

pytestmark = pytest.mark.docker

DEPLOYMENT = "swarmactions"


def spec(node: str, **changes) -> ContainerSpec:
    fields = dict(
        name=f"{DEPLOYMENT}-{node}",
        image=IMAGE,
        command=trapping(0),
        labels=((DEPLOYMENT_LABEL, DEPLOYMENT), (NODE_LABEL, node)),
        restart="any",
        stopTimeout=3,
    )
    fields.update(changes)
    return ContainerSpec(**fields)


@pytest.fixture
def engine(swarm):
    engine = SwarmEngine(reactor, host=swarm.host, timeout=10)
    yield engine
    engine.stop()


async def state(engine: SwarmEngine, serviceId: str) -> ContainerState:
    states = await engine.listContainers({DEPLOYMENT_LABEL: DEPLOYMENT})
    [found] = [s for s in states if s.containerId == serviceId]
    return found


async def runningIn(engine: SwarmEngine, serviceId: str) -> str:
    """
    The container the service's task runs in, once it runs.
    """

    async def running():
        found = await state(engine, serviceId)
        return found.container if found.status == "running" and found.container else None

    return await waitUntil(running, timeout=60, interval=0.3, what="the service's task running")


@pytest_twisted.ensureDeferred
async def test_stopStart(engine, swarm) -> None:
    """
    Stop: 0 replicas, the task ends and, although the node's restart is
    "any", stays ended over several polls; the list says it is kept
    stopped.  Start: one replica again, a new container.
    """
    serviceId = await engine.createContainer(spec("web"))
    await engine.startContainer(serviceId)
    first = await runningIn(engine, serviceId)
    grace = await deferToThread(
        lambda: json.loads(swarm.manager.docker("service", "inspect", serviceId))[0]
        ["Spec"]["TaskTemplate"]["ContainerSpec"]["StopGracePeriod"]
    )
    assert grace == 3 * 10**9

    await engine.stopContainer(serviceId, timeout=3)
    stopped = await state(engine, serviceId)
    assert (stopped.status, stopped.keptStopped) == ("exited", True)
    for _ in range(5):
        # not waiting for a result: giving a restart policy time to act
        await deferLater(reactor, 0.5, lambda: None)
        again = await state(engine, serviceId)
        assert (again.status, again.keptStopped) == ("exited", True)
    replicas = await deferToThread(
        swarm.manager.docker, "service", "inspect", "-f", "{{.Spec.Mode.Replicated.Replicas}}",
        serviceId,
    )
    assert replicas.strip() == "0"

    await engine.startContainer(serviceId, restart="any")
    second = await runningIn(engine, serviceId)
    assert second != first
    assert not (await state(engine, serviceId)).keptStopped
    await engine.startContainer(serviceId)  # running already: no error, no change
    assert await runningIn(engine, serviceId) == second


@pytest_twisted.ensureDeferred
async def test_restartAndRecreate(engine, swarm) -> None:
    """
    Restart and recreate each force a new task: the service stays, its
    container is new, one task runs.  A recreate of a service that is gone
    makes a new one from the spec.
    """
    made = spec("api")
    serviceId = await engine.createContainer(made)
    await engine.startContainer(serviceId)
    first = await runningIn(engine, serviceId)

    await engine.restartContainer(serviceId, timeout=3)
    second = await runningIn(engine, serviceId)
    assert second != first

    assert await engine.recreateContainer(serviceId, made, timeout=3) == serviceId
    third = await runningIn(engine, serviceId)
    assert third not in (first, second)
    assert len(await deferToThread(swarm.services)) == 1

    await deferToThread(swarm.manager.docker, "service", "rm", serviceId)
    newId = await engine.recreateContainer(serviceId, made, timeout=3)
    assert newId != serviceId
    await runningIn(engine, newId)
    labels = await deferToThread(
        lambda: json.loads(swarm.manager.docker("service", "inspect", newId))[0]["Spec"]["Labels"]
    )
    assert labels == dict(made.labels)
