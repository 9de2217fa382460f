"""
Logs, resource use and OOM kills end to end: the real hub process, the
private Docker engine, real WebSocket clients, the Docker CLI behind the
hub's back.
"""

from __future__ import annotations

import json
import re
from typing import Optional

import pytest
import pytest_twisted
import treq
from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.threads import deferToThread

from tests.fixtures.docker import HUNGRY, IMAGE
from tests.hubapi import getJSON, post
from tests.waiting import waitUntil
from tests.wsclient import FeedClient, connectFeed

pytestmark = pytest.mark.docker

# prints 1, 2, 3, ... one a line, every 50 ms
COUNTER = "i=1; while :; do echo $i; i=$((i+1)); usleep 50000; done"
BUSY = "while :; do :; done"


def startHub(hub_process, docker, extra: str = "", env: Optional[dict] = None):
    return hub_process(
        config=f"[polling]\ninterval = 0.5\n[docker]\ntimeout = 5\n{extra}",
        env={"DOCKER_HOST": docker.host, **(env or {})},
    )


async def deploy(hub, name: str, nodes: dict[str, str]) -> dict[str, dict]:
    """
    Deploy nodes running the given shell scripts; return each node's entry
    once all run.
    """
    code, body = await post(hub, {
        "name": name,
        "nodes": [{"id": node, "image": IMAGE, "command": ["sh", "-c", script]}
                  for node, script in nodes.items()],
    }, path="/api/deployments")
    assert code == 202, body

    async def running():
        picture = await getJSON(hub, f"/api/deployments/{name}")
        byNode = {n["nodeId"]: n for n in picture["nodeStatuses"]}
        if picture["deployStatus"] == "deployed" and all(
            byNode.get(node, {}).get("status") == "running" for node in nodes
        ):
            return byNode
        return None

    return await waitUntil(running, timeout=60, interval=0.2, what=f"{name} running")


async def metric(hub, name: str) -> float:
    text = (await (await treq.get(f"{hub.url}/metrics")).text())
    match = re.search(rf"^{name} ([0-9.e+]+)$", text, re.M)
    assert match, f"{name} not in /metrics"
    return float(match.group(1))


def logsURL(hub, deployment: str, node: str, tail: int = 100) -> str:
    return f"{hub.wsUrl.rsplit('/ws/', 1)[0]}/ws/logs?deployment={deployment}&node={node}&tail={tail}"


def numbers(client: FeedClient) -> list[int]:
    return [int(line["text"]) for m in client.messages if m["type"] == "log"
            for line in m["lines"]]


def consecutive(values: list[int]) -> bool:
    return values == list(range(values[0], values[0] + len(values))) if values else True


@pytest_twisted.ensureDeferred
async def test_followingANumberedLog(hub_process, docker) -> None:
    """
    A node printing a numbered line every 50 ms: the API's tail is the
    newest lines in order; two followers get the tail, then the same
    consecutive numbers with no gap for seconds, through one engine
    stream; it closes once both have left.
    """
    hub = startHub(hub_process, docker)
    await deploy(hub, "counting", {"counter": COUNTER})
    path = "/api/deployments/counting/nodes/counter/logs"

    async def printed():
        body = await getJSON(hub, f"{path}?tail=10000")
        return body if len(body["lines"]) >= 20 else None

    before = await waitUntil(printed, timeout=30, what="20 lines printed")
    assert (before["deployment"], before["node"]) == ("counting", "counter")
    tail = await getJSON(hub, f"{path}?tail=5")
    after = await getJSON(hub, f"{path}?tail=10000")
    got = [int(line["text"]) for line in tail["lines"]]
    assert len(got) == 5 and consecutive(got)
    assert int(before["lines"][-1]["text"]) <= got[-1] <= int(after["lines"][-1]["text"])
    assert all(line["stream"] == "stdout" and line["time"].endswith("Z")
               for line in tail["lines"])
    everything = [int(line["text"]) for line in after["lines"]]
    assert everything == list(range(1, len(everything) + 1))
    # the default tail is 100
    assert len((await getJSON(hub, path))["lines"]) == min(100, len(everything))

    first = await connectFeed(logsURL(hub, "counting", "counter", 5))
    second = await connectFeed(logsURL(hub, "counting", "counter", 5))
    try:
        await waitUntil(lambda: len(numbers(first)) >= 65 and len(numbers(second)) >= 65,
                        timeout=30, what="three seconds of lines to both")
        for client in (first, second):
            opening = client.messages[0]
            assert (opening["type"], opening["deployment"], opening["node"]) == (
                "log", "counting", "counter")
            assert len(opening["lines"]) == 5
            assert consecutive(numbers(client)), numbers(client)
            assert {m["type"] for m in client.messages} == {"log"}
        common = set(numbers(first)) & set(numbers(second))
        assert len(common) >= 60
        assert await metric(hub, "statushub_log_streams") == 1
        assert await metric(hub, "statushub_log_followers") == 2
    finally:
        await first.close()
        await second.close()

    async def closed():
        return await metric(hub, "statushub_log_streams") == 0

    # PRODUCT.md: closed within 10 s of the last follower leaving
    await waitUntil(closed, timeout=10, interval=0.5, what="the log stream closed")
    assert await metric(hub, "statushub_log_followers") == 0


