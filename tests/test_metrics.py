"""
The metrics in memory: what the feed, the engine side and the status board
count, and what the collector reads at scrape time, on a registry of the
test's own (in-memory clients, the in-memory engine, a task.Clock).
"""

from __future__ import annotations

import gc
import re
from typing import Optional

import pytest
from prometheus_client import generate_latest
from twisted.internet import reactor
from twisted.internet.task import Clock
from zope.interface import implementer
from zope.interface.verify import verifyObject

from statushub.deploy.manager import DeploymentManager, EngineHealth
from statushub.topology import validateTopology
from statushub.engine import EngineError, EngineEvent
from statushub.hub import StatusHubFactory
from statushub.hub.keepalive import KeepAlive
from statushub.interfaces import IContainerEngine, IHealthCheck, IStatusSink
from statushub.metrics import DROP_REASONS, Metrics
from statushub.status import NodeStatus, Picture, StatusBoard
from tests.fakeengine import FakeEngine, callNow
from tests.memoryclient import MemoryClient


def value(metrics: Metrics, name: str, **labels: str) -> Optional[float]:
    return metrics.registry.get_sample_value(name, labels)


def feedWorld(**hubOptions) -> tuple[Metrics, StatusBoard, StatusHubFactory]:
    metrics = Metrics()
    board = StatusBoard(Clock())
    board.addSink(metrics.status)
    hub = StatusHubFactory(board, reactor, metrics=metrics.feed, **hubOptions)
    board.addSink(hub)
    metrics.watch(hub.__len__, board.snapshot, [EngineWord()])
    return metrics, board, hub


class EngineWord:
    """
    C{/healthz}'s engine entry, as a world without a manager has it.
    """

    name = "engine"

    def __init__(self, state: str = "unknown") -> None:
        self.state = state

    def health(self) -> str:
        return self.state


def deployed(*nodes: NodeStatus) -> Picture:
    return Picture(deployStatus="deployed", deployment="demo", nodeStatuses=nodes,
                   engine="reachable")


# The feed: counted per broadcast, clients read when scraped.


def test_broadcast_counts_frames_and_bytes_once_per_message() -> None:
    metrics, board, hub = feedWorld()
    clients = [MemoryClient(hub, 40000 + i).open() for i in range(3)]
    snapshot = len(hub._frame(board.snapshot()[0]))
    assert value(metrics, "statushub_feed_clients") == 3
    assert value(metrics, "statushub_feed_connections_total") == 3
    assert value(metrics, "statushub_feed_frames_sent_total") == 3
    assert value(metrics, "statushub_feed_sent_bytes_total") == 3 * snapshot
    before = value(metrics, "statushub_feed_broadcast_duration_seconds_count")

    board.update(deployed(NodeStatus("web", "c1", "running")))
    frame = len(hub._frame(board.current("demo")))
    assert all(len(c.messages()) == 2 for c in clients)
    assert value(metrics, "statushub_status_messages_total") == 1
    assert value(metrics, "statushub_feed_frames_sent_total") == 3 + 3
    assert value(metrics, "statushub_feed_sent_bytes_total") == 3 * snapshot + 3 * frame
    assert value(metrics, "statushub_feed_broadcast_duration_seconds_count") == before + 1

    clients[0].disconnect()
    assert value(metrics, "statushub_feed_clients") == 2


def test_get_status_counts_one_frame() -> None:
    metrics, board, hub = feedWorld()
    client = MemoryClient(hub).open()
    client.send(b'{"type": "get_status"}')
    assert len(client.messages()) == 2
    assert value(metrics, "statushub_feed_frames_sent_total") == 2


def test_every_drop_reason_is_there_before_the_first_drop() -> None:
    metrics, board, hub = feedWorld()
    for reason in DROP_REASONS:
        assert value(metrics, "statushub_feed_clients_dropped_total", reason=reason) == 0


