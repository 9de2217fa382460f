"""
Every emitted status message, kept in an SQLite database.

All database work happens in one thread of the store's own, fed by a queue:
writes go in the order the messages were emitted, and a read queued after a
write sees it (the feed's resume relies on that).  The reactor thread only
puts things on the queue, so a slow disk never holds up a broadcast.  A
database that cannot be opened or written is logged and reported by
L{health}; the hub serves on without it.
"""

from __future__ import annotations

import json
import os
import queue
import secrets
import sqlite3
import threading
from dataclasses import dataclass
from typing import Any, Callable, Optional

from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger
from zope.interface import implementer

from statushub.historypage import HistoryUnavailable, Page
from statushub.interfaces import IHealthCheck, IHistory

__all__ = ["HistoryStore", "HistoryUnavailable", "Opened", "Page", "openDatabase"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY,
    deployment TEXT NOT NULL,
    seq INTEGER NOT NULL,
    time REAL NOT NULL,
    body TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS messages_by_deployment ON messages (deployment, seq);
CREATE INDEX IF NOT EXISTS messages_by_time ON messages (time);
-- the last seq of every deployment ever seen: it outlives pruning, so that
-- seq never goes back, and it says which names have a history at all
CREATE TABLE IF NOT EXISTS counters (deployment TEXT PRIMARY KEY, last INTEGER NOT NULL);
"""

# the picture of no deployment is filed under this (never a deployment name)
NO_DEPLOYMENT = ""
# prune every so many writes (fewer when fewer are kept) and at start: a
# DELETE per message would cost more than the insert
PRUNE_EVERY = 100

_STOP = object()


def _key(deployment: Optional[str]) -> str:
    return NO_DEPLOYMENT if deployment is None else deployment


@dataclass(frozen=True)
class Opened:
    """
    What a database holds when it is opened: its epoch, and the last seq of
    every deployment (L{NO_DEPLOYMENT} for the picture of none).

    @ivar new: whether the database was created by this open.
    """

    epoch: str
    last: dict[str, int]
    new: bool

    def lastByName(self) -> dict[Optional[str], int]:
        """
        C{last}, the picture of no deployment under L{None} (as
        L{statushub.numbering.PersistentNumbering} takes it).
        """
        return {(None if k == NO_DEPLOYMENT else k): v for k, v in self.last.items()}


def openDatabase(path: str) -> tuple[sqlite3.Connection, Opened]:
    """
    Open (creating when needed) the database at C{path}, its directory too.

    @raise sqlite3.Error: or L{OSError}: it cannot be opened.
    """
    if path != ":memory:":
        directory = os.path.dirname(os.path.abspath(path))
        os.makedirs(directory, exist_ok=True)
    connection = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    try:
        # WAL with NORMAL: a commit is not an fsync, and readers never wait
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        connection.executescript(SCHEMA)
        row = connection.execute("SELECT value FROM meta WHERE key = 'epoch'").fetchone()
        new = row is None
        if new:
            epoch = secrets.token_hex(8)
            connection.execute("INSERT INTO meta (key, value) VALUES ('epoch', ?)", (epoch,))
        else:
            epoch = row[0]
        last = dict(connection.execute("SELECT deployment, last FROM counters"))
    except BaseException:
        connection.close()
        raise
    return connection, Opened(epoch, last, new)


@implementer(IHistory, IHealthCheck)
class HistoryStore:
    """
    The L{IHistory} of one hub: keeps every message in SQLite, and reads
    them back.

    @param reactor: where results are handed back (C{callFromThread}).
    @param keepDays: messages older than this are pruned.
    @param maxMessages: at most this many messages are kept (the oldest go).
    @param clock: the time a message is filed under (seconds), read in the
        writer thread: only pruning by age uses it.
    """

    name = "history"
    log = Logger()

    def __init__(
        self,
        path: str,
        reactor: Any,
        keepDays: float = 7.0,
        maxMessages: int = 100_000,
        clock: Optional[Callable[[], float]] = None,
    ) -> None:
        import time

        self.path = path
        self._reactor = reactor
        self.keepDays = keepDays
        self.maxMessages = maxMessages
        self._now = clock if clock is not None else time.time
        self._queue: "queue.SimpleQueue[Any]" = queue.SimpleQueue()
        self._thread: Optional[threading.Thread] = None
        self._connection: Optional[sqlite3.Connection] = None
        self._problem: Optional[str] = None
        self._writes = 0
        self.opened: Optional[Opened] = None
        # fired by the writer thread once it has written everything and
        # closed the database
        self._whenStopped: Optional[Deferred[None]] = None

    # -- life cycle ----------------------------------------------------

    def open(self) -> Optional[Opened]:
        """
        Read what the database holds (creating it when needed), when the hub
        is built: the numbering needs it before anything is emitted.  The
        writer thread starts with L{start}: twistd may fork (daemonize) in
        between, and neither a thread nor an SQLite connection survives that.
        Messages handed over meanwhile wait in the queue.

        @return: what it holds, or L{None} when it cannot be opened (logged;
            L{health} says so).
        """
        try:
            connection, self.opened = openDatabase(self.path)
            connection.close()
        except (sqlite3.Error, OSError) as e:
            self._fail("cannot open", e)
            return None
        self.log.info(
            "history in {path} (epoch {epoch}{new})",
            path=self.path, epoch=self.opened.epoch,
            new=", a new database" if self.opened.new else "",
        )
        return self.opened

    def start(self) -> None:
        """
        Open the database for good and start the writer thread (after
        L{open} worked).
        """
        if self.opened is None or self._thread is not None:
            return
        try:
            self._connection, _ = openDatabase(self.path)
        except (sqlite3.Error, OSError) as e:
            self._fail("cannot open", e)
            self.opened = None
            return
        self._thread = threading.Thread(target=self._work, name="statushub-history", daemon=True)
        self._thread.start()
        self._queue.put(self._prune)

    def stop(self) -> "Deferred[None]":
        """
        Write what is queued, then close the database; nothing handed over
        after this call is kept or read.  Returns at once: the Deferred
        fires, in the reactor thread, when the writer thread is done.
        """
        thread, self._thread = self._thread, None
        if thread is None:
            return succeed(None)
        self.opened = None  # nothing more is queued or read
        self._whenStopped = Deferred()
        stopped = self._whenStopped
        self._queue.put(_STOP)
        return stopped

    def health(self) -> str:
        # a word for /healthz, which is open: the file and the error's text
        # are in the log only
        if self._problem is not None:
            return self._problem
        return "ok" if self.opened is not None else "off"

    def _fail(self, problem: str, error: BaseException) -> None:
        """
        C{problem} ("cannot open", "cannot write", "cannot prune") is
        /healthz's word; the log line names the file and the error.
        """
        if self._problem != problem:
            self.log.error(
                "history: {problem} {path}: {error}; the hub serves on without it",
                problem=problem, path=self.path, error=error,
            )
        self._problem = problem

    # -- the writer thread ---------------------------------------------

    def _work(self) -> None:
        connection = self._connection
        assert connection is not None
        while True:
            job = self._queue.get()
            batch: list[dict] = []
            # every message already queued goes in one transaction
            while isinstance(job, dict):
                batch.append(job)
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    job = None
                    break
            if batch:
                self._write(connection, batch)
            if job is _STOP:
                break
            if job is not None:
                try:
                    job()
                except Exception:
                    # the writer thread must outlive any one job
                    self.log.failure("history: a job failed")
        connection.close()
        self._connection = None
        if self._whenStopped is not None:
            self._reactor.callFromThread(self._whenStopped.callback, None)

    def _write(self, connection: sqlite3.Connection, batch: list[dict]) -> None:
        now = self._now()
        rows = []
        for m in batch:
            try:
                rows.append((_key(m.get("deployment")), int(m["seq"]), now,
                             json.dumps(m, separators=(",", ":"))))
            except (KeyError, TypeError, ValueError) as e:
                # never a message the board made; one bad one must not stop the rest
                self.log.error("history: not a status message, not kept: {error!r}", error=e)
        try:
            with connection:
                connection.execute("BEGIN")
                connection.executemany(
                    "INSERT OR REPLACE INTO messages (deployment, seq, time, body) "
                    "VALUES (?, ?, ?, ?)",
                    rows,
                )
                connection.executemany(
                    "INSERT INTO counters (deployment, last) VALUES (?, ?) "
                    "ON CONFLICT (deployment) DO UPDATE SET last = max(last, excluded.last)",
                    [(d, s) for d, s, _, _ in rows],
                )
        except sqlite3.Error as e:
            self._fail("cannot write", e)
            return
        if self._problem is not None:
            self.log.info("history: writing to {path} works again", path=self.path)
            self._problem = None
        self._writes += len(rows)
        if self._writes >= min(PRUNE_EVERY, self.maxMessages):
            self._prune()

    def _prune(self) -> None:
        self._writes = 0
        connection = self._connection
        if connection is None:
            return
        try:
            with connection:
                connection.execute("BEGIN")
                connection.execute(
                    "DELETE FROM messages WHERE time < ?",
                    (self._now() - self.keepDays * 86400,),
                )
                # the newest maxMessages stay: ids grow with every insert
                connection.execute(
                    "DELETE FROM messages WHERE id <= "
                    "(SELECT id FROM messages ORDER BY id DESC LIMIT 1 OFFSET ?)",
                    (self.maxMessages,),
                )
        except sqlite3.Error as e:
            self._fail("cannot prune", e)

    def _read(self, function: Callable[[sqlite3.Connection], Any]) -> "Deferred[Any]":
        """
        Run C{function(connection)} in the writer thread, after everything
        queued before; fire with its result in the reactor thread.
        """
        d: Deferred[Any] = Deferred()
        if self.opened is None:
            self._reactor.callLater(0, d.errback, HistoryUnavailable(self.health()))
            return d

        def job() -> None:
            try:
                result = function(self._connection)
            except Exception as e:
                self._reactor.callFromThread(d.errback, e)
            else:
                self._reactor.callFromThread(d.callback, result)

        self._queue.put(job)
        return d

    # -- IHistory ------------------------------------------------------

    def append(self, message: dict) -> None:
        """
        Queue C{message} for writing; returns at once.
        """
        if self.opened is not None:
            self._queue.put(message)

    def page(
        self,
        deployment: Optional[str],
        since: int = 0,
        limit: int = 1000,
        after: Optional[float] = None,
    ) -> "Deferred[Page]":
        """
        Up to C{limit} kept messages of C{deployment} with a seq above
        C{since}, oldest first (after every message emitted so far is
        written).  C{after} is taken but not applied yet: every kept
        message counts.
        """
        key = _key(deployment)

        def read(connection: sqlite3.Connection) -> Page:
            counter = connection.execute(
                "SELECT last FROM counters WHERE deployment = ?", (key,)
            ).fetchone()
            first = connection.execute(
                "SELECT min(seq) FROM messages WHERE deployment = ?", (key,)
            ).fetchone()[0]
            bodies = [
                row[0]
                for row in connection.execute(
                    "SELECT body FROM messages WHERE deployment = ? AND seq > ? "
                    "ORDER BY seq LIMIT ?",
                    (key, since, limit),
                )
            ]
            return Page(first or 0, counter[0] if counter else 0, bodies)

        return self._read(read)

    def count(self) -> "Deferred[int]":
        return self._read(lambda c: c.execute("SELECT count(*) FROM messages").fetchone()[0])
