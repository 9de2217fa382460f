"""
Acting on one node (restart, stop, start, recreate) through the real hub
process on the private Docker engine: what the engine shows afterwards
(docker inspect), what the feed says, and every refusal with its code and
nothing changed on the engine; the same actions on the test swarm; the
C{statushub} command from a child process.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Optional

import pytest
import pytest_twisted
import treq
from twisted.internet.threads import deferToThread

from tests.hubapi import topology
from tests.waiting import waitUntil
from tests.wsclient import FeedClient, connectFeed

pytestmark = pytest.mark.docker

OPERATOR = "operator-token-0123456789"
VIEWER = "viewer-token-0123456789ab"
POLL = 0.5
GRACE = 5
STATUSHUB = str(Path(sys.executable).with_name("statushub"))
REPO = Path(__file__).resolve().parents[1]


# the audit line of a node action (README, "Security")
NODE_AUDIT = re.compile(
    r"\[statushub\.audit#info\] audit: (?P<action>[\w ]+) of node '(?P<node>[^']*)' of "
    r"'(?P<deployment>[^']*)' by (?P<role>\w+) from \S+: (?P<outcome>\w+) \((?P<code>\d+)\)"
)


def nodeAuditLines(hub: Any) -> list[dict[str, str]]:
    return [m.groupdict() for line in list(hub.log) if (m := NODE_AUDIT.search(line))]


def startHub(hub_process: Any, docker: Any, config: str = "") -> Any:
    return hub_process(
        config=(
            f'[server]\ntoken = "{OPERATOR}"\nviewer_token = "{VIEWER}"\n'
            f"[polling]\ninterval = {POLL}\n[deploy]\nstop_timeout = {GRACE}\n" + config
        ),
        env={"DOCKER_HOST": docker.host},
    )


async def act(
    hub: Any,
    name: str,
    node: str,
    action: str,
    token: Optional[str] = OPERATOR,
    body: Optional[bytes] = b"{}",
    headers: Optional[dict[str, str]] = None,
) -> tuple[int, Any]:
    """
    C{POST /api/deployments/NAME/nodes/NODE/ACTION}: its code and JSON.
    """
    allHeaders = {"Content-Type": "application/json"} if body else {}
    if token is not None:
        allHeaders["Authorization"] = f"Bearer {token}"
    allHeaders.update(headers or {})
    response = await treq.post(
        f"{hub.url}/api/deployments/{name}/nodes/{node}/{action}",
        data=body, headers={k: [v] for k, v in allHeaders.items()},
    )
    return response.code, json.loads(await response.content())


async def feedOf(hub: Any, name: str) -> FeedClient:
    return await connectFeed(f"{hub.wsUrl}?deployment={name}", token=OPERATOR)


def nodeIn(message: dict, nodeId: str) -> dict:
    """
    The node's entry in C{message} (an empty one in a message without it,
    such as the idle picture a filtered feed starts with).
    """
    found = [n for n in message["nodeStatuses"] if n["nodeId"] == nodeId]
    return found[0] if found else {}


def running(name: str, count: int):
    def check(message: dict) -> bool:
        nodes = message["nodeStatuses"]
        return (
            message["deployment"] == name and message["deployStatus"] == "deployed"
            and len(nodes) == count and all(n["status"] == "running" for n in nodes)
        )

    return check


def nodeSays(nodeId: str, **fields: Any):
    """
    A message in which node C{nodeId} shows every one of C{fields} (a value
    of L{None}: the field is absent).
    """

    def check(message: dict) -> bool:
        found = [n for n in message["nodeStatuses"] if n["nodeId"] == nodeId]
        return bool(found) and all(found[0].get(k) == v for k, v in fields.items())

    return check


def after(message: dict, predicate):
    """
    C{predicate}, of a message later than C{message} (a feed client's
    L{FeedClient.waitFor} looks at every message it has had).
    """
    return lambda m: m["seq"] > message["seq"] and predicate(m)


def inspect(docker: Any, containerId: str) -> dict:
    return json.loads(docker.docker("inspect", containerId))[0]


async def engineView(docker: Any, name: str) -> dict[str, tuple[str, str, str]]:
    """
    The deployment's containers as the engine has them: id -> (status,
    start time, restart policy).  What a refused request must leave alone.
    """

    def look() -> dict[str, tuple[str, str, str]]:
        ids = docker.labelledContainers(name)
        return {
            found["Id"]: (found["State"]["Status"], found["State"]["StartedAt"],
                          found["HostConfig"]["RestartPolicy"]["Name"])
            for found in (inspect(docker, c) for c in ids)
        }

    return await deferToThread(look)


async def deployed(hub: Any, feed: FeedClient, name: str, nodes: int = 2, **extra: Any) -> dict:
    code, body = await act_deploy(hub, topology(name, nodes=nodes, **extra))
    assert code == 202, body
    return await feed.waitFor(running(name, nodes), timeout=60)


async def act_deploy(hub: Any, body: dict) -> tuple[int, Any]:
    response = await treq.post(
        f"{hub.url}/api/deployments", data=json.dumps(body).encode(),
        headers={"Content-Type": ["application/json"], "Authorization": [f"Bearer {OPERATOR}"]},
    )
    return response.code, json.loads(await response.content())


async def polls(hub: Any) -> float:
    """
    How many polls the hub has made (its poll-duration histogram's count).
    """
    response = await treq.get(f"{hub.url}/metrics", headers={"Authorization": [f"Bearer {OPERATOR}"]})
    text = (await response.content()).decode()
    match = re.search(r"^statushub_poll_duration_seconds_count (\S+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


async def afterPolls(hub: Any, count: int) -> None:
    """
    Return once the hub has polled C{count} more times.
    """
    start = await polls(hub)

    async def enough() -> bool:
        return await polls(hub) >= start + count

    await waitUntil(enough, timeout=30, interval=0.2, what=f"{count} more polls")


async def metric(hub: Any, name: str, **labels: str) -> float:
    response = await treq.get(f"{hub.url}/metrics", headers={"Authorization": [f"Bearer {OPERATOR}"]})
    text = (await response.content()).decode()
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith(f"{name}{{"):
            series, value = line.rsplit(" ", 1)
            found = ",".join(sorted(series[len(name) + 1:-1].split(",")))
            if found == wanted:
                return float(value)
    return 0.0


# ---- the actions ----------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_restart(hub_process, docker) -> None:
    """
    A restart keeps the node's container and starts it anew: a new start
    time on the engine, a new since in the feed, running at the end; the
    other node is left alone; the audit line names the action and node.
    """
    hub = startHub(hub_process, docker)
    feed = await feedOf(hub, "act")
    before = await deployed(hub, feed, "act")
    n0 = nodeIn(before, "n0")
    engine = await engineView(docker, "act")

    code, body = await act(hub, "act", "n0", "restart")
    assert code == 202, body
    assert body["deployment"] == "act" and body["deployStatus"] == "deployed"
    assert nodeIn(body, "n0")["action"] == "restart"
    after = await feed.waitFor(
        lambda m: nodeSays("n0", status="running", action=None)(m) and nodeIn(m, "n0")["since"] > n0["since"],
        timeout=30,
    )
    assert nodeIn(after, "n0")["containerId"] == n0["containerId"]
    now = await engineView(docker, "act")
    assert set(now) == set(engine)
    n0Id, n1Id = n0["containerId"], nodeIn(before, "n1")["containerId"]
    assert now[n0Id][0] == "running" and now[n0Id][1] > engine[n0Id][1]
    assert now[n1Id] == engine[n1Id]
    assert nodeAuditLines(hub) == [dict(action="restart", node="n0", deployment="act",
                                        role="operator", outcome="accepted", code="202")]
    assert await metric(hub, "statushub_node_actions_total", action="restart",
                        outcome="succeeded") == 1


@pytest_twisted.ensureDeferred
async def test_stopStaysStoppedThenStart(hub_process, docker) -> None:
    """
    A stop of a node whose restart policy is "any": it exits and stays so,
    marked stopped by the operator, poll after poll, the engine's policy
    none meanwhile; a second stop has nothing to do (200).  A start runs it
    again, clears the mark and gives the policy back; a second start: 200.
    """
    hub = startHub(hub_process, docker)
    feed = await feedOf(hub, "stopper")
    before = await deployed(hub, feed, "stopper", restart="any")
    containerId = nodeIn(before, "n1")["containerId"]

    code, body = await act(hub, "stopper", "n1", "stop")
    assert code == 202, body
    assert nodeIn(body, "n1")["stoppedBy"] == "operator"
    stopped = await feed.waitFor(
        nodeSays("n1", status="exited", stoppedBy="operator", action=None), timeout=30
    )
    await afterPolls(hub, 6)
    # the feed's last word on it, after those polls: still stopped
    still = feed.messages[-1]
    assert nodeSays("n1", status="exited", stoppedBy="operator")(still), still
    found = await deferToThread(inspect, docker, containerId)
    assert found["State"]["Status"] == "exited"
    assert found["HostConfig"]["RestartPolicy"]["Name"] == "no"
    assert found["RestartCount"] == 0
    assert nodeIn(stopped, "n0")["status"] == "running"

    code, body = await act(hub, "stopper", "n1", "stop")
    assert code == 200, body

    code, body = await act(hub, "stopper", "n1", "start")
    assert code == 202, body
    started = await feed.waitFor(
        after(body, nodeSays("n1", status="running", stoppedBy=None, action=None)), timeout=30
    )
    assert nodeIn(started, "n1")["containerId"] == containerId
    found = await deferToThread(inspect, docker, containerId)
    assert found["State"]["Running"] and found["HostConfig"]["RestartPolicy"]["Name"] == "always"
    code, body = await act(hub, "stopper", "n1", "start")
    assert code == 200, body


@pytest_twisted.ensureDeferred
async def test_recreate(hub_process, docker) -> None:
    """
    A recreate: the feed shows the node running in a new container, the old
    one is gone, the engine holds one container per node, made as the
    first was (name, labels, health check, restart policy).
    """
    hub = startHub(hub_process, docker)
    feed = await feedOf(hub, "again")
    before = await deployed(hub, feed, "again", restart="on-failure",
                            resources={"memory": "64m", "cpus": 0.5})
    old = nodeIn(before, "n0")["containerId"]
    first = await deferToThread(inspect, docker, old)

    code, body = await act(hub, "again", "n0", "recreate")
    assert code == 202, body
    remade = await feed.waitFor(
        lambda m: nodeSays("n0", status="running", action=None)(m)
        and nodeIn(m, "n0").get("containerId") not in (None, old),
        timeout=30,
    )  # (a new container: only after the recreate)
    new = nodeIn(remade, "n0")["containerId"]
    ids = await deferToThread(docker.labelledContainers, "again")
    assert sorted(ids) == sorted([new[:12], nodeIn(before, "n1")["containerId"][:12]])
    second = await deferToThread(inspect, docker, new)
    for key in ("Labels", "Cmd", "Healthcheck", "Image", "StopTimeout"):
        assert second["Config"][key] == first["Config"][key], key
    assert second["Name"] == first["Name"]
    for key in ("RestartPolicy", "Memory", "MemorySwap", "NanoCpus", "LogConfig"):
        assert second["HostConfig"][key] == first["HostConfig"][key], key
    assert second["HostConfig"]["Memory"] == 64 << 20
    assert nodeIn(remade, "n0")["since"] > nodeIn(before, "n0")["since"]

    # a restarted hub (which adopts the deployment) makes it the same way,
    # from the entry the container carries
    await feed.close()
    hub.stop()
    hub.start()
    feed = await feedOf(hub, "again")
    adopted = await feed.waitFor(running("again", 2), timeout=30)
    code, body = await act(hub, "again", "n0", "recreate")
    assert code == 202, body
    again = await feed.waitFor(after(adopted, lambda m: (
        nodeSays("n0", status="running", action=None)(m)
        and nodeIn(m, "n0").get("containerId") not in (None, new)
    )), timeout=30)
    third = await deferToThread(inspect, docker, nodeIn(again, "n0")["containerId"])
    for key in ("Labels", "Cmd", "Healthcheck", "Image", "StopTimeout"):
        assert third["Config"][key] == first["Config"][key], key
    for key in ("RestartPolicy", "Memory", "MemorySwap", "NanoCpus", "LogConfig"):
        assert third["HostConfig"][key] == first["HostConfig"][key], key
    assert len(await deferToThread(docker.labelledContainers, "again")) == 2


# ---- refusals -------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_refusals(hub_process, docker) -> None:
    """
    Each refusal answers its code and changes nothing on the engine: the
    viewer's token (403), none (401), a cross-site Origin (403), a body that
    is not JSON (415) or not empty (400), an unknown action path, node or
    deployment (404).  Every one is audited.
    """
    hub = startHub(hub_process, docker)
    feed = await feedOf(hub, "guarded")
    await deployed(hub, feed, "guarded")
    engine = await engineView(docker, "guarded")

    cases = [
        (dict(token=VIEWER), 403, "viewer"),
        (dict(token=None), 401, "token"),
        (dict(headers={"Origin": "http://evil.example"}), 403, "origin"),
        (dict(body=b"stop", headers={"Content-Type": "text/plain"}), 415, "application/json"),
        (dict(body=b'{"force": true}'), 400, "body"),
        (dict(body=b"[1"), 400, "JSON"),
    ]
    for kwargs, code, word in cases:
        answer, body = await act(hub, "guarded", "n0", "stop", **kwargs)
        assert answer == code and word in body["error"], (kwargs, answer, body)
    answer, body = await act(hub, "guarded", "n9", "restart")
    assert answer == 404 and "'n9'" in body["error"], body
    answer, body = await act(hub, "nowhere", "n0", "restart")
    assert answer == 404 and "'nowhere'" in body["error"], body
    answer, body = await act(hub, "guarded", "n0", "explode")
    assert answer == 404, body
    # an empty body is as good as {}
    answer, body = await act(hub, "guarded", "n1", "restart", body=None)
    assert answer == 202, body
    await feed.waitFor(after(body, nodeSays("n1", status="running", action=None)), timeout=30)
    # n0, whom every refused request was about, is as it was
    n0 = nodeIn(feed.messages[-1], "n0")["containerId"]
    assert (await engineView(docker, "guarded"))[n0] == engine[n0]
    await waitUntil(lambda: len(nodeAuditLines(hub)) >= 10, timeout=10, what="10 audit lines")
    lines = nodeAuditLines(hub)
    assert [(line["action"], line["role"], line["code"]) for line in lines] == [
        ("stop", "viewer", "403"), ("stop", "unauthenticated", "401"),
        ("stop", "operator", "403"), ("stop", "operator", "415"), ("stop", "operator", "400"),
        ("stop", "operator", "400"), ("restart", "operator", "404"),
        ("restart", "operator", "404"), ("node action", "operator", "404"),
        ("restart", "operator", "202"),
    ]


@pytest_twisted.ensureDeferred
async def test_oneAtATimeAndNoneDuringTeardown(hub_process, docker) -> None:
    """
    While a restart of a node that ignores SIGTERM waits out its grace, a
    second action on it gets 409 naming the restart (another node may be
    acted on); while the deployment is torn down, 409 for any action; the
    teardown leaves nothing behind.
    """
    hub = startHub(hub_process, docker)
    feed = await feedOf(hub, "busy")
    body = topology("busy", nodes=2)
    body["nodes"][0]["command"] = ["sleep", "infinity"]  # ignores SIGTERM: waits the grace
    code, answer = await act_deploy(hub, body)
    assert code == 202, answer
    await feed.waitFor(running("busy", 2), timeout=60)
    engine = await engineView(docker, "busy")

    code, answer = await act(hub, "busy", "n0", "restart")
    assert code == 202, answer
    n0 = nodeIn(answer, "n0")["containerId"]
    for action in ("restart", "stop", "start", "recreate"):
        code, answer = await act(hub, "busy", "n0", action)
        assert code == 409 and "restart is under way" in answer["error"], (action, answer)
    code, answer = await act(hub, "busy", "n1", "stop")
    assert code == 202, answer
    await feed.waitFor(after(answer, nodeSays("n0", status="running", action=None)), timeout=30)
    # restarted once, and neither stopped nor made anew by what was refused
    now = await engineView(docker, "busy")
    assert now[n0][0] == "running" and now[n0][1] > engine[n0][1]
    assert now[n0][2] == engine[n0][2] == "no"

    # a recreate (of the node that waits out its grace), then a teardown
    code, answer = await act(hub, "busy", "n0", "recreate")
    assert code == 202, answer
    response = await treq.delete(f"{hub.url}/api/deployments/busy",
                                 headers={"Authorization": [f"Bearer {OPERATOR}"]})
    assert response.code == 202
    for action in ("restart", "start"):
        code, answer = await act(hub, "busy", "n1", action)
        assert code == 409 and "tearing_down" in answer["error"], answer
    await feed.waitFor(lambda m: m["deployStatus"] == "idle" and m["seq"] > 1, timeout=60)
    assert await deferToThread(docker.labelledContainers, "busy") == []


# ---- the command ----------------------------------------------------------------


def statushub(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [STATUSHUB, *args], capture_output=True, text=True, timeout=60, cwd=REPO,
        env={**os.environ, "STATUSHUB_TOKEN": OPERATOR},
    )


@pytest_twisted.ensureDeferred
async def test_command(hub_process, docker) -> None:
    """
    C{statushub restart|stop|start|recreate NAME NODE}: exit 0 when the hub
    accepted it (or there was nothing to do), 1 with the hub's words when
    it refused.
    """
    hub = startHub(hub_process, docker)
    feed = await feedOf(hub, "cli")
    before = await deployed(hub, feed, "cli")

    result = await deferToThread(statushub, "stop", "cli", "n0", "--url", hub.url)
    assert result.returncode == 0, result.stderr
    assert "stopping node n0 of cli" in result.stdout
    await feed.waitFor(nodeSays("n0", status="exited", stoppedBy="operator", action=None), timeout=30)
    result = await deferToThread(statushub, "stop", "cli", "n0", "--url", hub.url)
    assert (result.returncode, result.stdout) == (0, "node n0 of cli is already stopped\n")
    result = await deferToThread(statushub, "status", "cli", "--url", hub.url)
    assert "exited (stopped by the operator)" in result.stdout

    stopped = feed.messages[-1]
    result = await deferToThread(statushub, "start", "cli", "n0", "--url", hub.url)
    assert result.returncode == 0, result.stderr
    await feed.waitFor(after(stopped, nodeSays("n0", status="running", stoppedBy=None, action=None)),
                       timeout=30)
    result = await deferToThread(statushub, "recreate", "cli", "n1", "--url", hub.url)
    assert result.returncode == 0, result.stderr
    await feed.waitFor(
        lambda m: nodeIn(m, "n1").get("containerId") not in (None, nodeIn(before, "n1")["containerId"])
        and nodeSays("n1", status="running", action=None)(m),
        timeout=30,
    )
    result = await deferToThread(statushub, "restart", "cli", "n1", "--url", hub.url)
    assert result.returncode == 0 and "restarting node n1 of cli" in result.stdout

    result = await deferToThread(statushub, "restart", "cli", "nope", "--url", hub.url)
    assert result.returncode == 1
    assert "404" in result.stderr and "'nope'" in result.stderr
    result = subprocess.run(
        [STATUSHUB, "stop", "cli", "n0", "--url", hub.url, "--token", VIEWER],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 1 and "403" in result.stderr and "viewer" in result.stderr


# ---- on the test swarm --------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_swarm(hub_process, swarm) -> None:
    """
    On a swarm: a restart runs the node in a new task (a new container); a
    stop scales its service to 0 and it stays exited, stopped by the
    operator, poll after poll, restart policy "any" or not; a start scales
    it back to 1.
    """
    hub = hub_process(
        config=(
            f'[server]\ntoken = "{OPERATOR}"\n[engine]\nkind = "swarm"\nurl = "{swarm.host}"\n'
            f"[polling]\ninterval = {POLL}\n[deploy]\nstop_timeout = {GRACE}\n"
        ),
    )
    feed = await feedOf(hub, "swarmed")
    before = await deployed(hub, feed, "swarmed", restart="any")
    first = nodeIn(before, "n0")["containerId"]

    code, body = await act(hub, "swarmed", "n0", "restart")
    assert code == 202, body
    restarted = await feed.waitFor(after(body, lambda m: (
        nodeSays("n0", status="running", action=None)(m)
        and nodeIn(m, "n0").get("containerId") not in (None, first)
    )), timeout=90)
    assert nodeIn(restarted, "n0")["since"] > nodeIn(before, "n0")["since"]

    code, body = await act(hub, "swarmed", "n1", "stop")
    assert code == 202, body
    await feed.waitFor(nodeSays("n1", status="exited", stoppedBy="operator", action=None), timeout=60)
    await afterPolls(hub, 6)
    assert nodeSays("n1", status="exited", stoppedBy="operator")(feed.messages[-1])
    [service] = (await deferToThread(
        swarm.manager.docker, "service", "ls", "-q", "--filter", "label=io.statushub.node=n1",
        "--filter", "label=io.statushub.deployment=swarmed",
    )).split()
    services = json.loads(await deferToThread(swarm.manager.docker, "service", "inspect", service))
    assert services[0]["Spec"]["Mode"]["Replicated"]["Replicas"] == 0

    code, body = await act(hub, "swarmed", "n1", "start")
    assert code == 202, body
    await feed.waitFor(after(body, nodeSays("n1", status="running", stoppedBy=None, action=None)),
                       timeout=90)
    response = await treq.delete(f"{hub.url}/api/deployments/swarmed",
                                 headers={"Authorization": [f"Bearer {OPERATOR}"]})
    assert response.code == 202
    await feed.waitFor(lambda m: m["deployStatus"] == "idle" and m["seq"] > 1, timeout=60)