@pytest_twisted.ensureDeferred
async def test_logRequestsChecked(hub_process, docker) -> None:
    """
    Unknown deployment or node: 404; a tail above 10,000: 400 naming it; a
    node that has exited still has its log, and following it gives the
    tail, then C{log_end}.
    """
    hub = startHub(hub_process, docker)
    nodes = await deploy(hub, "checked", {
        "talker": "echo hello; echo oops >&2; sleep infinity",
    })
    for path, code, words in [
        ("/api/deployments/nope/nodes/talker/logs", 404, "no deployment named 'nope'"),
        ("/api/deployments/checked/nodes/nope/logs", 404, "has no node 'nope'"),
        ("/api/deployments/checked/nodes/talker/logs?tail=10001", 400, "tail"),
        ("/api/deployments/checked/nodes/talker/logs?tail=-1", 400, "tail"),
        ("/api/deployments/nope/stats", 404, "no deployment named 'nope'"),
    ]:
        response = await treq.get(f"{hub.url}{path}")
        assert response.code == code, path
        assert words in (await response.json())["error"], path
    with pytest.raises(ConnectionError, match="404"):
        await connectFeed(logsURL(hub, "checked", "nope"))
    with pytest.raises(ConnectionError, match="400"):
        await connectFeed(logsURL(hub, "checked", "talker", 10001))

    await deferToThread(docker.docker, "kill", nodes["talker"]["containerId"])
    await waitUntil(
        lambda: _status(hub, "checked", "talker", "exited"), timeout=20, what="exited"
    )
    body = await getJSON(hub, "/api/deployments/checked/nodes/talker/logs")
    # (two pipes: the engine may read either line first)
    assert sorted((line["stream"], line["text"]) for line in body["lines"]) == [
        ("stderr", "oops"), ("stdout", "hello")]
    late = await connectFeed(logsURL(hub, "checked", "talker"))
    await late.waitForClose(timeout=15)
    assert [m["type"] for m in late.messages] == ["log", "log_end"]
    assert late.messages[0]["lines"] == body["lines"]
    assert late.closeCode == 1000


async def _status(hub, deployment: str, node: str, status: str) -> Optional[dict]:
    picture = await getJSON(hub, f"/api/deployments/{deployment}")
    for entry in picture["nodeStatuses"]:
        if entry["nodeId"] == node and entry["status"] == status:
            return entry
    return None


# allocates without end: each round doubles a shell string


@pytest_twisted.ensureDeferred
async def test_oomKilled(hub_process, docker) -> None:
    """
    A node with a 16 MiB limit that allocates without end: exited, exit code
    137 and C{oomKilled: true}.  A node ended with C{docker kill}: the same
    137, and no C{oomKilled}.
    """
    hub = startHub(hub_process, docker)
    feed = await connectFeed(f"{hub.wsUrl}?deployment=memory")
    try:
        code, body = await post(hub, {"name": "memory", "nodes": [
            {"id": "hungry", "image": IMAGE, "command": ["sh", "-c", HUNGRY],
             "resources": {"memory": "16m"}},
            {"id": "victim", "image": IMAGE, "command": ["sleep", "infinity"]},
        ]}, path="/api/deployments")
        assert code == 202, body

        def node(message: dict, nodeId: str) -> dict:
            return next((n for n in message["nodeStatuses"] if n["nodeId"] == nodeId), {})

        hungry = await feed.waitFor(
            lambda m: node(m, "hungry").get("oomKilled") is True, timeout=60)
        assert node(hungry, "hungry")["status"] == "exited"
        assert node(hungry, "hungry")["exitCode"] == 137
        limit = await deferToThread(
            docker.docker, "inspect", "-f", "{{.HostConfig.Memory}}",
            node(hungry, "hungry")["containerId"])
        assert int(limit) == 16 * 2**20

        victim = await feed.waitFor(lambda m: node(m, "victim").get("status") == "running",
                                    timeout=30)
        await deferToThread(docker.docker, "kill", node(victim, "victim")["containerId"])
        killed = await feed.waitFor(
            lambda m: node(m, "victim").get("exitCode") == 137, timeout=20)
        assert node(killed, "victim")["status"] == "exited"
        # the look after its death has been taken once the hub has shown its
        # restart count (read at start) and moved on: a later picture
        later = await getJSON(hub, "/api/deployments/memory")
        assert "oomKilled" not in node(later, "victim")
        assert all("oomKilled" not in node(m, "victim") for m in feed.messages)
        assert node(later, "hungry")["oomKilled"] is True
    finally:
        await feed.close()