def test_slow_client_counts_as_slow_and_is_not_counted_as_reached() -> None:
    metrics, board, hub = feedWorld(maxSendBuffer=10_000)
    slow, fast = MemoryClient(hub, 1).open(), MemoryClient(hub, 2).open()
    while slow.protocol in hub:
        slow.protocol.window.pauseProducing()
        board.update(deployed(NodeStatus("web", "c1", "running", str(board.current("demo")["seq"]))))
    broadcasts = board.current("demo")["seq"]
    assert value(metrics, "statushub_feed_clients_dropped_total", reason="slow") == 1
    # the slow one got every frame but the one it was dropped on
    assert value(metrics, "statushub_feed_frames_sent_total") == 2 + broadcasts + broadcasts - 1
    assert value(metrics, "statushub_feed_clients") == 1 and fast.protocol in hub


@pytest.mark.parametrize(
    "payload, opcode",
    [(b"\x00\x01", 2), (b"not json", 1), (b'{"type": "deploy"}', 1), (b"x" * 5000, 1)],
    ids=["binary", "not-json", "unknown-type", "too-large"],
)
def test_bad_messages_count_as_bad_message(payload: bytes, opcode: int) -> None:
    metrics, board, hub = feedWorld()
    client = MemoryClient(hub).open()
    client.send(payload, opcode)
    assert client.protocol not in hub
    assert value(metrics, "statushub_feed_clients_dropped_total", reason="bad_message") == 1
    assert value(metrics, "statushub_feed_clients_dropped_total", reason="slow") == 0


def test_client_closing_by_itself_is_no_drop() -> None:
    metrics, board, hub = feedWorld()
    client = MemoryClient(hub).open()
    client.send(b"\x03\xe8", opcode=8)  # a close frame, code 1000
    assert client.protocol not in hub
    for reason in DROP_REASONS:
        assert value(metrics, "statushub_feed_clients_dropped_total", reason=reason) == 0


def test_silent_client_counts_as_ping_timeout() -> None:
    metrics, board, hub = feedWorld()
    clock = Clock()
    keepAlive = KeepAlive(hub, clock, interval=5, timeout=2)
    keepAlive.startService()
    silent, answering = MemoryClient(hub, 1).open(), MemoryClient(hub, 2).open()
    clock.advance(5)
    answering.pong()
    clock.advance(2)
    keepAlive.stopService()
    assert silent.protocol not in hub
    assert value(metrics, "statushub_feed_clients_dropped_total", reason="ping_timeout") == 1
    assert value(metrics, "statushub_feed_clients") == 1


def test_hub_without_metrics_counts_nothing_and_still_works() -> None:
    board = StatusBoard(Clock())
    hub = StatusHubFactory(board, reactor)
    board.addSink(hub)
    client = MemoryClient(hub).open()
    board.update(deployed())
    client.send(b"not json")
    assert len(client.messages()) == 2 and client.protocol not in hub


# The engine side: the manager on the in-memory engine, through MeteredEngine.


@pytest.fixture
def engineWorld():
    metrics = Metrics()
    clock = Clock()
    engine = FakeEngine()
    board = StatusBoard(clock)
    board.addSink(metrics.status)
    manager = DeploymentManager(
        metrics.engine.wrap(engine), board, clock, 2.0, runInThread=callNow,
        observePoll=metrics.engine.observePoll,
    )
    metrics.watch(lambda: 0, board.snapshot, [EngineHealth(manager)])
    yield metrics, clock, engine, board, manager
    if manager.running:
        manager.stopService()
    engine.assertStreamsClosed()


def topology(*nodeIds: str, name: str = "demo"):
    return validateTopology({
        "name": name,
        "nodes": [{"id": n, "image": "statushub/busybox" if n != "bad" else "no/such",
                   "healthcheck": {"test": ["CMD-SHELL", "true"]}} for n in nodeIds],
    })


