"""
How much Python the hub's send loop costs per client, apart from the
kernel: StatusHubFactory._send's checks and writeFrame on 10,000 stand-in
clients whose socket "send" is a C no-op (len), against a bare loop calling
the same no-op.  A warm-cache figure: the real loop also pays cache misses
on the clients' objects.

    .venv/bin/python bench/micro_sendloop.py
"""

from __future__ import annotations

import time

from twisted.internet import tcp

from statushub.hub.factory import STATE_OPEN, StatusHubFactory
from statushub.hub.sendwindow import SendWindow

CLIENTS = 10_000
FRAME = b"x" * 339


class NoOpSocket:
    __slots__ = ()
    send = staticmethod(len)


class Client:
    """What _send reads of a StatusProtocol."""


def standIn() -> Client:
    transport = object.__new__(tcp.Server)  # the fields writeFrame reads
    transport.TLS = False
    transport.connected = 1
    transport.disconnecting = False
    transport._writeDisconnected = False
    transport.offset = 0
    transport.dataBuffer = b""
    transport._tempDataLen = 0
    transport.socket = NoOpSocket()
    client = Client()
    client.state = STATE_OPEN
    client.window = SendWindow(65536)
    client.transport = transport
    return client


def main() -> None:
    hub = object.__new__(StatusHubFactory)
    hub.maxSendBuffer = 1 << 20
    clients = {standIn(): None for _ in range(CLIENTS)}

    def hubLoop() -> None:
        for client in list(clients):
            hub._send(client, FRAME)

    def bareLoop() -> None:
        for client in list(clients):
            client.transport.socket.send(FRAME)

    for loop in (hubLoop, bareLoop) * 3:
        started = time.perf_counter()
        for _ in range(20):
            loop()
        perClient = (time.perf_counter() - started) / 20 / CLIENTS * 1e6
        print(f"{loop.__name__}: {perClient:.3f} µs per client")


if __name__ == "__main__":
    main()
