"""
What makes an C{(epoch, seq)} name one message only, in unit tests on a
real SQLite database in a temporary directory: the epoch changes when the
database was not closed cleanly (the hub was killed) or lost a write; the
last message of every deployment is kept beyond pruning and served as it
was sent before the hub has adopted the deployment again; nothing is
numbered once the history has closed.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Optional

import pytest_twisted
from twisted.internet import reactor
from twisted.internet.task import Clock

from statushub.history.service import HistoryService
from statushub.history.store import HistoryStore
from statushub.numbering import PersistentNumbering
from statushub.status import HistorySink, NodeStatus, Picture, StatusBoard
from tests.waiting import waitUntil


def picture(name: str, status: str, deployStatus: str = "deployed") -> Picture:
    nodes = (NodeStatus("web", "c1", status),) if deployStatus != "idle" else ()
    return Picture(deployStatus=deployStatus, deployment=name, nodeStatuses=nodes)


class Emitted:
    """
    A sink that keeps what the board emitted.
    """

    def __init__(self) -> None:
        self.messages: list[dict] = []

    def broadcast(self, message: dict) -> None:
        self.messages.append(message)


def boardOn(store: HistoryStore, clock: Optional[Clock] = None) -> tuple[StatusBoard, Emitted]:
    """
    A board numbered and filled from what C{store} opened, as the hub makes it.
    """
    opened = store.opened
    assert opened is not None
    board = StatusBoard(clock or Clock(), PersistentNumbering(opened.epoch, opened.lastByName()),
                        last=opened.lastMessages())
    board.addSink(HistorySink(store))
    emitted = Emitted()
    board.addSink(emitted)
    return board, emitted


def started(path: Path, **kwargs) -> HistoryStore:
    store = HistoryStore(str(path), reactor, **kwargs)
    assert store.open() is not None
    store.start()
    return store


@pytest_twisted.ensureDeferred
async def test_cleanCloseKeepsTheEpoch(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    store = started(path)
    board, _ = boardOn(store)
    board.update(picture("alpha", "running"))
    await store.stop()
    again = HistoryStore(str(path), reactor)
    opened = again.open()
    assert opened is not None and not opened.renumbered
    assert opened.epoch == board.epoch
    assert opened.lastByName() == {"alpha": 1}


@pytest_twisted.ensureDeferred
async def test_notClosedIsANewEpoch(tmp_path: Path) -> None:
    """
    A database whose hub never closed it (killed, or it crashed) may lack
    messages that were sent: the next hub numbers under a new epoch, with
    seq going on from what is kept.
    """
    path = tmp_path / "h.db"
    killed = started(path)
    board, _ = boardOn(killed)
    board.update(picture("alpha", "running"))
    try:
        after = HistoryStore(str(path), reactor)
        opened = after.open()  # while the first one still runs: as if it had been killed now
        assert opened is not None and opened.renumbered
        assert opened.epoch != board.epoch
        assert opened.lastByName().get("alpha", 0) <= 1
        # and the epoch it chose is the database's from now on
        after.start()
        await after.stop()
        assert HistoryStore(str(path), reactor).open().epoch == opened.epoch
    finally:
        await killed.stop()


@pytest_twisted.ensureDeferred
async def test_aLostWriteIsANewEpoch(tmp_path: Path) -> None:
    """
    A write that failed (another process held the database longer than the
    store waits) lost messages that were sent: even closed cleanly, the
    next open starts a new epoch.
    """
    path = tmp_path / "h.db"
    store = started(path, lockTimeout=0.05)
    board, _ = boardOn(store)
    board.update(picture("alpha", "running"))
    await store.count()  # written
    lock = sqlite3.connect(path, isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")
    try:
        board.update(picture("alpha", "paused"))
        await waitUntil(lambda: "cannot write" in store.health(), what="the failed write")
    finally:
        lock.rollback()
        lock.close()
    await store.stop()
    opened = HistoryStore(str(path), reactor).open()
    assert opened.renumbered and opened.epoch != board.epoch


@pytest_twisted.ensureDeferred
async def test_theLastMessageOutlivesPruning(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    store = started(path, maxMessages=3)
    board, emitted = boardOn(store)
    for i in range(12):
        board.update(picture("alpha", "running" if i % 2 else "exited"))
    board.update(picture("bravo", "running"))
    page = await store.page("alpha")
    assert page.first > 1  # pruned
    await store.stop()
    store = started(path)
    try:
        last = store.opened.lastMessages()
        assert last["alpha"] == emitted.messages[11]
        assert last["bravo"] == emitted.messages[12]
    finally:
        await store.stop()


@pytest_twisted.ensureDeferred
async def test_boardServesTheStoredLastMessages(tmp_path: Path) -> None:
    """
    Before a deployment is current again (adopted), the board answers about
    it with its last message as it was sent, and so for the picture of no
    deployment; numbering goes on after it.
    """
    path = tmp_path / "h.db"
    store = started(path)
    board, emitted = boardOn(store)
    board.change(None, engine="reachable")
    board.update(picture("alpha", "running"))
    board.update(picture("bravo", "running"))
    board.update(picture("bravo", "running", "tearing_down"))
    board.update(picture("bravo", "", "idle"))
    await store.stop()
    alpha, bravoEnd = emitted.messages[1], emitted.messages[-1]
    idle = emitted.messages[0]

    store = started(path)
    try:
        restarted, again = boardOn(store, Clock())
        assert restarted.current("alpha") == alpha
        assert restarted.snapshot("alpha") == [alpha]
        assert restarted.current("bravo") == bravoEnd
        assert restarted.current(None) == idle
        assert restarted.snapshot() == [idle]  # nothing current yet
        assert restarted.current("never")["seq"] == 0
        restarted.update(picture("alpha", "paused"))
        assert again.messages[-1]["seq"] == alpha["seq"] + 1
    finally:
        await store.stop()


def test_aTeardownsLastMessageIsWhatIsServedAfter() -> None:
    board = StatusBoard(Clock())
    emitted = Emitted()
    board.addSink(emitted)
    board.update(picture("alpha", "running"))
    board.update(picture("alpha", "", "idle"))
    board._clock.advance(5)
    board.change(None, engine="unreachable")  # anything else changes meanwhile
    assert board.current("alpha") == emitted.messages[1]


def test_deploymentsGoneWhileAwayEnd() -> None:
    """
    Once the engine has been asked, a deployment the history left current
    that is not there any more ends with a message of its own; one torn
    down before is left alone.
    """
    stored = {
        "alpha": {"type": "status_update", "deployStatus": "deployed", "deployment": "alpha",
                  "nodeStatuses": [{"nodeId": "web", "containerId": "c", "status": "running"}],
                  "engine": "reachable", "error": None, "seq": 7, "epoch": "e",
                  "timestamp": "2026-11-26T08:00:00.000Z"},
        "bravo": {"type": "status_update", "deployStatus": "idle", "deployment": "bravo",
                  "nodeStatuses": [], "engine": "reachable", "error": None, "seq": 4,
                  "epoch": "e", "timestamp": "2026-11-26T08:00:00.000Z"},
    }
    board = StatusBoard(Clock(), PersistentNumbering("e", {"alpha": 7, "bravo": 4}), last=stored)
    emitted = Emitted()
    board.addSink(emitted)
    board.update(picture("charlie", "running"))
    assert board.endAbsent(["charlie"]) == ["alpha"]
    ended = emitted.messages[-1]
    assert (ended["deployment"], ended["deployStatus"], ended["seq"]) == ("alpha", "idle", 8)
    assert board.current("alpha") == ended
    assert board.endAbsent([]) == []  # once
    assert board.current("charlie")["deployStatus"] == "deployed"


@pytest_twisted.ensureDeferred
async def test_nothingIsNumberedOnceTheHistoryHasClosed(tmp_path: Path) -> None:
    """
    A change that comes while the hub stops, after its history closed,
    is not sent: it would carry a seq no database kept.
    """
    path = tmp_path / "h.db"
    store = HistoryStore(str(path), reactor)
    opened = store.open()
    numbering = PersistentNumbering(opened.epoch, opened.lastByName())
    service = HistoryService(store, numbering)
    board = StatusBoard(Clock(), numbering)
    board.addSink(HistorySink(store))
    emitted = Emitted()
    board.addSink(emitted)
    service.startService()
    board.update(picture("alpha", "running"))
    await service.stopService()
    assert board.update(picture("alpha", "exited")) is False
    assert [m["seq"] for m in emitted.messages] == [1]
    assert board.current("alpha") == emitted.messages[0]
    opened = HistoryStore(str(path), reactor).open()
    assert not opened.renumbered and opened.epoch == board.epoch
    assert opened.lastByName() == {"alpha": 1}


OLD_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE messages (
    id INTEGER PRIMARY KEY, deployment TEXT NOT NULL, seq INTEGER NOT NULL,
    time REAL NOT NULL, body TEXT NOT NULL
);
CREATE UNIQUE INDEX messages_by_deployment ON messages (deployment, seq);
CREATE TABLE counters (deployment TEXT PRIMARY KEY, last INTEGER NOT NULL);
INSERT INTO meta VALUES ('epoch', 'e0123456789abcde');
"""