def test_metered_engine_is_an_engine(engineWorld) -> None:
    metrics, clock, engine, board, manager = engineWorld
    verifyObject(IContainerEngine, metrics.engine.wrap(engine))
    verifyObject(IStatusSink, metrics.status)


def test_engine_calls_errors_and_up(engineWorld) -> None:
    metrics, clock, engine, board, manager = engineWorld
    manager.startService()
    assert value(metrics, "statushub_engine_up") == 1
    # the first contact is the adoption's list call
    assert value(metrics, "statushub_engine_calls_total", operation="list") == 1
    manager.deploy(topology("web", "db"))
    assert value(metrics, "statushub_engine_calls_total", operation="create") == 2
    assert value(metrics, "statushub_engine_calls_total", operation="start") == 2
    assert value(metrics, "statushub_engine_errors_total",
                 operation="list", kind="unreachable") == 0

    engine.reachable = False
    clock.advance(2.0)
    assert value(metrics, "statushub_engine_up") == 0
    assert value(metrics, "statushub_engine_errors_total",
                 operation="list", kind="unreachable") == 1
    engine.reachable = True
    clock.advance(2.0)
    assert value(metrics, "statushub_engine_up") == 1


def test_engine_refusal_is_an_error_not_unreachable(engineWorld) -> None:
    metrics, clock, engine, board, manager = engineWorld
    manager.startService()
    manager.deploy(topology("bad"))
    assert board.picture("demo").deployStatus == "failed"
    assert value(metrics, "statushub_engine_errors_total", operation="create", kind="error") == 1
    assert value(metrics, "statushub_engine_errors_total",
                 operation="create", kind="unreachable") == 0


def test_events_counted_by_action(engineWorld) -> None:
    metrics, clock, engine, board, manager = engineWorld
    manager.startService()
    manager.deploy(topology("web"))
    [stream] = engine.streams
    containerId = engine.idsByNode()["web"]
    for action in ("die", "start", "health_status: healthy", "health_status: unhealthy",
                   "exec_start: sh -c true", "Weird Action!"):
        stream.push(EngineEvent(containerId, action))
    assert value(metrics, "statushub_engine_events_total", action="die") == 1
    assert value(metrics, "statushub_engine_events_total", action="health_status") == 2
    assert value(metrics, "statushub_engine_events_total", action="exec_start") == 1
    assert value(metrics, "statushub_engine_events_total", action="other") == 1


def test_poll_duration_is_observed_on_the_clock(engineWorld) -> None:
    metrics, clock, engine, board, manager = engineWorld
    manager.startService()
    manager.deploy(topology("web"))
    polls = value(metrics, "statushub_poll_duration_seconds_count")
    assert polls >= 1
    engine.holdLists = True
    clock.advance(2.0)
    clock.advance(0.3)  # the engine takes its time to answer
    engine.releaseLists()
    assert value(metrics, "statushub_poll_duration_seconds_count") == polls + 1
    assert value(metrics, "statushub_poll_duration_seconds_bucket", le="0.25") == polls
    assert value(metrics, "statushub_poll_duration_seconds_bucket", le="0.5") == polls + 1


def test_deploys_and_teardowns_by_outcome(engineWorld) -> None:
    metrics, clock, engine, board, manager = engineWorld
    manager.startService()
    manager.deploy(topology("web"))
    manager.teardown("demo")
    assert board.picture("demo").deployStatus == "idle"
    manager.deploy(topology("bad"))
    assert board.picture("demo").deployStatus == "failed"
    manager.deploy(topology("web", name="second"))
    engine.failNext["listContainers"] = EngineError("list containers: refused")
    manager.teardown("second")
    assert board.picture("second").deployStatus == "failed"

    def outcome(name: str, outcome: str) -> Optional[float]:
        return value(metrics, f"statushub_{name}_total", outcome=outcome)

    assert outcome("deploys", "succeeded") == 2
    assert outcome("deploys", "failed") == 1
    assert outcome("teardowns", "succeeded") == 1
    assert outcome("teardowns", "failed") == 1


