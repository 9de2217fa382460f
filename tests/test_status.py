"""
The status board: numbering, change detection, the message's shape.
"""

from __future__ import annotations

import pytest
from twisted.internet.task import Clock
from zope.interface import implementer

from statushub.interfaces import IStatusSink
from statushub.status import NodeStatus, Picture, StatusBoard, isoTimestamp


@implementer(IStatusSink)
class Recorder:
    def __init__(self) -> None:
        self.messages: list[dict] = []

    def broadcast(self, message: dict) -> None:
        self.messages.append(message)


@implementer(IStatusSink)
class Broken:
    def broadcast(self, message: dict) -> None:
        raise RuntimeError("sink is broken")


def test_only_changes_are_emitted_and_numbered() -> None:
    board = StatusBoard(Clock())
    sink = Recorder()
    board.addSink(sink)
    assert not board.update(Picture())
    assert board.change(deployStatus="deploying")
    assert not board.change(deployStatus="deploying")
    assert board.change(deployStatus="deployed")
    assert [m["seq"] for m in sink.messages] == [1, 2]
    assert board.current() is sink.messages[-1]


def test_message_shape() -> None:
    clock = Clock()
    clock.advance(1795248000.123)
    board = StatusBoard(clock)
    board.update(
        Picture(
            deployStatus="deployed",
            deployment="demo",
            nodeStatuses=(
                NodeStatus("web", "abc", "running", "healthy"),
                NodeStatus("db", "def", "exited"),
            ),
        )
    )
    message = board.current()
    assert message["type"] == "status_update"
    assert message["nodeStatuses"] == [
        {"nodeId": "web", "containerId": "abc", "status": "running", "health": "healthy"},
        {"nodeId": "db", "containerId": "def", "status": "exited"},
    ]
    assert message["timestamp"] == "2026-11-21T08:00:00.123Z"
    assert message["deployment"] == "demo"


def test_broken_sink_does_not_starve_others() -> None:
    board = StatusBoard(Clock())
    sink = Recorder()
    board.addSink(Broken())
    board.addSink(sink)
    board.change(deployStatus="deploying")
    assert len(sink.messages) == 1


def test_unknown_deploy_status_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown deployStatus"):
        Picture(deployStatus="exploded")


def test_timestamp_format() -> None:
    assert isoTimestamp(0) == "1970-01-01T00:00:00.000Z"
