"""
Reading the history by time: the SQLite store's C{page(..., after=)} (a real
database in a temporary directory), a database made by an older hub
migrated on open, and C{GET /api/deployments/NAME/history?after=TIME} served
on a loopback port and asked by a real HTTP client.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest_twisted
import treq
from twisted.internet import reactor
from twisted.internet.task import Clock
from twisted.web.resource import Resource
from twisted.web.server import Site

from statushub.history.store import HistoryStore
from statushub.numbering import PersistentNumbering
from statushub.status import HistorySink, NodeStatus, Picture, StatusBoard, isoTimestamp
from statushub.web.history import HistoryResource

# 2027-01-15T08:00:00Z
START = 1_800_000_000.0


def picture(name: str, status: str) -> Picture:
    return Picture(
        deployStatus="deployed", deployment=name,
        nodeStatuses=(NodeStatus("web", "c1", status),),
    )


def timedBoard(path: Path) -> tuple[HistoryStore, StatusBoard, Clock]:
    """
    A store on C{path} and a board whose clock the test moves: each message
    is stamped with the time the test chose.
    """
    store = HistoryStore(str(path), reactor)
    opened = store.open()
    assert opened is not None
    store.start()
    clock = Clock()
    clock.advance(START)
    board = StatusBoard(clock, PersistentNumbering(opened.epoch, opened.lastByName()))
    board.addSink(HistorySink(store))
    return store, board, clock


def everyMinute(board: StatusBoard, clock: Clock, name: str, count: int) -> None:
    """
    C{count} changes of C{name}, one a minute: the first at START.
    """
    for i in range(count):
        board.update(picture(name, "running" if i % 2 else "exited"))
        clock.advance(60)


def seqs(bodies: list[str]) -> list[int]:
    return [json.loads(b)["seq"] for b in bodies]


@pytest_twisted.ensureDeferred
async def test_pageAfterATime(tmp_path: Path) -> None:
    """
    Messages stamped after the time, by their own timestamp; the others'
    deployments are not mixed in; C{since} and C{limit} page through them.
    """
    store, board, clock = timedBoard(tmp_path / "h.db")
    try:
        everyMinute(board, clock, "alpha", 10)  # seq 1..10 at START + 0..9 min
        everyMinute(board, clock, "bravo", 3)
        after = START + 5 * 60  # the 6th message's own time: not after it
        page = await store.page("alpha", after=after)
        assert seqs(page.bodies) == [7, 8, 9, 10]
        assert (page.first, page.last) == (1, 10)
        assert seqs((await store.page("alpha", after=after - 0.001)).bodies) == [6, 7, 8, 9, 10]
        # page by page, as the dashboard reads a busy hour
        first = await store.page("alpha", after=START, limit=3)
        assert seqs(first.bodies) == [2, 3, 4]
        second = await store.page("alpha", since=4, after=START, limit=3)
        assert seqs(second.bodies) == [5, 6, 7]
        assert (await store.page("alpha", after=START + 3600)).bodies == []
        assert seqs((await store.page("bravo", after=START)).bodies) == [1, 2, 3]
    finally:
        await store.stop()


@pytest_twisted.ensureDeferred
async def test_pageAfterReadsByTheMessagesTimeNotTheWritersClock(tmp_path: Path) -> None:
    """
    A message is filed under the time it says it was emitted, whenever it
    happens to be written.
    """
    writerTime = [START + 86400.0]  # the writer thread's clock: a day later
    store = HistoryStore(str(tmp_path / "h.db"), reactor, clock=lambda: writerTime[0])
    store.open()
    store.start()
    try:
        for seq, minutes in ((1, 0), (2, 30), (3, 90)):
            store.append({"deployment": "alpha", "seq": seq,
                             "timestamp": isoTimestamp(START + minutes * 60)})
        page = await store.page("alpha", after=START + 3600)
        assert seqs(page.bodies) == [3]
    finally:
        await store.stop()


OLD_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE messages (
    id INTEGER PRIMARY KEY, deployment TEXT NOT NULL, seq INTEGER NOT NULL,
    time REAL NOT NULL, body TEXT NOT NULL
);
CREATE UNIQUE INDEX messages_by_deployment ON messages (deployment, seq);
CREATE INDEX messages_by_time ON messages (time);
CREATE TABLE counters (deployment TEXT PRIMARY KEY, last INTEGER NOT NULL);
"""


@pytest_twisted.ensureDeferred
async def test_olderDatabaseMigratedOnOpen(tmp_path: Path) -> None:
    """
    A database written before messages were filed by their own time gets
    the column on open, filled from the messages it holds; its epoch and
    counts stay.
    """
    path = tmp_path / "old.db"
    old = sqlite3.connect(path)
    old.executescript(OLD_SCHEMA)
    old.execute("INSERT INTO meta VALUES ('epoch', 'e0123456789abcde')")
    for seq in (1, 2, 3):
        message = {"deployment": "alpha", "seq": seq, "epoch": "e0123456789abcde",
                   "timestamp": isoTimestamp(START + seq * 600)}
        old.execute("INSERT INTO messages (deployment, seq, time, body) VALUES (?, ?, ?, ?)",
                    ("alpha", seq, START + 7200, json.dumps(message)))
    old.execute("INSERT INTO counters VALUES ('alpha', 3)")
    old.commit()
    old.close()

    store, board, clock = timedBoard(path)
    try:
        assert board.epoch == "e0123456789abcde"
        page = await store.page("alpha", after=START + 1200)  # the 2nd's own time
        assert seqs(page.bodies) == [3]
        clock.advance(3600)
        board.update(picture("alpha", "running"))
        page = await store.page("alpha", after=START + 1200)
        assert seqs(page.bodies) == [3, 4]
    finally:
        await store.stop()


class HistoryServer:
    """
    The history resource of one deployment on a loopback port, as the site
    mounts it.
    """

    def __init__(self, store: HistoryStore, name: str) -> None:
        root = Resource()
        root.putChild(b"history", HistoryResource(store, name, "e"))
        self.port = reactor.listenTCP(0, Site(root), interface="127.0.0.1")
        self.url = f"http://127.0.0.1:{self.port.getHost().port}/history"

    async def get(self, query: str) -> tuple[int, Any]:
        response = await treq.get(self.url + query)
        return response.code, json.loads(await response.content())


@pytest_twisted.ensureDeferred
async def test_apiAfter(tmp_path: Path) -> None:
    store, board, clock = timedBoard(tmp_path / "h.db")
    server = HistoryServer(store, "alpha")
    try:
        everyMinute(board, clock, "alpha", 10)
        code, body = await server.get("?after=" + isoTimestamp(START + 5 * 60))
        assert code == 200, body
        assert [m["seq"] for m in body["messages"]] == [7, 8, 9, 10]
        assert body["last"] == 10
        # another zone, the same moment; an unencoded "+" arrives as a space
        for moment in ("2027-01-15T09:05:00+01:00", "2027-01-15T09:05:00%2B01:00"):
            code, body = await server.get(f"?after={moment}&since=7&limit=2")
            assert code == 200, body
            assert [m["seq"] for m in body["messages"]] == [8, 9]
        for bad, says in (("yesterday", "not an ISO 8601 time"),
                          ("2027-01-15T08:00:00", "no time zone")):
            code, body = await server.get(f"?after={bad}")
            assert code == 400
            assert body["field"] == "after"
            assert says in body["error"] and bad in body["error"]
        code, body = await server.get("?after=2027-01-15T08:00:00Z&after=2027-01-15T08:00:00Z")
        assert code == 400 and body["field"] == "after"
    finally:
        await server.port.stopListening()
        await store.stop()
