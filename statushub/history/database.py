"""
The history's SQLite database: its schema (and what an older hub's
database gains when it is opened), what it holds when opened, and the
marker that says whether the hub that used it last closed it cleanly.

A hub marks the database in use, durably, before it numbers anything, and
clears the mark once everything it numbered is written.  A database still
marked when it is opened was left by a hub that was killed (or crashed) or
lost writes: messages it sent may be missing, and their seqs could be given
again to other messages, so numbering goes on under a new epoch.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import sqlite3
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any, Optional

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY,
    deployment TEXT NOT NULL,
    seq INTEGER NOT NULL,
    time REAL NOT NULL,
    body TEXT NOT NULL,
    stamped_ms INTEGER
);
-- the last seq of every deployment ever seen, and that message: they
-- outlive pruning, so that seq never goes back, a restarted hub answers
-- with the message it last sent, and they say which names have a history
CREATE TABLE IF NOT EXISTS counters (
    deployment TEXT PRIMARY KEY,
    last INTEGER NOT NULL,
    body TEXT
);
"""

# columns added since the first release of the schema: (table, column,
# declaration, what fills it in the rows already there)
MIGRATIONS = (
    # the message's own timestamp (milliseconds since the epoch), for
    # reads by time: C{time} is when it was written, for pruning
    ("messages", "stamped_ms", "INTEGER",
     "UPDATE messages SET stamped_ms = CAST(round(coalesce("
     "julianday(json_extract(body, '$.timestamp')), julianday(time, 'unixepoch'))"
     " * 86400000 - 210866760000000) AS INTEGER) WHERE stamped_ms IS NULL"),
    # each deployment's last message, where it is still kept (where it is
    # not, L{claimDatabase} starts a new epoch)
    ("counters", "body", "TEXT",
     "UPDATE counters SET body = (SELECT m.body FROM messages AS m "
     "WHERE m.deployment = counters.deployment AND m.seq = counters.last) WHERE body IS NULL"),
)

# meta key of the mark a hub sets while it uses the database: "open" while
# it runs, "lost" when it stopped after a write failed
IN_USE = "in_use"

INDEXES = """
CREATE UNIQUE INDEX IF NOT EXISTS messages_by_deployment ON messages (deployment, seq);
CREATE INDEX IF NOT EXISTS messages_by_time ON messages (time);
CREATE INDEX IF NOT EXISTS messages_by_stamp ON messages (deployment, stamped_ms);
"""

# the picture of no deployment is filed under this (never a deployment name)
NO_DEPLOYMENT = ""


@dataclass(frozen=True)
class Opened:
    """
    What a database holds when it is opened: its epoch, and the last seq
    and last message of every deployment (L{NO_DEPLOYMENT} for the picture
    of none).

    @ivar new: whether the database was created by this open.
    @ivar bodies: each deployment's last message (JSON text), L{None} where
        an older hub did not keep it and it has been pruned.
    @ivar inUse: the mark the last hub left: L{None} (closed cleanly),
        C{"open"} (never closed: killed, or it crashed) or C{"lost"} (a
        write failed).
    @ivar renumbered: why L{claimDatabase} started a new epoch, or L{None}.
    """

    epoch: str
    last: dict[str, int]
    new: bool
    bodies: dict[str, Optional[str]]
    inUse: Optional[str] = None
    renumbered: Optional[str] = None

    def lastByName(self) -> dict[Optional[str], int]:
        """
        C{last}, the picture of no deployment under L{None} (as
        L{statushub.numbering.PersistentNumbering} takes it).
        """
        return {_name(k): v for k, v in self.last.items()}

    def lastMessages(self) -> dict[Optional[str], dict[str, Any]]:
        """
        The last message of every deployment, as it was sent, the picture
        of no deployment under L{None} (as L{statushub.status.StatusBoard}
        takes them).
        """
        messages = {}
        for key, body in self.bodies.items():
            if body is not None:
                try:
                    messages[_name(key)] = json.loads(body)
                except ValueError:
                    pass  # never a body the store wrote
        return messages


def keyOf(deployment: Optional[str]) -> str:
    """
    What C{deployment} is filed under (L{NO_DEPLOYMENT} for L{None}).
    """
    return NO_DEPLOYMENT if deployment is None else deployment


def _name(key: str) -> Optional[str]:
    return None if key == NO_DEPLOYMENT else key


