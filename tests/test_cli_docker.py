"""
The C{statushub} command as a user runs it, against the real hub on the
private engine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet.threads import deferToThread

from tests.waiting import waitUntil

pytestmark = pytest.mark.docker

REPO = Path(__file__).resolve().parents[1]
STATUSHUB = str(Path(sys.executable).with_name("statushub"))


def statushub(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [STATUSHUB, *args], capture_output=True, text=True, timeout=60, cwd=REPO,
        env={**os.environ, "STATUSHUB_TOKEN": "s3cret"},
    )


@pytest_twisted.ensureDeferred
async def test_deployStatusTeardown(hub_process, docker) -> None:
    hub = hub_process(
        config='[server]\ntoken = "s3cret"\n[polling]\ninterval = 0.5\n',
        env={"DOCKER_HOST": docker.host},
    )
    result = await deferToThread(statushub, "deploy", "etc/demo-topology.toml", "--url", hub.url)
    assert result.returncode == 0, result.stderr
    assert "deploying demo (3 nodes)" in result.stdout

    async def deployed():
        result = await deferToThread(statushub, "status", "--json", "--url", hub.url)
        picture = json.loads(result.stdout)
        nodes = picture["nodeStatuses"]
        return (picture["deployStatus"] == "deployed" and len(nodes) == 3
                and all(n["status"] == "running" for n in nodes))

    await waitUntil(deployed, timeout=30, interval=0.2, what="deployed")
    result = await deferToThread(statushub, "status", "--url", hub.url)
    assert "status: deployed" in result.stdout and "worker" in result.stdout

    result = await deferToThread(statushub, "deploy", "etc/demo-topology.json", "--url", hub.url)
    assert result.returncode == 1 and "409" in result.stderr

    result = await deferToThread(statushub, "teardown", "--url", hub.url)
    assert result.returncode == 0 and "tearing down demo" in result.stdout

    async def idle():
        result = await deferToThread(statushub, "status", "--json", "--url", hub.url)
        return json.loads(result.stdout)["deployStatus"] == "idle"

    await waitUntil(idle, timeout=30, interval=0.2, what="idle")
    assert docker.labelledContainers() == []

    # without the token the hub refuses, and the command says so
    result = await deferToThread(
        lambda: subprocess.run([STATUSHUB, "status", "--url", hub.url, "--token", "wrong"],
                               capture_output=True, text=True, timeout=60)
    )
    assert result.returncode == 1 and "401" in result.stderr
