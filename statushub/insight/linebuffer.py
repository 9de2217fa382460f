"""
A node's log lines between the thread that reads its stream and the
reactor that sends them, kept to a rate.
"""

from __future__ import annotations

import threading

from twisted.internet.interfaces import IReactorTime

from statushub.engine import LogLine


class LineBuffer:
    """
    Lines read and not yet sent: filled by the reading thread, taken by the
    reactor.  A token bucket keeps a node to C{perSecond} lines a second
    (bursts up to a second's worth pass); lines beyond are counted, not
    kept, so the buffer holds at most about a second's worth.
    """

    def __init__(self, clock: IReactorTime, perSecond: int) -> None:
        self._clock = clock
        self._rate = float(perSecond)
        self._tokens = float(perSecond)
        self._last = clock.seconds()
        self._lock = threading.Lock()
        self._lines: list[LogLine] = []
        self._dropped = 0

    def add(self, line: LogLine) -> bool:
        """
        Keep C{line}, or count it left out.  From any thread.

        @return: whether a batch begins with it (the buffer was empty): the
            reactor should be told.
        """
        with self._lock:
            now = self._clock.seconds()
            self._tokens = min(self._rate, self._tokens + (now - self._last) * self._rate)
            self._last = now
            begins = not self._lines and not self._dropped
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                self._lines.append(line)
            else:
                self._dropped += 1
            return begins

    def take(self) -> tuple[list[LogLine], int]:
        """
        The lines kept since the last call, and how many were left out.
        """
        with self._lock:
            lines, dropped = self._lines, self._dropped
            self._lines, self._dropped = [], 0
            return lines, dropped
