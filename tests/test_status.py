"""
The status board: numbering per deployment, change detection, the
snapshot, the message's shape.
"""

from __future__ import annotations

import pytest
from twisted.internet.task import Clock
from zope.interface import implementer
from zope.interface.verify import verifyObject

from statushub.interfaces import IMessageNumbering, IStatusSink, IStatusSource
from statushub.numbering import MemoryNumbering
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


def recordedBoard() -> tuple[StatusBoard, Recorder]:
    board = StatusBoard(Clock())
    sink = Recorder()
    board.addSink(sink)
    return board, sink


def test_interfaces() -> None:
    verifyObject(IStatusSource, StatusBoard(Clock()))
    verifyObject(IMessageNumbering, MemoryNumbering())


def test_only_changes_are_emitted_and_numbered() -> None:
    board, sink = recordedBoard()
    assert not board.update(Picture())
    assert board.change("demo", deployStatus="deploying")
    assert not board.change("demo", deployStatus="deploying")
    assert board.change("demo", deployStatus="deployed")
    assert [m["seq"] for m in sink.messages] == [1, 2]
    assert board.current("demo") is sink.messages[-1]


def test_seq_is_per_deployment_and_every_message_has_the_epoch() -> None:
    board, sink = recordedBoard()
    board.change("a", deployStatus="deploying")
    board.change("b", deployStatus="deploying")
    board.change("a", deployStatus="deployed")
    board.change("b", deployStatus="deployed")
    board.change("b", deployStatus="tearing_down")
    seqs = [(m["deployment"], m["seq"]) for m in sink.messages]
    assert seqs == [("a", 1), ("b", 1), ("a", 2), ("b", 2), ("b", 3)]
    assert {m["epoch"] for m in sink.messages} == {board.epoch}
    assert isinstance(board.epoch, str) and board.epoch


def test_epoch_differs_per_numbering() -> None:
    assert StatusBoard(Clock()).epoch != StatusBoard(Clock()).epoch


def test_snapshot_in_name_order_or_the_idle_picture() -> None:
    board, sink = recordedBoard()
    [idle] = board.snapshot()
    assert idle["deployment"] is None and idle["deployStatus"] == "idle"
    assert idle["nodeStatuses"] == [] and idle["epoch"] == board.epoch
    for name in ("charlie", "alpha", "bravo"):
        board.change(name, deployStatus="deploying")
    assert [m["deployment"] for m in board.snapshot()] == ["alpha", "bravo", "charlie"]
    assert board.names() == ["alpha", "bravo", "charlie"]
    assert board.snapshot("bravo") == [board.current("bravo")]


def test_teardown_ends_with_idle_then_drops_out() -> None:
    """
    A deployment's idle picture is its last message; then it is no longer
    in the snapshot, and one asked for by name is idle, numbered as its last.
    """
    board, sink = recordedBoard()
    board.change("a", deployStatus="deployed",
                 nodeStatuses=(NodeStatus("web", "c1", "running"),))
    board.change("b", deployStatus="deployed")
    assert board.update(Picture(deployStatus="idle", deployment="a"))
    final = sink.messages[-1]
    assert (final["deployment"], final["deployStatus"], final["nodeStatuses"]) == ("a", "idle", [])
    assert board.names() == ["b"]
    assert [m["deployment"] for m in board.snapshot()] == ["b"]
    again = board.current("a")
    assert again["deployStatus"] == "idle" and again["seq"] == final["seq"]
    # deployed again: the numbering goes on, never back
    board.change("a", deployStatus="deploying")
    assert sink.messages[-1]["seq"] == final["seq"] + 1


def test_idle_of_a_name_never_deployed_emits_nothing() -> None:
    board, sink = recordedBoard()
    assert not board.update(Picture(deployStatus="idle", deployment="ghost"))
    assert sink.messages == [] and board.names() == []
    ghost = board.current("ghost")
    assert (ghost["deployment"], ghost["deployStatus"], ghost["seq"]) == ("ghost", "idle", 0)


def test_picture_of_no_deployment_goes_out_only_while_shown() -> None:
    board, sink = recordedBoard()
    assert board.change(None, engine="unreachable")
    assert sink.messages[-1]["deployment"] is None
    board.change("a", deployStatus="deploying")
    count = len(sink.messages)
    assert not board.change(None, engine="reachable")  # hidden behind "a"
    assert len(sink.messages) == count
    assert board.picture().engine == "reachable"
    # a deployment that does not exist takes the engine's word from it
    assert board.current("nothing")["engine"] == "reachable"
    board.update(Picture(deployStatus="idle", deployment="a"))
    [idle] = board.snapshot()
    assert idle["deployment"] is None and idle["engine"] == "reachable"


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
    message = board.current("demo")
    assert message["type"] == "status_update"
    assert message["nodeStatuses"] == [
        {"nodeId": "web", "containerId": "abc", "status": "running", "health": "healthy"},
        {"nodeId": "db", "containerId": "def", "status": "exited"},
    ]
    assert message["timestamp"] == "2026-11-21T08:00:00.123Z"
    assert message["deployment"] == "demo"
    assert message["seq"] == 1 and message["epoch"] == board.epoch


def test_broken_sink_does_not_starve_others() -> None:
    board = StatusBoard(Clock())
    sink = Recorder()
    board.addSink(Broken())
    board.addSink(sink)
    board.change("demo", deployStatus="deploying")
    assert len(sink.messages) == 1


def test_unknown_deploy_status_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown deployStatus"):
        Picture(deployStatus="exploded")


def test_timestamp_format() -> None:
    assert isoTimestamp(0) == "1970-01-01T00:00:00.000Z"


def test_numbering_counts_per_name() -> None:
    numbering = MemoryNumbering(epoch="e1")
    assert numbering.epoch == "e1"
    assert [numbering.next("a"), numbering.next("a"), numbering.next(None)] == [1, 2, 1]
    assert numbering.last("a") == 2 and numbering.last("b") == 0


def test_a_message_reads_back_as_its_picture() -> None:
    picture = Picture(
        "deployed",
        (NodeStatus("web", "c1", "running", health="healthy", since="t", restartCount=2),
         NodeStatus("db", "c2", "exited", exitCode=137)),
        "demo", "reachable",
    )
    message = picture.toMessage(7, "t", "e")
    assert Picture.fromMessage(message) == picture
    # a field this version does not know is left out
    message["nodeStatuses"][0]["fromTheFuture"] = 1
    assert Picture.fromMessage(message) == picture


def test_restore_makes_messages_current_without_emitting() -> None:
    """
    A board that takes over the numbering (a new leader of several hubs)
    starts from what was shown: an unchanged picture is not sent again.
    """
    clock = Clock()
    shown = Picture("deployed", (NodeStatus("web", "c1", "running"),), "demo", "reachable")
    board = StatusBoard(clock, MemoryNumbering("e"))
    board._numbering._last.update({"demo": 4, None: 2})
    sent = []

    @implementer(IStatusSink)
    class Sink:
        def broadcast(self, message: dict) -> None:
            sent.append(message)

    board.addSink(Sink())
    idle = Picture(engine="reachable").toMessage(2, "t", "e")
    board.restore([shown.toMessage(4, "t", "e"), idle])
    assert sent == [] and board.names() == ["demo"]
    assert board.current("demo")["seq"] == 4 and board.current(None) == idle
    assert not board.update(shown)
    assert board.update(shown.evolve(deployStatus="tearing_down"))
    assert sent[-1]["seq"] == 5
