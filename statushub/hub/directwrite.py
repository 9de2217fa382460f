"""
Writing a frame to a client's socket at once when nothing is queued before it.

Twisted's C{transport.write()} never writes right away: it appends to the
transport's buffer and registers the socket for writing (an C{epoll_ctl}); a
later reactor iteration sends the bytes (C{doWrite}, under C{callWithLogger})
and unregisters the socket (another C{epoll_ctl}).  For one status message to
10,000 clients that is 20,000 C{epoll_ctl} calls and 10,000 trips through the
reactor's dispatch: profiled, most of a broadcast's cost (BENCHMARKS.md).
asyncio's transports try the socket first and buffer only what it refuses;
L{writeFrame} does the same for Twisted's TCP transport.

The shortcut is taken only for a plain (not TLS) Twisted TCP transport that is
open, not closing, and has nothing buffered, so the bytes go out in the order
they would have anyway.  Whatever the socket does not take goes through
C{transport.write()} as before: the transport's buffer, its flow control (the
producer pause that the hub's slow-client limit counts from), and its error
handling.  Any other transport (TLS, a test's C{StringTransport}, a Twisted
whose internals differ) simply gets C{transport.write()}.
"""

from __future__ import annotations

from twisted.internet import tcp
from twisted.internet.interfaces import ITransport


def writeFrame(transport: ITransport, data: bytes) -> None:
    """
    Like C{transport.write(data)}, sending at once what the socket accepts.
    """
    # Nothing queued: an open plain TCP transport with an empty buffer.
    # Twisted's FileDescriptor buffer fields are read with defaults that
    # mean "queued", so a transport without them takes the ordinary path.
    if (
        getattr(transport, "_tempDataLen", 1) == 0
        and isinstance(transport, tcp.Connection)
        and not transport.TLS
        and transport.connected
        and not transport.disconnecting
        and not transport._writeDisconnected
        and transport.offset == len(transport.dataBuffer)
    ):
        try:
            sent = transport.socket.send(data)
        except OSError:
            # EAGAIN: the kernel's buffer is full.  Anything else: the
            # connection is failing, and the transport meets the same error
            # on its next write and closes the usual way.
            sent = 0
        if sent == len(data):
            return
        data = data[sent:]
    transport.write(data)
