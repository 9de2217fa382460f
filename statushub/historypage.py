"""
What a history read returns (a leaf module: every room that keeps or reads
the history, SQLite or Redis, shares these values).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Page:
    """
    Kept messages of one deployment after some seq, oldest first.

    @ivar first: the oldest seq kept (0: none kept); what came before it
        was pruned.
    @ivar last: the deployment's last seq (0: never seen).
    @ivar bodies: each message's JSON text.
    """

    first: int
    last: int
    bodies: list[str]


class HistoryUnavailable(Exception):
    """
    The history cannot be read now; the message says why.
    """
