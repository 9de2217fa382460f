"""
The history as a twistd service: opened when the hub is built, closed (what
is queued written first) when it stops, without holding up the reactor.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

from twisted.application.service import Service
from twisted.internet.defer import Deferred

from statushub.history.store import HistoryStore
from statushub.interfaces import IMessageNumbering
from statushub.numbering import MemoryNumbering, PersistentNumbering


class HistoryService(Service):
    """
    Starts the store's writer thread with the hub; stops it last.

    @ivar store: the L{statushub.interfaces.IHistory} the rest of the hub
        is given.
    @ivar numbering: the numbering that goes on from C{store}'s database:
        it ends when the store stops, so that nothing is numbered that the
        database would not keep.
    """

    def __init__(self, store: HistoryStore, numbering: Optional[PersistentNumbering] = None) -> None:
        self.store = store
        self.numbering = numbering

    def startService(self) -> None:
        super().startService()
        self.store.start()

    def stopService(self) -> "Deferred[None]":
        """
        Fire once everything queued is written and the database is closed.
        """
        super().stopService()
        if self.numbering is not None:
            self.numbering.close()
        return self.store.stop()


def historyFromConfig(
    section: Mapping[str, Any], reactor: Any
) -> tuple[Optional[HistoryService], IMessageNumbering]:
    """
    The history C{[history]} asks for, opened, and the numbering to use
    with it: the database's, or (history off, or a database that cannot be
    opened) one in memory.
    """
    if not section["enabled"]:
        return None, MemoryNumbering()
    store = HistoryStore(
        section["path"], reactor,
        keepDays=section["keep_days"], maxMessages=section["max_messages"],
    )
    opened = store.open()
    if opened is None:
        # serve on; /healthz and the log say why there is no history
        return HistoryService(store), MemoryNumbering()
    numbering = PersistentNumbering(opened.epoch, opened.lastByName())
    return HistoryService(store, numbering), numbering
