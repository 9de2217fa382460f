"""
The freeze policy (hub/freezer.py) on a task.Clock, with a stand-in for
C{gc} that records what it was asked to do.  The real collector, on real
sockets: tests/test_hub_memory.py.
"""

from __future__ import annotations

import pytest
from twisted.internet.task import Clock

from statushub.hub.freezer import ConnectionFreezer
from tests.memoryclient import MemoryClient
from tests.test_hub import makeHub


class RecordingCollector:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def collect(self) -> int:
        self.calls.append("collect")
        return 0

    def freeze(self) -> None:
        self.calls.append("freeze")

    def unfreeze(self) -> None:
        self.calls.append("unfreeze")


def started(
    clients: int = 0, batch: int = 10, thawAfter: float = 4.0
) -> tuple[ConnectionFreezer, Clock, RecordingCollector, list[int]]:
    clock, collector = Clock(), RecordingCollector()
    connected = [clients]
    freezer = ConnectionFreezer(
        clock, lambda: connected[0], batch=batch, thawAfter=thawAfter, collector=collector
    )
    freezer.startService()
    return freezer, clock, collector, connected


def test_start_up_is_collected_then_frozen_once_the_reactor_turns() -> None:
    freezer, clock, collector, _ = started()
    assert collector.calls == []
    clock.advance(0)
    assert collector.calls == ["collect", "freeze"]
    assert freezer.freezes == 1


def test_each_batch_of_new_clients_is_frozen_once() -> None:
    freezer, clock, collector, _ = started(batch=10)
    clock.advance(0)
    collector.calls.clear()
    for _ in range(9):
        freezer.opened()
    clock.advance(0)
    assert collector.calls == []
    freezer.opened()
    # not inside the handshake that crossed the mark: on the next turn
    assert collector.calls == []
    clock.advance(0)
    assert collector.calls == ["collect", "freeze"]
    for _ in range(9):
        freezer.opened()
    clock.advance(0)
    assert collector.calls == ["collect", "freeze"]
    freezer.opened()
    clock.advance(0)
    assert collector.calls == ["collect", "freeze"] * 2
    assert freezer.freezes == 3


def test_a_burst_in_one_turn_makes_one_step() -> None:
    freezer, clock, collector, _ = started(batch=10)
    clock.advance(0)
    collector.calls.clear()
    for _ in range(35):
        freezer.opened()
    clock.advance(0)
    assert collector.calls == ["collect", "freeze"]
    # the count starts again after the step
    for _ in range(9):
        freezer.opened()
    clock.advance(0)
    assert collector.calls == ["collect", "freeze"]


def test_the_clients_turning_over_make_the_next_step_a_thaw() -> None:
    # 100 connected, thaw after 4x that (at least a batch) opened since the last thaw
    freezer, clock, collector, connected = started(clients=100, batch=50, thawAfter=4.0)
    clock.advance(0)
    collector.calls.clear()
    for _ in range(7):  # 350 opened: seven plain freezes
        for _ in range(50):
            freezer.opened()
        clock.advance(0)
    assert collector.calls == ["collect", "freeze"] * 7
    collector.calls.clear()
    for _ in range(50):  # 400 = 4 x 100
        freezer.opened()
    clock.advance(0)
    assert collector.calls == ["unfreeze", "collect", "freeze"]
    assert (freezer.freezes, freezer.thaws) == (8, 1)
    # and the count of opens towards the next thaw starts again
    collector.calls.clear()
    for _ in range(50):
        freezer.opened()
    clock.advance(0)
    assert collector.calls == ["collect", "freeze"]


def test_few_clients_thaw_after_a_multiple_of_the_batch() -> None:
    freezer, clock, collector, _ = started(clients=3, batch=10, thawAfter=2.0)
    clock.advance(0)
    collector.calls.clear()
    for _ in range(10):
        freezer.opened()
    clock.advance(0)
    assert collector.calls == ["collect", "freeze"]
    for _ in range(10):
        freezer.opened()
    clock.advance(0)
    assert collector.calls[-3:] == ["unfreeze", "collect", "freeze"]


def test_nothing_is_scheduled_before_start_or_after_stop() -> None:
    clock, collector = Clock(), RecordingCollector()
    freezer = ConnectionFreezer(clock, lambda: 0, batch=1, collector=collector)
    freezer.opened()
    assert clock.getDelayedCalls() == []
    freezer.startService()
    freezer.opened()
    freezer.stopService()
    assert clock.getDelayedCalls() == []
    clock.advance(1)
    assert collector.calls == []


@pytest.mark.parametrize("batch, thawAfter", [(0, 4.0), (10, 0.0)])
def test_nonsense_settings_are_refused(batch: int, thawAfter: float) -> None:
    with pytest.raises(ValueError, match="batch"):
        ConnectionFreezer(Clock(), lambda: 0, batch=batch, thawAfter=thawAfter)


def test_the_hub_tells_its_freezer_of_every_client_that_opens() -> None:
    board, hub = makeHub()
    freezer, clock, collector, _ = started(batch=2)
    clock.advance(0)
    collector.calls.clear()
    hub.freezer = freezer
    MemoryClient(hub, 1)  # connected, never opened: not counted
    MemoryClient(hub, 2).open()
    clock.advance(0)
    assert collector.calls == []
    MemoryClient(hub, 3).open()
    clock.advance(0)
    assert collector.calls == ["collect", "freeze"]


def test_the_service_tree_freezes_the_feed() -> None:
    from twisted.internet import reactor

    from statushub.hub.keepalive import KeepAlive
    from statushub.tap import Options, makeService

    options = Options()
    options.parseOptions(["--listen", "tcp:0:interface=127.0.0.1"])
    options.config.override("history", "enabled", False)
    service = makeService(options, reactor)
    hub = next(child._hub for child in service if isinstance(child, KeepAlive))
    assert isinstance(hub.freezer, ConnectionFreezer)
    assert hub.freezer in list(service)
