"""
Where C{seq} and C{epoch} come from: one counter per deployment, and the
epoch that says which numbering the counters belong to.

For now the counters live in memory and the epoch is random per hub start,
so a client that sees a new epoch knows the numbering restarted.  A history
kept on disk can take this module's place (L{IMessageNumbering}) and make
both outlive the process.
"""

from __future__ import annotations

import secrets
from typing import Optional

from zope.interface import implementer

from statushub.interfaces import IMessageNumbering


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