def test_deployments_and_nodes_by_status(engineWorld) -> None:
    metrics, clock, engine, board, manager = engineWorld
    assert value(metrics, "statushub_deployments", status="deployed") == 0
    board.update(deployed(
        NodeStatus("a", "c1", "running", "healthy"),
        NodeStatus("b", "c2", "running", "healthy"),
        NodeStatus("c", "c3", "running", "starting"),
        NodeStatus("d", "c4", "exited"),
    ))
    assert value(metrics, "statushub_deployments", status="deployed") == 1
    assert value(metrics, "statushub_deployments", status="failed") == 0
    assert value(metrics, "statushub_nodes", status="running", health="healthy") == 2
    assert value(metrics, "statushub_nodes", status="running", health="starting") == 1
    assert value(metrics, "statushub_nodes", status="exited", health="none") == 1
    board.update(Picture(deployStatus="idle", deployment="demo", engine="reachable"))
    assert value(metrics, "statushub_deployments", status="deployed") == 0
    assert value(metrics, "statushub_nodes", status="running", health="healthy") is None


@implementer(IHealthCheck)
class Joined:
    name = "wamp"

    def __init__(self) -> None:
        self.state = "joined"

    def health(self) -> str:
        return self.state


def test_wamp_joined_only_when_wamp_is_configured() -> None:
    board = StatusBoard(Clock())
    without = Metrics()
    without.watch(lambda: 0, board.snapshot, [EngineWord()])
    assert value(without, "statushub_wamp_joined") is None

    wamp = Joined()
    metrics = Metrics()
    metrics.watch(lambda: 0, board.snapshot, [EngineWord(), wamp])
    assert value(metrics, "statushub_wamp_joined") == 1
    wamp.state = "connecting"
    assert value(metrics, "statushub_wamp_joined") == 0


# The whole: names, labels, separate registries.


def test_names_units_and_bounded_labels(engineWorld) -> None:
    metrics, clock, engine, board, manager = engineWorld
    manager.startService()
    manager.deploy(topology("web", "db"))
    text = generate_latest(metrics.registry).decode()
    families = re.findall(r"^# TYPE (\S+) (\S+)$", text, re.MULTILINE)
    assert families
    for name, kind in families:
        assert name.startswith("statushub_"), name
        if kind == "counter":
            assert name.endswith("_total"), name
        if kind == "histogram":
            assert name.endswith("_seconds"), name
    # no container id (nor any part of one) is ever a label value
    values = set(re.findall(r'[a-z_]+="([^"]*)"', text))
    assert {"running", "slow", "list"} <= values
    for containerId in engine.containers:
        assert not [v for v in values if v and v in containerId], containerId
    assert "statushub_process_cpu_seconds_total" in text


def test_two_hubs_in_one_process_keep_apart() -> None:
    first, board1, hub1 = feedWorld()
    second, board2, hub2 = feedWorld()
    MemoryClient(hub1).open()
    assert value(first, "statushub_feed_clients") == 1
    assert value(second, "statushub_feed_clients") == 0
    board1.update(deployed())
    assert value(first, "statushub_status_messages_total") == 1
    assert value(second, "statushub_status_messages_total") == 0


def test_gc_pauses_are_timed_while_the_hub_runs() -> None:
    metrics = Metrics()

    def full() -> float:
        return value(metrics, "statushub_gc_pause_seconds_count", generation="gen2")

    assert [value(metrics, "statushub_gc_pause_seconds_count", generation=f"gen{g}")
            for g in range(3)] == [0, 0, 0]
    gc.collect()
    assert full() == 0  # not started: not timed
    metrics.gc.startService()
    try:
        before = full()
        gc.collect()
        assert full() == before + 1
        assert value(metrics, "statushub_gc_pause_seconds_sum", generation="gen2") > 0
    finally:
        metrics.gc.stopService()
    stopped = full()
    gc.collect()
    assert full() == stopped