def olderDatabase(path: Path, kept: dict[str, list[int]], last: dict[str, int]) -> None:
    old = sqlite3.connect(path)
    old.executescript(OLD_SCHEMA)
    for name, seqs in kept.items():
        for seq in seqs:
            body = {"deployment": name, "seq": seq, "epoch": "e0123456789abcde",
                    "deployStatus": "deployed", "timestamp": "2026-11-26T08:00:00.000Z"}
            old.execute("INSERT INTO messages (deployment, seq, time, body) VALUES (?, ?, 0, ?)",
                        (name, seq, json.dumps(body)))
    old.executemany("INSERT INTO counters VALUES (?, ?)", list(last.items()))
    old.commit()
    old.close()


def test_olderDatabaseKeepsItsEpochWhenItHoldsEveryLastMessage(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    olderDatabase(path, {"alpha": [1, 2, 3]}, {"alpha": 3})
    opened = HistoryStore(str(path), reactor).open()
    assert not opened.renumbered and opened.epoch == "e0123456789abcde"
    assert opened.lastMessages()["alpha"]["seq"] == 3


def test_olderDatabaseMissingALastMessageIsANewEpoch(tmp_path: Path) -> None:
    """
    An older hub kept no deployment's last message beyond pruning: when one
    is gone, nothing the board could answer with is that seq's message.
    """
    path = tmp_path / "old.db"
    olderDatabase(path, {"alpha": [1, 2, 3]}, {"alpha": 3, "bravo": 9})
    opened = HistoryStore(str(path), reactor).open()
    assert opened.renumbered and opened.epoch != "e0123456789abcde"
    assert opened.lastByName() == {"alpha": 3, "bravo": 9}
