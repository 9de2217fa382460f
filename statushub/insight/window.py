"""
How much a follower has left unread, from Twisted's own flow control, as
the status feed counts it (L{statushub.hub.sendwindow}), with one
difference: what a paused follower cannot take is left out, not written on
top, and it is told how many lines it missed once it reads again.

The transport pauses its producer once its buffer passes
C{transport.bufferSize}, and resumes it when the buffer is empty again.
While paused, messages are left out and counted; past C{limit} bytes left
out, the follower is too slow and is dropped.  No queue of our own: what a
follower costs is bounded by its transport's buffer and a count.
"""

from __future__ import annotations

from typing import Callable, Optional

from twisted.internet.interfaces import IPushProducer
from zope.interface import implementer


@implementer(IPushProducer)
class FollowerWindow:
    """
    Registered as the streaming producer of one follower's transport.

    @param write: writes bytes to the transport.
    @param gapFrame: the frame that tells of so many lines left out, or
        L{None} when the feed has nothing to say about it (stats).
    @param limit: bytes that may be left out before L{tooSlow} is called.
    @param tooSlow: drops the follower.
    @ivar paused: the transport's buffer is over its high-water mark.
    """

    def __init__(
        self,
        write: Callable[[bytes], None],
        gapFrame: Optional[Callable[[int], bytes]],
        limit: int,
        tooSlow: Callable[[], None],
    ) -> None:
        self._write = write
        self._gapFrame = gapFrame
        self.limit = limit
        self._tooSlow = tooSlow
        self.paused = False
        self.gone = False
        self.leftOutLines = 0
        self.leftOutBytes = 0

    def offer(self, frame: bytes, lines: int) -> None:
        """
        Write C{frame} (which tells of C{lines} lines), or leave it out.
        """
        if self.gone:
            return
        if not self.paused:
            self._write(frame)
            return
        self.leftOutLines += lines
        self.leftOutBytes += len(frame)
        if self.leftOutBytes > self.limit:
            self.gone = True
            self._tooSlow()

    def pauseProducing(self) -> None:
        self.paused = True

    def resumeProducing(self) -> None:
        self.paused = False
        if self.gone:
            return
        missed, self.leftOutLines, self.leftOutBytes = self.leftOutLines, 0, 0
        if missed and self._gapFrame is not None:
            self._write(self._gapFrame(missed))

    def stopProducing(self) -> None:
        self.paused = True
        self.gone = True