@pytest_twisted.ensureDeferred
async def test_resourceUse(hub_process, docker) -> None:
    """
    A busy node (a shell loop) shows above 50 % of a core, an idle one
    little; memory in use and the limit are the engine's (its limit that of
    C{docker inspect}, its use what C{docker stats} says); the feed sends a
    message about every second, and its streams close once it has gone.
    """
    hub = startHub(hub_process, docker)
    nodes = await deploy(hub, "working", {"busy": BUSY, "idle": "sleep infinity"})

    async def busy():
        body = await getJSON(hub, "/api/deployments/working/stats")
        byNode = {n["nodeId"]: n for n in body["nodes"]}
        return byNode if byNode.get("busy", {}).get("cpu", 0) > 50 and "idle" in byNode else None

    byNode = await waitUntil(busy, timeout=30, interval=0.5, what="the busy node above 50 %")
    assert byNode["idle"]["cpu"] < 50
    for node, entry in byNode.items():
        containerId = nodes[node]["containerId"]
        configured = int(await deferToThread(
            docker.docker, "inspect", "-f", "{{.HostConfig.Memory}}", containerId))
        if not configured:  # no limit: the host's memory
            configured = json.loads(await deferToThread(
                docker.docker, "info", "--format", "{{json .MemTotal}}"))
        assert entry["memoryLimitBytes"] == configured
        assert 0 < entry["memoryBytes"] < configured
        cli = json.loads(await deferToThread(
            docker.docker, "stats", "--no-stream", "--format", "{{json .}}", containerId))
        used = _bytes(cli["MemUsage"].split("/")[0])
        # read a moment apart: the same within a MiB
        assert abs(entry["memoryBytes"] - used) < 2**20, (entry, cli)
        assert entry["time"].endswith("Z")

    watcher = await connectFeed(f"{hub.wsUrl.rsplit('/ws/', 1)[0]}/ws/stats?deployment=working")
    try:
        await waitUntil(lambda: len(watcher.messages) >= 3, timeout=10, what="three messages")
        assert all(m["type"] == "stats" and m["deployment"] == "working"
                   for m in watcher.messages)
        assert {n["nodeId"] for n in watcher.messages[-1]["nodes"]} == {"busy", "idle"}
        assert await metric(hub, "statushub_stats_streams") == 2
    finally:
        await watcher.close()

    async def closed():
        return await metric(hub, "statushub_stats_streams") == 0

    await waitUntil(closed, timeout=10, interval=0.5, what="the stats streams closed")


def _bytes(text: str) -> float:
    number, unit = re.fullmatch(r"\s*([0-9.]+)\s*([KMGT]?i?B)\s*", text).groups()
    return float(number) * {"B": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40}[unit]


class StalledFollower(WebSocketClientProtocol):
    """
    Completes the handshake, then stops reading from its socket.
    """

    def onOpen(self) -> None:
        self.transport.pauseProducing()
        self.factory.opened.callback(self)


