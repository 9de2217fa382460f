"""
The insight room on the private Docker engine: the real SDK, streams read in
threads of the bounded pool, the real reactor.  Followers here are in
memory; the feeds over real sockets are tested with the hub process.
"""

from __future__ import annotations

import pytest
import pytest_twisted
from twisted.application.internet import TimerService
from twisted.internet import reactor
from twisted.internet.defer import ensureDeferred
from zope.interface import implementer

from statushub.engine import DEPLOYMENT_LABEL, NODE_LABEL, ContainerSpec, NodeLocation
from statushub.engine.docker import DockerEngine
from statushub.errors import UnknownDeployment
from statushub.insight.logs import LogHub
from statushub.insight.pumps import StreamThreads
from statushub.insight.stats import StatsHub
from statushub.interfaces import INodeLocator
from tests.fakeinsight import RecordingFollower
from tests.fixtures.docker import IMAGE
from tests.waiting import waitUntil

pytestmark = pytest.mark.docker

# prints "n 1", "n 2", ... every 50 ms
NUMBERED = "i=1; while :; do echo n $i; i=$((i+1)); sleep 0.05; done"


@implementer(INodeLocator)
class Nodes:
    def __init__(self) -> None:
        self.nodes: dict[str, list[NodeLocation]] = {}

    def deployments(self) -> list[str]:
        return sorted(self.nodes)

    def locate(self, deployment: str) -> list[NodeLocation]:
        if deployment not in self.nodes:
            raise UnknownDeployment(deployment)
        return self.nodes[deployment]


@pytest.fixture
def parts(docker):
    engine = DockerEngine(reactor, host=docker.host, timeout=10)
    pump = StreamThreads(reactor, maximum=8)
    nodes = Nodes()
    logs = LogHub(engine, nodes, reactor, pump, reactor.callFromThread, linger=0.5)
    stats = StatsHub(engine, nodes, reactor, pump, reactor.callFromThread, linger=0.5)
    rounds = TimerService(stats.interval, stats.tick)
    rounds.startService()
    yield engine, nodes, logs, stats, pump
    rounds.stopService()
    logs.closeAll()
    stats.closeAll()
    pump.stop()
    engine.stop()


async def start(engine, nodes, name: str, script: str) -> str:
    containerId = await engine.createContainer(ContainerSpec(
        name=f"insight-{name}", image=IMAGE, command=("sh", "-c", script),
        labels=((DEPLOYMENT_LABEL, "insight"), (NODE_LABEL, name)),
    ))
    await engine.startContainer(containerId)
    nodes.nodes.setdefault("insight", []).append(NodeLocation(name, containerId, "running"))
    return containerId


def numbers(follower: RecordingFollower) -> list[int]:
    return [int(text.split()[1]) for text in follower.texts()]


def consecutive(values: list[int]) -> bool:
    return values == list(range(values[0], values[0] + len(values))) if values else True


@pytest_twisted.ensureDeferred
async def test_twoFollowersOneStream(parts) -> None:
    """
    Two followers of a node printing every 50 ms get the same consecutive
    numbers, the tail first, through one engine stream, read in one thread;
    it closes once both have left.
    """
    engine, nodes, logs, stats, pump = parts
    await start(engine, nodes, "counter", NUMBERED)
    await waitUntil(lambda: logs.tail("insight", "counter", 5), timeout=20,
                    what="the first lines")
    first, second = RecordingFollower(), RecordingFollower()
    ensureDeferred(logs.follow("insight", "counter", first, 5))
    ensureDeferred(logs.follow("insight", "counter", second, 5))
    await waitUntil(lambda: len(numbers(first)) >= 60 and len(numbers(second)) >= 60,
                    timeout=30, what="three seconds of lines")
    assert logs.streams == 1 and pump.running == 1
    for follower in (first, second):
        got = numbers(follower)
        assert consecutive(got), got
        assert not [m for m in follower.messages if m["type"] == "log_gap"]
    # the same lines, in the same order, wherever each started
    common = set(numbers(first)) & set(numbers(second))
    assert len(common) >= 50
    logs.unfollow(first)
    logs.unfollow(second)
    await waitUntil(lambda: logs.streams == 0 and pump.running == 0, timeout=10,
                    what="the stream closed")


@pytest_twisted.ensureDeferred
async def test_endsWithTheContainer(parts, docker) -> None:
    engine, nodes, logs, stats, pump = parts
    containerId = await start(engine, nodes, "short", NUMBERED)
    follower = RecordingFollower()
    ensureDeferred(logs.follow("insight", "short", follower, 0))
    await waitUntil(lambda: len(numbers(follower)) >= 5, timeout=20, what="lines")
    docker.docker("kill", containerId)
    await waitUntil(lambda: follower.ended, timeout=10, what="the end of the log")
    assert consecutive(numbers(follower))
    assert logs.streams == 0


@pytest_twisted.ensureDeferred
async def test_busyNode(parts) -> None:
    """
    The resource use of a busy node: CPU above half a core, memory in use
    within its limit; the stream closes once nobody watches.
    """
    engine, nodes, logs, stats, pump = parts
    await start(engine, nodes, "busy", "while :; do :; done")
    await start(engine, nodes, "idle", "sleep infinity")
    watcher = RecordingFollower()
    stats.watch(watcher, "insight")

    def busy():
        # the first samples may still count the loop's start: wait for one
        # that shows it running
        for message in watcher.messages:
            byNode = {n["nodeId"]: n for n in message["nodes"]}
            if "idle" in byNode and byNode.get("busy", {}).get("cpu", 0) > 50.0:
                return byNode
        return None

    byNode = await waitUntil(busy, timeout=20, what="the busy node above 50 % CPU")
    assert byNode["idle"]["cpu"] < 50.0
    for node in byNode.values():
        assert 0 < node["memoryBytes"] < node["memoryLimitBytes"]
    assert stats.streams == 2
    stats.unwatch(watcher)
    await waitUntil(lambda: stats.streams == 0 and pump.running == 0, timeout=10,
                    what="the streams closed")
