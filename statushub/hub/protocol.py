"""
One connected feed client.
"""

from __future__ import annotations

import json
import re
from typing import Optional

from autobahn.twisted.websocket import WebSocketServerProtocol
from autobahn.websocket.types import ConnectionDeny, ConnectionRequest

from statushub.hub import closecodes
from statushub.hub.sendwindow import SendWindow
from statushub.names import SAFE_NAME


#: a seq as a client sends it back: ASCII digits (str.isdigit() takes "²",
#: which int() refuses), small enough for SQLite's integers
SEQ = re.compile(r"[0-9]{1,18}")


class StatusProtocol(WebSocketServerProtocol):
    """
    Registers with the hub once the handshake is done, unregisters on every
    way the connection can end.  Clients mostly listen; the one message they
    may send is C{{"type": "get_status"}}, answered with the current
    snapshot again.

    @ivar subscription: the deployment this client follows
        (C{?deployment=NAME}), or L{None} for every deployment.
    @ivar window: this client's share of Twisted's flow control.
    @ivar pingSentAt: when the oldest unanswered server ping went out, or
        L{None}.
    """

    subscription: Optional[str] = None
    # (since, epoch) of C{?since=SEQ&epoch=E}: resume after SEQ
    resumeFrom: Optional[tuple[int, str]] = None
    window: Optional[SendWindow] = None
    pingSentAt: Optional[float] = None

    # Autobahn copies its options from the factory at each connection, then
    # pretty-prints all of them for a debug line, logged or not: a third of
    # the hub's CPU while thousands of clients reconnect at once.  The hub
    # copies them itself, so Autobahn finds nothing to copy or print.
    CONFIG_ATTRS = ()

    def onConnect(self, request: ConnectionRequest) -> None:
        names = request.params.get("deployment")
        if not names:
            return None
        since, epoch = request.params.get("since"), request.params.get("epoch")
        if since or epoch:
            if not (since and epoch and len(since) == len(epoch) == 1
                    and SEQ.fullmatch(since[0])):
                raise ConnectionDeny(
                    400, "since, epoch: give both, once each; since a whole number "
                    "(0-9, at most 18 digits)"
                )
            self.resumeFrom = (int(since[0]), epoch[0])
        if len(names) > 1:
            raise ConnectionDeny(400, "deployment: give one name, not several")
        if not SAFE_NAME.match(names[0]):
            raise ConnectionDeny(
                # cut: it goes back in the status line
                400, f"deployment: {names[0][:40]!r} is not a deployment name"
            )
        self.subscription = names[0]
        return None

    def connectionMade(self) -> None:
        for name in WebSocketServerProtocol.CONFIG_ATTRS:
            if not hasattr(self, name):
                setattr(self, name, getattr(self.factory, name))
        super().connectionMade()
        # Behind twisted.web, the HTTP channel is still the transport's
        # producer; the channel is done with this connection, so our window
        # takes its place and hears when the send buffer fills up.
        if getattr(self.transport, "producer", None) is not None:
            self.transport.unregisterProducer()
        self.window = SendWindow(getattr(self.transport, "bufferSize", 0))
        self.transport.registerProducer(self.window, True)

    def onOpen(self) -> None:
        self.factory.register(self)

    def onClose(self, wasClean: bool, code: Optional[int], reason: Optional[str]) -> None:
        self.factory.unregister(self)

    def connectionLost(self, reason) -> None:
        # onClose covers nearly every path; this one covers a drop that
        # Autobahn reports before the handshake or not at all.
        self.factory.unregister(self)
        super().connectionLost(reason)

    def onPong(self, payload: bytes) -> None:
        self.pingSentAt = None

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        # Any message also proves the client is alive.
        self.pingSentAt = None
        if isBinary:
            self.closeForBadMessage("binary messages are not accepted")
            return
        try:
            request = json.loads(payload)
        except ValueError:
            self.closeForBadMessage("message is not valid JSON")
            return
        if not isinstance(request, dict) or request.get("type") != "get_status":
            self.closeForBadMessage('the only accepted message is {"type": "get_status"}')
            return
        self.factory.sendCurrent(self)

    def closeForBadMessage(self, reason: str) -> None:
        self.sendClose(closecodes.BAD_MESSAGE, reason)

    def sendCloseFrame(self, code=None, reasonUtf8=None, isReply=False) -> None:
        # Every close goes through here: ours, Autobahn's on a protocol
        # error, the reply to the client's.  Once it is sent, nothing else
        # may be, so the hub forgets the client now, not at connectionLost.
        self.factory.unregister(self)
        metrics = self.factory.metrics
        if metrics is not None and self.state == self.STATE_OPEN and not isReply:
            reason = closecodes.DROP_REASONS.get(code) if code is not None else None
            if reason is not None:
                metrics.dropped(reason)  # a drop: the code says why
        super().sendCloseFrame(code, reasonUtf8, isReply)
