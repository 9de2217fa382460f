"""
How much a client has left unread, from Twisted's own flow control.

The transport buffers what the socket will not take yet and pauses its
producer once that buffer passes C{transport.bufferSize}; it resumes it when
the buffer is empty again.  While paused, the hub counts what it writes on
top: that is the backlog a slow client builds up, and the hub drops the client
before it passes the configured limit.  No queue of our own, and the memory a
client can cost is bounded by the limit.
"""

from __future__ import annotations

from zope.interface import implementer
from twisted.internet.interfaces import IPushProducer


@implementer(IPushProducer)
class SendWindow:
    """
    Registered as the streaming producer of one client's transport.

    @ivar paused: the transport's buffer is over its high-water mark.
    @ivar unsent: bytes written since then, plus the buffer size the
        transport had already accepted when it paused us; an upper bound on
        what the client has not read.
    """

    # one per client
    __slots__ = ("_bufferSize", "paused", "unsent")

    def __init__(self, bufferSize: int) -> None:
        self._bufferSize = bufferSize
        self.paused = False
        self.unsent = 0

    def pauseProducing(self) -> None:
        # Twisted calls this on every write while the buffer is full, not
        # only on the first: count from the first one.
        if not self.paused:
            self.paused = True
            self.unsent = self._bufferSize

    def resumeProducing(self) -> None:
        self.paused = False
        self.unsent = 0

    def stopProducing(self) -> None:
        self.paused = True

    def admit(self, size: int, limit: int) -> bool:
        """
        Whether C{size} more bytes may be written without passing C{limit}.
        """
        if not self.paused:
            return True
        if self.unsent + size > limit:
            return False
        self.unsent += size
        return True
