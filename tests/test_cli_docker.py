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

from tests.hubapi import topology
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


@pytest_twisted.ensureDeferred
async def test_severalDeployments(hub_process, docker, tmp_path) -> None:
    """
    Two deployments: C{list} shows both; C{status} and C{teardown} without a
    name say which there are; with a name they act on that one only, and
    tearing one down leaves the other's containers running.
    """
    hub = hub_process(
        config='[server]\ntoken = "s3cret"\n[polling]\ninterval = 0.5\n',
        env={"DOCKER_HOST": docker.host},
    )
    for name, nodes in (("beta", 2), ("alpha", 1)):
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(topology(name, nodes=nodes)))
        result = await deferToThread(statushub, "deploy", str(path), "--url", hub.url)
        assert result.returncode == 0, result.stderr
        assert f"statushub watch {name}" in result.stdout

    async def bothRunning():
        result = await deferToThread(statushub, "list", "--json", "--url", hub.url)
        pictures = json.loads(result.stdout)["deployments"]
        return [p["deployment"] for p in pictures] == ["alpha", "beta"] and all(
            p["deployStatus"] == "deployed" and p["nodeStatuses"]
            and all(n["status"] == "running" and n.get("health") == "healthy"
                    for n in p["nodeStatuses"]) for p in pictures)

    await waitUntil(bothRunning, timeout=60, interval=0.3, what="both deployed and healthy")
    result = await deferToThread(statushub, "list", "--url", hub.url)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["DEPLOYMENT", "STATUS", "NODES"]
    assert lines[1].split() == ["alpha", "deployed", "1", "running"]
    assert lines[2].split() == ["beta", "deployed", "2", "running"]

    result = await deferToThread(statushub, "status", "--url", hub.url)
    assert result.returncode == 2
    assert "2 deployments exist (alpha, beta)" in result.stderr
    result = await deferToThread(statushub, "status", "beta", "--json", "--url", hub.url)
    beta = json.loads(result.stdout)
    assert beta["deployment"] == "beta" and len(beta["nodeStatuses"]) == 2
    result = await deferToThread(statushub, "status", "gamma", "--url", hub.url)
    assert result.returncode == 1 and "no deployment named 'gamma'" in result.stderr

    result = await deferToThread(statushub, "teardown", "--url", hub.url)
    assert result.returncode == 2 and "(alpha, beta)" in result.stderr
    result = await deferToThread(statushub, "teardown", "alpha", "--url", hub.url)
    assert result.returncode == 0 and "tearing down alpha" in result.stdout, result.stderr

    async def alphaGone():
        result = await deferToThread(statushub, "list", "--json", "--url", hub.url)
        return [p["deployment"] for p in json.loads(result.stdout)["deployments"]] == ["beta"]

    await waitUntil(alphaGone, timeout=60, interval=0.3, what="alpha torn down")
    assert {c[:12] for c in (n["containerId"] for n in beta["nodeStatuses"])} == set(
        docker.labelledContainers())
    result = await deferToThread(statushub, "status", "beta", "--url", hub.url)
    assert "status: deployed" in result.stdout and result.stdout.count("running") == 2

    # one left: no name needed
    result = await deferToThread(statushub, "teardown", "--url", hub.url)
    assert result.returncode == 0 and "tearing down beta" in result.stdout, result.stderr
    await waitUntil(lambda: docker.labelledContainers() == [], timeout=60, interval=0.3,
                    what="beta's containers gone")
