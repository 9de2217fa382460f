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
import queue
import sqlite3
import threading
from typing import Any, Callable, Optional

from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger
from zope.interface import implementer

from statushub.history.database import (
    Opened,
    afterMilliseconds,
    claimDatabase,
    keyOf,
    openDatabase,
    releaseDatabase,
    stampedMilliseconds,
)
from statushub.historypage import HistoryUnavailable, Page
from statushub.interfaces import IHealthCheck, IHistory

__all__ = ["HistoryStore", "HistoryUnavailable", "Opened", "Page", "openDatabase"]

# prune every so many writes (fewer when fewer are kept) and at start: a
# DELETE per message would cost more than the insert
PRUNE_EVERY = 100

_STOP = object()


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
    @param lockTimeout: how long a write waits while another process holds
        the database before it fails (seconds); a failed write loses its
        messages, and the next hub to open the database starts a new epoch.
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
        lockTimeout: float = 5.0,
    ) -> None:
        import time

        self.path = path
        self.lockTimeout = lockTimeout
        self._reactor = reactor
        self.keepDays = keepDays
        self.maxMessages = maxMessages
        self._now = clock if clock is not None else time.time
        self._queue: "queue.SimpleQueue[Any]" = queue.SimpleQueue()
        self._thread: Optional[threading.Thread] = None
        self._connection: Optional[sqlite3.Connection] = None
        self._problem: Optional[str] = None
        self._writes = 0
        # a write failed: messages that were sent are not kept
        self._lost = False
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
            connection, opened = openDatabase(self.path, self.lockTimeout)
            try:
                self.opened = claimDatabase(connection, opened)
            finally:
                connection.close()
        except (sqlite3.Error, OSError) as e:
            self._fail("cannot open", e)
            return None
        if self.opened.renumbered:
            self.log.warn(
                "history: {path}: {reason}, so messages that were sent may be missing from "
                "it; numbering goes on under a new epoch {epoch} (was {previous})",
                path=self.path, reason=self.opened.renumbered, epoch=self.opened.epoch,
                previous=opened.epoch,
            )
        else:
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
            self._connection, _ = openDatabase(self.path, self.lockTimeout)
        except (sqlite3.Error, OSError) as e:
            self._fail("cannot open", e)
            self.opened = None
            return
        self._thread = threading.Thread(target=self._work, name="statushub-history", daemon=True)
        self._thread.start()
        self._queue.put(self._prune)

    def stop(self) -> "Deferred[None]":
        """
        Write what is queued, then close the database, marked closed
        cleanly unless a write failed; nothing handed over after this call
        is kept or read, so nothing may be numbered after it (see
        L{statushub.numbering.PersistentNumbering.close}).  Returns at once:
        the Deferred fires, in the reactor thread, when the writer thread is
        done.
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
        C{problem} ("cannot open", "cannot write", "cannot prune", "cannot
        close cleanly") is
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
                self._release(connection)
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

    def _release(self, connection: sqlite3.Connection) -> None:
        try:
            releaseDatabase(connection, complete=not self._lost)
        except sqlite3.Error as e:
            # the mark stays: the next hub starts a new epoch
            self._fail("cannot close cleanly", e)

    def _write(self, connection: sqlite3.Connection, batch: list[dict]) -> None:
        now = self._now()
        rows = []
        for m in batch:
            try:
                rows.append((keyOf(m.get("deployment")), int(m["seq"]), now,
                             json.dumps(m, separators=(",", ":")), stampedMilliseconds(m, now)))
            except (KeyError, TypeError, ValueError) as e:
                # never a message the board made; one bad one must not stop the rest
                self.log.error("history: not a status message, not kept: {error!r}", error=e)
        # each deployment's last message of the batch (they come in order)
        lastOf = {d: (d, seq, body) for d, seq, _, body, _ in rows}
        try:
            with connection:
                connection.execute("BEGIN")
                connection.executemany(
                    "INSERT OR REPLACE INTO messages (deployment, seq, time, body, stamped_ms) "
                    "VALUES (?, ?, ?, ?, ?)",
                    rows,
                )
                connection.executemany(
                    "INSERT INTO counters (deployment, last, body) VALUES (?, ?, ?) "
                    "ON CONFLICT (deployment) DO UPDATE SET last = excluded.last, "
                    "body = excluded.body WHERE excluded.last >= counters.last",
                    list(lastOf.values()),
                )
        except sqlite3.Error as e:
            self._lost = True
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
        C{since} and, with C{after} (POSIX seconds), stamped after that
        moment by their own C{timestamp}; oldest first (after every message
        emitted so far is written).
        """
        key = keyOf(deployment)
        if after is None:
            query = (
                "SELECT body FROM messages WHERE deployment = ? AND seq > ? "
                "ORDER BY seq LIMIT ?", (key, since, limit)
            )
        else:
            # by time first: an hour out of days of messages is read, not
            # every message of the deployment from seq SINCE on
            query = (
                "SELECT body FROM messages INDEXED BY messages_by_stamp "
                "WHERE deployment = ? AND stamped_ms > ? AND seq > ? ORDER BY seq LIMIT ?",
                (key, afterMilliseconds(after), since, limit),
            )

        def read(connection: sqlite3.Connection) -> Page:
            counter = connection.execute(
                "SELECT last FROM counters WHERE deployment = ?", (key,)
            ).fetchone()
            first = connection.execute(
                "SELECT min(seq) FROM messages WHERE deployment = ?", (key,)
            ).fetchone()[0]
            bodies = [row[0] for row in connection.execute(*query)]
            return Page(first or 0, counter[0] if counter else 0, bodies)

        return self._read(read)

    def count(self) -> "Deferred[int]":
        return self._read(lambda c: c.execute("SELECT count(*) FROM messages").fetchone()[0])
