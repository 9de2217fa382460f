"""
What only L{DockerEngine} does, against the private Docker engine: how it
confines a container, and how it reads the list's human status text.  What
every engine does (lists, events, errors, restart policies) is the contract
suite's, C{tests/test_engine_contract.py}.
"""

from __future__ import annotations

import pytest
import pytest_twisted
from twisted.internet import reactor

from statushub.engine import DEPLOYMENT_LABEL, NODE_LABEL, ContainerSpec
from statushub.engine.docker import DockerEngine, healthFromListStatus
from tests.fixtures.docker import IMAGE


@pytest.fixture
def engine(docker):
    engine = DockerEngine(reactor, host=docker.host, timeout=10)
    yield engine
    engine.stop()


def test_healthFromListStatus() -> None:
    assert healthFromListStatus("Up 3 seconds (healthy)") == "healthy"
    assert healthFromListStatus("Up 3 seconds (unhealthy)") == "unhealthy"
    assert healthFromListStatus("Up 1 second (health: starting)") == "starting"
    assert healthFromListStatus("Up 3 seconds") is None
    assert healthFromListStatus("Up 3 seconds (Paused)") is None


@pytest.mark.docker
@pytest_twisted.ensureDeferred
async def test_confined(engine, docker) -> None:
    """
    A container has no network, no privileges to gain, a limit on its
    processes and no mounts; its restart policy is the node's, in Docker's
    words.
    """
    containerId = await engine.createContainer(ContainerSpec(
        name="et-confined",
        image=IMAGE,
        command=("sleep", "infinity"),
        labels=((DEPLOYMENT_LABEL, "enginetest"), (NODE_LABEL, "et-confined")),
        restart="any",
    ))
    hostConfig = docker.docker(
        "inspect", "-f",
        "{{.HostConfig.NetworkMode}} {{.HostConfig.Privileged}} {{.HostConfig.SecurityOpt}} "
        "{{.HostConfig.PidsLimit}} {{len .Mounts}} {{.HostConfig.RestartPolicy.Name}}",
        containerId,
    )
    assert hostConfig.split() == ["none", "false", "[no-new-privileges]", "256", "0", "always"]