def _migrate(connection: sqlite3.Connection) -> None:
    """
    Add what a database made by an older hub lacks, filling it in for the
    rows it holds, in one transaction.
    """
    with connection:
        connection.execute("BEGIN IMMEDIATE")
        for table, column, declaration, fill in MIGRATIONS:
            columns = {row[1] for row in connection.execute(f"PRAGMA table_info({table})")}
            if column not in columns:
                connection.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")
                connection.execute(fill)


def stampedMilliseconds(message: dict, default: float) -> int:
    """
    A message's C{timestamp} (ISO 8601) in milliseconds since the epoch;
    C{default} (seconds) when it has none that can be read.
    """
    try:
        moment = datetime.fromisoformat(message["timestamp"])
    except (KeyError, TypeError, ValueError):
        return round(default * 1000)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return round(moment.timestamp() * 1000)


def afterMilliseconds(after: float) -> int:
    """
    The stamp (milliseconds) a message must be above to be stamped after
    C{after} (seconds): stamps are whole milliseconds, and C{after} may
    carry float noise (C{0.123} is C{0.12299999...}).
    """
    return math.floor(round(after * 1000, 3))


def openDatabase(path: str, timeout: float = 5.0) -> tuple[sqlite3.Connection, Opened]:
    """
    Open (creating when needed) the database at C{path}, its directory too,
    and read what it holds.

    @param timeout: how long a statement waits for another connection's
        lock before it fails (seconds).
    @raise sqlite3.Error: or L{OSError}: it cannot be opened.
    """
    if path != ":memory:":
        directory = os.path.dirname(os.path.abspath(path))
        os.makedirs(directory, exist_ok=True)
    connection = sqlite3.connect(
        path, timeout=timeout, check_same_thread=False, isolation_level=None
    )
    try:
        # WAL with NORMAL: a commit is not an fsync, and readers never wait
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        connection.executescript(SCHEMA)
        _migrate(connection)
        connection.executescript(INDEXES)
        row = connection.execute("SELECT value FROM meta WHERE key = 'epoch'").fetchone()
        new = row is None
        if new:
            epoch = secrets.token_hex(8)
            connection.execute("INSERT INTO meta (key, value) VALUES ('epoch', ?)", (epoch,))
        else:
            epoch = row[0]
        counters = connection.execute("SELECT deployment, last, body FROM counters").fetchall()
        mark = connection.execute(
            "SELECT value FROM meta WHERE key = ?", (IN_USE,)
        ).fetchone()
    except BaseException:
        connection.close()
        raise
    opened = Opened(
        epoch,
        {key: last for key, last, _ in counters},
        new,
        {key: body for key, _, body in counters},
        inUse=None if mark is None else mark[0],
    )
    return connection, opened


def claimDatabase(connection: sqlite3.Connection, opened: Opened) -> Opened:
    """
    Mark the database in use, durably (an fsync), before this hub numbers
    anything; start a new epoch when the database cannot prove that every
    seq it says was used is one it holds: the last hub did not close it
    cleanly, or it lacks a deployment's last message.  Seq goes on from
    the counters either way.

    @return: C{opened}, with the epoch to number under and why it changed.
    """
    reason = None
    if opened.inUse == "open":
        reason = "the hub that used it last did not close it (killed, or it crashed)"
    elif opened.inUse == "lost":
        reason = "the hub that used it last could not write every message"
    elif any(body is None for body in opened.bodies.values()):
        reason = "it does not hold every deployment's last message (an older hub's database)"
    epoch = secrets.token_hex(8) if reason else opened.epoch
    # this one commit waits for the disk: no seq is handed out before the
    # mark is there, whatever happens next (a power cut included)
    connection.execute("PRAGMA synchronous=FULL")
    try:
        with connection:
            connection.execute("BEGIN IMMEDIATE")
            if reason:
                connection.execute("UPDATE meta SET value = ? WHERE key = 'epoch'", (epoch,))
            connection.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?, 'open')", (IN_USE,)
            )
    finally:
        connection.execute("PRAGMA synchronous=NORMAL")
    return replace(opened, epoch=epoch, inUse="open", renumbered=reason)


def releaseDatabase(connection: sqlite3.Connection, complete: bool) -> None:
    """
    Say how this hub leaves the database: C{complete} (every message it
    numbered is written) clears the mark; otherwise it stays, as C{"lost"}.
    """
    with connection:
        connection.execute("BEGIN IMMEDIATE")
        if complete:
            connection.execute("DELETE FROM meta WHERE key = ?", (IN_USE,))
        else:
            connection.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?, 'lost')", (IN_USE,)
            )
