"""
The control channel (see common.py) for the Twisted-based servers.
"""

from __future__ import annotations

from twisted.internet import reactor
from twisted.internet.protocol import Factory
from twisted.protocols.basic import LineReceiver

from common import Controlled


class ControlProtocol(LineReceiver):
    delimiter = b"\n"

    def lineReceived(self, line: bytes) -> None:
        answer = self.factory.controlled.handle(line.decode())
        if answer is None:
            self.transport.loseConnection()
            reactor.stop()
            return
        self.sendLine(answer.encode())


def serveControl(controlled: Controlled, wsPort: int) -> None:
    """
    Listen for the harness on an ephemeral loopback port and announce both
    ports on stdout.
    """
    factory = Factory.forProtocol(ControlProtocol)
    factory.controlled = controlled
    port = reactor.listenTCP(0, factory, interface="127.0.0.1")
    print(f"READY {wsPort} {port.getHost().port}", flush=True)