@pytest_twisted.ensureDeferred
async def test_followerThatNeverReads(hub_process, docker) -> None:
    """
    A follower that never reads is dropped; the other keeps every line,
    with no gap.
    """
    hub = startHub(hub_process, docker, "[feed]\nmax_send_buffer = 262144\n")
    # 2 KB lines as fast as the shell prints them
    chatty = (
        "pad=$(head -c 2000 /dev/zero | tr '\\0' x); i=1; "
        'while :; do echo "$i $pad"; i=$((i+1)); usleep 2000; done'
    )
    await deploy(hub, "chatty", {"talker": chatty})
    url = logsURL(hub, "chatty", "talker", 0)
    factory = WebSocketClientFactory(url)
    factory.protocol = StalledFollower
    factory.opened = Deferred()
    await TCP4ClientEndpoint(reactor, "127.0.0.1", hub.port).connect(factory)
    stalled = await factory.opened
    reader = await connectFeed(url)
    try:
        async def dropped():
            return await metric(hub, "statushub_log_followers") == 1

        await waitUntil(dropped, timeout=90, interval=0.5, what="the stalled follower dropped")
        hub.waitForLine(re.compile(r"dropping slow /ws/logs client"), timeout=5)
        count = len(_firstWords(reader))
        await waitUntil(lambda: len(_firstWords(reader)) > count + 100, timeout=30,
                        what="more lines for the reader")
        got = [int(text) for text in _firstWords(reader)]
        assert consecutive(got), "the reader missed lines"
        assert {m["type"] for m in reader.messages} == {"log"}
    finally:
        stalled.transport.abortConnection()
        await reader.close()


def _firstWords(client: FeedClient) -> list[str]:
    return [line["text"].split()[0] for m in client.messages if m["type"] == "log"
            for line in m["lines"]]


VIEWER = "viewer-token-0123456789"
OPERATOR = "operator-token-0123456789"


@pytest_twisted.ensureDeferred
async def test_whoMayRead(hub_process, docker) -> None:
    """
    The viewer may read logs and resource use; with C{[logs] viewer =
    false}, only the operator; without a token, nobody.
    """
    env = {"STATUSHUB_TOKEN": OPERATOR, "STATUSHUB_VIEWER_TOKEN": VIEWER}
    open_ = startHub(hub_process, docker, env=env)
    closed = startHub(hub_process, docker, "[logs]\nviewer = false\n", env=env)
    await deploy_(open_, OPERATOR)
    path = "/api/deployments/who/nodes/n/logs"
    for hub, viewer in ((open_, 200), (closed, 403)):
        for token, code in ((VIEWER, viewer), (OPERATOR, 200), (None, 401)):
            headers = {"Authorization": [f"Bearer {token}"]} if token else {}
            for each in (path, "/api/deployments/who/stats"):
                response = await treq.get(f"{hub.url}{each}", headers=headers)
                if hub is closed and code == 200:
                    assert response.code == 404  # nothing deployed through it
                else:
                    assert response.code == code, (hub.url, each, token)
        url = logsURL(hub, "who", "n")
        if viewer == 403:
            with pytest.raises(ConnectionError, match="403"):
                await connectFeed(url, token=VIEWER)
        else:
            client = await connectFeed(url, token=VIEWER)
            await client.waitFor(lambda m: m["type"] == "log")
            await client.close()
    with pytest.raises(ConnectionError, match="401"):
        await connectFeed(logsURL(open_, "who", "n"))


async def deploy_(hub, token: str) -> None:
    response = await treq.post(
        f"{hub.url}/api/deployments",
        data=json.dumps({"name": "who", "nodes": [
            {"id": "n", "image": IMAGE, "command": ["sh", "-c", "echo hi; sleep infinity"]}
        ]}).encode(),
        headers={"content-type": ["application/json"], "authorization": [f"Bearer {token}"]},
    )
    assert response.code == 202

    async def running():
        picture = json.loads(await (await treq.get(
            f"{hub.url}/api/deployments/who", headers={"authorization": [f"Bearer {token}"]}
        )).content())
        return picture.get("deployStatus") == "deployed"

    await waitUntil(running, timeout=60, what="deployed")


@pytest_twisted.ensureDeferred
async def test_feedGuards(hub_process, docker) -> None:
    """
    The log and stats feeds answer to the Host, Origin and client-limit
    guards of /ws/status.
    """
    hub = startHub(hub_process, docker, "[feed]\nmax_clients = 1\n")
    await deploy(hub, "guarded", {"n": "sleep infinity"})
    for path in ("/ws/logs?deployment=guarded&node=n", "/ws/stats?deployment=guarded"):
        with pytest.raises(ConnectionError, match="403"):
            await connectFeed(f"ws://evil.example:{hub.port}{path}",
                              address=("127.0.0.1", hub.port))
        with pytest.raises(ConnectionError, match="403"):
            await connectFeed(f"ws://127.0.0.1:{hub.port}{path}", origin="http://evil.example")
        first = await connectFeed(f"ws://127.0.0.1:{hub.port}{path}",
                                  origin=f"http://127.0.0.1:{hub.port}")
        with pytest.raises(ConnectionError, match="503"):
            await connectFeed(f"ws://127.0.0.1:{hub.port}{path}")
        await first.close()
        await waitUntil(lambda: first.closed, what="closed")
