"""
Feed clients in memory: a server-side L{StatusProtocol} on a
L{StringTransport}, with just enough of a WebSocket client to open it and read
what the hub sends.  For unit tests; the integration tests use real sockets.
"""

from __future__ import annotations

import json
import struct
from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport

from statushub.hub import StatusHubFactory, StatusProtocol

HANDSHAKE = (
    b"GET %s HTTP/1.1\r\n"
    b"Host: 127.0.0.1:8080\r\n"
    b"Upgrade: websocket\r\n"
    b"Connection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Sec-WebSocket-Version: 13\r\n"
    b"\r\n"
)


class MemoryClient:
    """
    One client of C{hub}, opened through a real handshake for C{path}
    (C{/ws/status?deployment=NAME} follows one deployment).
    """

    def __init__(
        self, hub: StatusHubFactory, port: int = 40000, path: str = "/ws/status"
    ) -> None:
        self.path = path
        self.transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", port))
        self.protocol: StatusProtocol = hub.buildProtocol(self.transport.getPeer())
        self.protocol.makeConnection(self.transport)
        self._buffer = b""

    def open(self) -> "MemoryClient":
        self.protocol.dataReceived(HANDSHAKE % self.path.encode("ascii"))
        response, _, rest = self.transport.value().partition(b"\r\n\r\n")
        assert response.startswith(b"HTTP/1.1 101"), response
        self.transport.clear()
        self._buffer = rest
        return self

    def frames(self) -> list[tuple[int, bytes]]:
        """
        Every complete frame the server wrote since the last call, as
        C{(opcode, payload)}.
        """
        self._buffer += self.transport.value()
        self.transport.clear()
        frames = []
        while len(self._buffer) >= 2:
            opcode = self._buffer[0] & 0x0F
            length = self._buffer[1] & 0x7F
            offset = 2
            if length == 126:
                (length,) = struct.unpack("!H", self._buffer[2:4])
                offset = 4
            elif length == 127:
                (length,) = struct.unpack("!Q", self._buffer[2:10])
                offset = 10
            if len(self._buffer) < offset + length:
                break
            frames.append((opcode, self._buffer[offset : offset + length]))
            self._buffer = self._buffer[offset + length :]
        return frames

    def messages(self) -> list[dict[str, Any]]:
        return [json.loads(payload) for opcode, payload in self.frames() if opcode == 1]

    def send(self, payload: bytes, opcode: int = 1) -> None:
        """
        Send one masked frame, as a client must.
        """
        mask = b"\x01\x02\x03\x04"
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        if len(payload) < 126:
            header = struct.pack("!BB", 0x80 | opcode, 0x80 | len(payload))
        elif len(payload) < 65536:
            header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, len(payload))
        else:
            header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, len(payload))
        self.protocol.dataReceived(header + mask + masked)

    def pong(self) -> None:
        self.send(b"", opcode=0xA)

    def disconnect(self) -> None:
        from twisted.internet.error import ConnectionDone
        from twisted.python.failure import Failure

        self.protocol.connectionLost(Failure(ConnectionDone()))
