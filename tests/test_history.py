"""
The history in SQLite (a real database in a temporary directory), the
numbering that goes on from it, and the hub's resume of a feed, with a
history whose reads the test answers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from zope.interface.verify import verifyObject

from statushub.history.store import HistoryStore, Page, openDatabase
from statushub.hub import StatusHubFactory
from statushub.interfaces import IHealthCheck, IHistory, IMessageNumbering
from statushub.numbering import PersistentNumbering
from statushub.status import HistorySink, NodeStatus, Picture, StatusBoard
from tests.memoryclient import MemoryClient


def picture(name: str, status: str) -> Picture:
    return Picture(
        deployStatus="deployed", deployment=name,
        nodeStatuses=(NodeStatus("web", "c1", status),),
    )


def openBoard(path: Path, **kwargs) -> tuple[HistoryStore, StatusBoard]:
    store = HistoryStore(str(path), reactor, **kwargs)
    opened = store.open()
    assert opened is not None
    store.start()
    board = StatusBoard(Clock(), PersistentNumbering(opened.epoch, opened.lastByName()))
    board.addSink(HistorySink(store))
    return store, board


def flip(board: StatusBoard, name: str, count: int) -> None:
    for i in range(count):
        board.update(picture(name, "running" if i % 2 else "exited"))


def test_interfaces(tmp_path: Path) -> None:
    store = HistoryStore(str(tmp_path / "h.db"), reactor)
    verifyObject(IHistory, store)
    verifyObject(IHealthCheck, store)
    verifyObject(IMessageNumbering, PersistentNumbering("e", {}))


@pytest_twisted.ensureDeferred
async def test_keptInOrderAndReadBack(tmp_path: Path) -> None:
    store, board = openBoard(tmp_path / "h.db")
    try:
        flip(board, "alpha", 5)
        flip(board, "bravo", 2)
        page = await store.page("alpha", since=2)
        assert (page.first, page.last) == (1, 5)
        assert [json.loads(b)["seq"] for b in page.bodies] == [3, 4, 5]
        assert json.loads(page.bodies[-1]) == board.current("alpha")
        assert (await store.page("never")).last == 0
        assert store.health() == "ok"
    finally:
        await store.stop()


@pytest_twisted.ensureDeferred
async def test_seqGoesOnAcrossReopens(tmp_path: Path) -> None:
    """
    A database opened again keeps its epoch and every deployment's count; a
    new database is a new epoch.
    """
    path = tmp_path / "h.db"
    store, board = openBoard(path)
    epoch = board.epoch
    flip(board, "alpha", 3)
    await store.stop()
    for round in (1, 2):
        store, board = openBoard(path)
        assert board.epoch == epoch
        assert board.current("alpha")["seq"] == 3 * round
        flip(board, "alpha", 3)
        await store.stop()
    store, board = openBoard(path)
    page = await store.page("alpha")
    assert [json.loads(b)["seq"] for b in page.bodies] == list(range(1, 10))
    await store.stop()
    other, fresh = openBoard(tmp_path / "other.db")
    assert fresh.epoch != epoch
    assert fresh.current("alpha")["seq"] == 0
    await other.stop()


@pytest_twisted.ensureDeferred
async def test_retentionByCount(tmp_path: Path) -> None:
    """
    Beyond C{maxMessages} the oldest go; a page says where history starts,
    and the count still goes on.
    """
    store, board = openBoard(tmp_path / "h.db", maxMessages=10)
    try:
        flip(board, "alpha", 250)
        page = await store.page("alpha")
        assert page.last == 250
        assert page.first > 1
        assert [json.loads(b)["seq"] for b in page.bodies] == list(range(page.first, 251))
        assert await store.count() <= 2 * 10  # pruned every tenth write
    finally:
        await store.stop()


@pytest_twisted.ensureDeferred
async def test_retentionByAge(tmp_path: Path) -> None:
    now = [1_000_000.0]
    store, board = openBoard(tmp_path / "h.db", keepDays=1, clock=lambda: now[0])
    flip(board, "alpha", 3)
    await store.count()  # written
    await store.stop()
    now[0] += 2 * 86400
    store, board = openBoard(tmp_path / "h.db", keepDays=1, clock=lambda: now[0])
    try:
        page = await store.page("alpha")
        assert (page.first, page.last, page.bodies) == (0, 3, [])
    finally:
        await store.stop()


def test_cannotOpen(tmp_path: Path) -> None:
    """
    A database that cannot be opened is reported; messages are dropped, not
    raised.
    """
    blocker = tmp_path / "file"
    blocker.write_text("")
    store = HistoryStore(str(blocker / "h.db"), reactor)
    assert store.open() is None
    # a word for /healthz, which is open: no file, no error text
    assert store.health() == "cannot open"
    store.append({"deployment": "alpha", "seq": 1})
    assert store.stop().called


@pytest_twisted.ensureDeferred
async def test_stopWritesEverythingWithoutBlocking(tmp_path: Path) -> None:
    """
    L{HistoryStore.stop} returns at once; its Deferred fires once every
    message handed over before it is written and the database is closed.
    """
    store, board = openBoard(tmp_path / "h.db")
    flip(board, "alpha", 500)
    stopped = store.stop()
    assert not stopped.called  # the writer thread tells the reactor later
    await stopped
    connection, opened = openDatabase(str(tmp_path / "h.db"))
    try:
        assert connection.execute("SELECT count(*) FROM messages").fetchone()[0] == 500
        assert opened.lastByName() == {"alpha": 500}
    finally:
        connection.close()


@pytest_twisted.ensureDeferred
async def test_cannotWrite(tmp_path: Path) -> None:
    """
    A write that fails is reported in L{health}, and the store goes on.
    """
    store = HistoryStore(str(tmp_path / "h.db"), reactor)
    store.open()
    store.start()
    try:
        store.append({"deployment": "alpha"})  # no seq: cannot be filed
        store.append({"deployment": "alpha", "seq": 1, "x": 1})
        page = await store.page("alpha")
        assert [json.loads(b)["seq"] for b in page.bodies] == [1]
        assert store.health() == "ok"
    finally:
        await store.stop()


class AnsweredHistory:
    """
    A history whose reads wait for the test: C{answer()} reads C{board}'s
    messages as they are then.
    """

    def __init__(self) -> None:
        self.kept: list[dict] = []
        self.reads: list[tuple[str, int, Deferred]] = []

    def broadcast(self, message: dict) -> None:
        self.kept.append(message)

    def page(self, name: str, since: int, limit: int) -> Deferred:
        d: Deferred = Deferred()
        self.reads.append((name, since, d))
        return d

    def answer(self, first: int = 1) -> None:
        name, since, d = self.reads.pop(0)
        mine = [m for m in self.kept if m["deployment"] == name]
        bodies = [json.dumps(m) for m in mine if m["seq"] > since and m["seq"] >= first]
        d.callback(Page(first, mine[-1]["seq"] if mine else 0, bodies))


def resumingHub() -> tuple[StatusBoard, StatusHubFactory, AnsweredHistory]:
    history = AnsweredHistory()
    board = StatusBoard(Clock())
    board.addSink(history)
    hub = StatusHubFactory(board, reactor, history=history)
    board.addSink(hub)
    return board, hub, history


def seqs(client: MemoryClient, name: Optional[str] = "alpha") -> list[int]:
    return [m["seq"] for m in client.messages() if m["deployment"] == name]


def test_resumeSeam() -> None:
    """
    Messages emitted while the replay is read wait, and each goes out once:
    what the replay had is not sent again.
    """
    board, hub, history = resumingHub()
    flip(board, "alpha", 10)
    client = MemoryClient(hub, path=f"/ws/status?deployment=alpha&since=4&epoch={board.epoch}")
    client.open()
    flip(board, "alpha", 2)  # 11, 12: emitted before the read is answered
    assert seqs(client) == []
    history.answer()  # the read sees 5..12 (written before it ran)
    board.update(picture("alpha", "paused"))
    assert seqs(client) == list(range(5, 14))


def test_resumeNothingMissed() -> None:
    board, hub, history = resumingHub()
    flip(board, "alpha", 3)
    client = MemoryClient(hub, path=f"/ws/status?deployment=alpha&since=3&epoch={board.epoch}")
    client.open()
    assert history.reads == []
    board.update(picture("alpha", "paused"))
    assert seqs(client) == [4]


def test_resumeStaleEpoch() -> None:
    board, hub, history = resumingHub()
    flip(board, "alpha", 3)
    client = MemoryClient(hub, path="/ws/status?deployment=alpha&since=1&epoch=old").open()
    assert history.reads == []
    assert seqs(client) == [3]


def test_resumePruned() -> None:
    """
    When what was missed is no longer all kept, the current picture.
    """
    board, hub, history = resumingHub()
    flip(board, "alpha", 10)
    client = MemoryClient(hub, path=f"/ws/status?deployment=alpha&since=2&epoch={board.epoch}")
    client.open()
    history.answer(first=6)
    assert seqs(client) == [10]


def test_resumeBadArguments() -> None:
    board, hub, history = resumingHub()
    client = MemoryClient(hub, path="/ws/status?deployment=alpha&since=x&epoch=e")
    client.protocol.dataReceived(
        b"GET /ws/status?deployment=alpha&since=x&epoch=e HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    assert client.transport.value().startswith(b"HTTP/1.1 400")
    assert b"since" in client.transport.value()
