"""
Where C{seq} and C{epoch} come from: one counter per deployment, and the
epoch that says which numbering the counters belong to.

L{MemoryNumbering} keeps the counters in memory with an epoch random per
hub start, so a client that sees a new epoch knows the numbering restarted.
L{PersistentNumbering} starts from what the history's database holds
(L{statushub.history.store}), so both outlive the process: the epoch changes
only with a new database, or when the database cannot prove that it holds
every message numbered before (L{statushub.history.database.claimDatabase}).
"""

from __future__ import annotations

import secrets
from typing import Mapping, Optional

from zope.interface import implementer

from statushub.interfaces import IMessageNumbering


class NumberingClosed(Exception):
    """
    The numbering has ended (its history closed: the hub is stopping);
    nothing more may be numbered.
    """


@implementer(IMessageNumbering)
class MemoryNumbering:
    """
    Counters per deployment name (and one for the idle picture of no
    deployment, named L{None}), kept for the life of the process: a
    deployment torn down and deployed again goes on counting, so C{seq}
    never goes back within one C{epoch}.
    """

    def __init__(self, epoch: Optional[str] = None) -> None:
        self.epoch = epoch if epoch is not None else secrets.token_hex(8)
        self._last: dict[Optional[str], int] = {}

    def next(self, deployment: Optional[str]) -> int:
        seq = self._last.get(deployment, 0) + 1
        self._last[deployment] = seq
        return seq

    def last(self, deployment: Optional[str]) -> int:
        return self._last.get(deployment, 0)


@implementer(IMessageNumbering)
class PersistentNumbering(MemoryNumbering):
    """
    Counters that go on from the last seq of every deployment a database
    held when it was opened, under that database's epoch.  They count on in
    memory; the messages written to the database carry them to the next
    start.

    @param last: deployment name (L{None}: the picture of no deployment)
        to its last seq.
    """

    def __init__(self, epoch: str, last: Mapping[Optional[str], int]) -> None:
        super().__init__(epoch)
        self._last.update(last)
        self._closed = False

    def next(self, deployment: Optional[str]) -> int:
        if self._closed:
            raise NumberingClosed(deployment)
        return super().next(deployment)

    def close(self) -> None:
        """
        Number nothing more: the database is closing, and a message
        numbered now would not be kept, so its seq could be given again.
        """
        self._closed = True
