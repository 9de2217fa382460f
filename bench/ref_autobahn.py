"""
Reference 1: the textbook Autobahn broadcast, as Autobahn's own broadcast
example shows it (examples/twisted/websocket/broadcast/server.py): the factory
keeps a list of protocols, registered in onOpen and dropped in
connectionLost, and broadcast() calls sendMessage on each.  Nothing tuned.

    python bench/ref_autobahn.py     (driven by bench/fanout.py)
"""

from __future__ import annotations

from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from twisted.internet import reactor

from common import Controlled, encode, raiseFileLimit
from twisted_control import serveControl


class BroadcastServerProtocol(WebSocketServerProtocol):
    def onOpen(self):
        self.factory.register(self)

    def connectionLost(self, reason):
        WebSocketServerProtocol.connectionLost(self, reason)
        self.factory.unregister(self)


class BroadcastServerFactory(WebSocketServerFactory):
    protocol = BroadcastServerProtocol

    def __init__(self, url):
        WebSocketServerFactory.__init__(self, url)
        self.clients = []

    def register(self, client):
        if client not in self.clients:
            self.clients.append(client)

    def unregister(self, client):
        if client in self.clients:
            self.clients.remove(client)

    def broadcast(self, msg):
        for c in self.clients:
            c.sendMessage(msg.encode("utf8"))


def main() -> None:
    raiseFileLimit()
    factory = BroadcastServerFactory("ws://127.0.0.1")
    port = reactor.listenTCP(0, factory, interface="127.0.0.1")
    serveControl(
        Controlled(
            broadcast=lambda message: factory.broadcast(encode(message)),
            clients=lambda: len(factory.clients),
        ),
        port.getHost().port,
    )
    reactor.run()


if __name__ == "__main__":
    main()
