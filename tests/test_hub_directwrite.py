"""
writeFrame: straight to the socket when nothing is queued, through the
transport's buffer otherwise; order and flow control as with
transport.write().  Real loopback sockets in the test's reactor.
"""

from __future__ import annotations

from typing import Any

import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP4ServerEndpoint
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.testing import StringTransport

from statushub.hub.directwrite import writeFrame
from statushub.hub.sendwindow import SendWindow
from tests.waiting import waitUntil


class Sender(Protocol):
    def connectionMade(self) -> None:
        self.factory.connected.callback(self)


class Reader(Protocol):
    def __init__(self) -> None:
        self.received = bytearray()

    def dataReceived(self, data: bytes) -> None:
        self.received += data


async def connectedPair(cleanups: list) -> tuple[Any, Reader]:
    """
    A server-side transport (like a hub client's) and the reader at the
    other end.
    """
    factory = Factory.forProtocol(Sender)
    factory.connected = Deferred()
    port = await TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(factory)
    cleanups.append(port.stopListening)
    reader = await TCP4ClientEndpoint(
        reactor, "127.0.0.1", port.getHost().port
    ).connect(Factory.forProtocol(Reader))
    cleanups.append(reader.transport.loseConnection)
    sender = await factory.connected
    cleanups.append(sender.transport.loseConnection)
    return sender.transport, reader


def buffered(transport: Any) -> int:
    return len(transport.dataBuffer) - transport.offset + transport._tempDataLen


@pytest_twisted.ensureDeferred
async def test_idle_transport_sends_at_once():
    cleanups: list = []
    try:
        transport, reader = await connectedPair(cleanups)
        writeFrame(transport, b"frame")
        # nothing left for the reactor to do: not buffered, not a writer
        assert buffered(transport) == 0
        assert transport not in reactor.getWriters()
        await waitUntil(lambda: bytes(reader.received) == b"frame", what="frame")
    finally:
        for cleanup in cleanups:
            cleanup()


@pytest_twisted.ensureDeferred
async def test_queued_data_goes_first():
    cleanups: list = []
    try:
        transport, reader = await connectedPair(cleanups)
        transport.write(b"first,")  # buffered until the reactor runs
        writeFrame(transport, b"second")
        assert buffered(transport) == len(b"first,second")
        await waitUntil(
            lambda: bytes(reader.received) == b"first,second", what="both, in order"
        )
    finally:
        for cleanup in cleanups:
            cleanup()


@pytest_twisted.ensureDeferred
async def test_refused_bytes_are_buffered_with_flow_control():
    cleanups: list = []
    try:
        transport, reader = await connectedPair(cleanups)
        window = SendWindow(transport.bufferSize)
        transport.registerProducer(window, True)
        reader.transport.pauseProducing()  # the peer stops reading
        chunk = 16 * 1024
        sent = []
        # the kernel's buffers fill, then the transport's, which pauses the
        # producer: the point the hub's slow-client limit counts from
        for number in range(10_000):
            if window.paused:
                break
            frame = number.to_bytes(4, "big") * (chunk // 4)
            sent.append(frame)
            writeFrame(transport, frame)
        assert window.paused
        assert buffered(transport) > 0
        reader.transport.resumeProducing()
        expected = b"".join(sent)
        await waitUntil(
            lambda: len(reader.received) >= len(expected), timeout=30, what="every byte"
        )
        assert bytes(reader.received) == expected
        await waitUntil(lambda: not window.paused, what="producer resumed")
    finally:
        for cleanup in cleanups:
            cleanup()


def test_other_transports_get_write():
    transport = StringTransport()
    writeFrame(transport, b"frame")
    assert transport.value() == b"frame"
