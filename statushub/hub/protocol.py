"""
One connected feed client.
"""

from __future__ import annotations

import json
import re
from collections import deque
from functools import cached_property
from typing import Any, Optional

from autobahn.twisted.websocket import WebSocketServerProtocol
from autobahn.websocket.types import ConnectionDeny, ConnectionRequest
from autobahn.websocket.utf8validator import Utf8Validator
from twisted.web.http import HTTPChannel

from statushub.hub import closecodes
from statushub.hub.sendwindow import SendWindow
from statushub.names import SAFE_NAME

# What Autobahn keeps of the opening handshake, read by nothing once the
# connection is open: about 1 KB a client, dropped then (see compact()).
HANDSHAKE_ONLY = frozenset(
    {
        "http_request_data",
        "http_response_data",
        "http_status_line",
        "http_headers",
        "http_request_uri",
        "http_request_path",
        "http_request_host",
        "http_request_params",
        "_wskey",
        "websocket_origin",
        "websocket_protocols",
        "websocket_extensions",
        # read by Autobahn's _onOpen (TLS details) and by WAMP sessions,
        # which this feed is not; the class says None from then on
        "_transport_details",
    }
)

# Autobahn state that holds the same value for every open client, until the
# handshake, a protocol error, a timeout or the close changes it (Autobahn
# then assigns it, and that client gets its own value back): read from the
# class, not kept per client.  Together with the above, the dict of an open
# client stays small enough for CPython's smaller table sizes.
SHARED_WHILE_OPEN: dict[str, Any] = {
    "_perMessageCompress": None,
    "trackedTimings": None,
    "websocket_protocol_in_use": None,
    "websocket_extensions_in_use": (),
    "send_queue": (),
    "openHandshakeTimeoutCall": None,
    "closeHandshakeTimeoutCall": None,
    "autoPingTimeoutCall": None,
    "autoPingPending": None,
    "autoPingPendingCall": None,
    "autoPingPendingSent": None,
    "autoPingPendingSeq": 0,
    "triggered": False,
    "wasOpenHandshakeTimeout": False,
    "wasServingFlashSocketPolicyFile": False,
    "wasServerConnectionDropTimeout": False,
    "wasMaxFramePayloadSizeExceeded": False,
    "wasMaxMessagePayloadSizeExceeded": False,
    "wasNotCleanReason": None,
    "wasCloseHandshakeTimeout": False,
    "wasClean": False,
    "closedByMe": False,
    "failedByMe": False,
    "droppedByMe": False,
    "localCloseCode": None,
    "localCloseReason": None,
    "remoteCloseCode": None,
    "remoteCloseReason": None,
}


def _sharedWhileOpen(name: str, value: Any) -> bool:
    if name not in SHARED_WHILE_OPEN:
        return False
    shared = SHARED_WHILE_OPEN[name]
    # the empty list and queue Autobahn makes read like the empty tuple
    return value is shared or (shared == () and not value)


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
    # the hub's CPU while thousands of clients reconnect at once.  The hub's
    # factory gives them to its protocol class instead (shared, not one
    # dict entry each per client), so Autobahn finds nothing to copy or
    # print.
    CONFIG_ATTRS = ()

    # once open (compact() drops the client's own)
    _transport_details = None

    @cached_property
    def utf8validator(self) -> Utf8Validator:
        # Made when the client first sends a text message, not for every
        # client that only listens (compact() drops Autobahn's).
        return Utf8Validator()

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
        # a protocol not made by the hub's factory has no options of its own
        for name in WebSocketServerProtocol.CONFIG_ATTRS:
            if not hasattr(self, name):
                setattr(self, name, getattr(self.factory, name))
        super().connectionMade()
        # Behind twisted.web, the HTTP channel is still the transport's
        # producer; the channel is done with this connection, so our window
        # takes its place and hears when the send buffer fills up.
        channel = getattr(self.transport, "producer", None)
        if channel is not None:
            self.transport.unregisterProducer()
            releaseChannel(channel)
        self.window = SendWindow(getattr(self.transport, "bufferSize", 0))
        self.transport.registerProducer(self.window, True)

    def onOpen(self) -> None:
        self.compact()
        self.factory.register(self)

    def compact(self) -> None:
        """
        Drop what only the opening handshake needed, and what the class
        holds for every open client (L{SHARED_WHILE_OPEN}); about 2.5 KB a
        client.  The rest is copied into a new dict, since a dict never
        shrinks by deletion.
        """
        self.__dict__ = {
            name: value
            for name, value in vars(self).items()
            if name not in HANDSHAKE_ONLY
            and not _sharedWhileOpen(name, value)
            # fresh (no message read yet): made again when one comes
            and name != "utf8validator"
        }

    def sendData(self, data: bytes, sync: bool = False, chopsize: Optional[int] = None) -> None:
        # Autobahn queues "sync" and chopped sends, which the hub never
        # makes; an empty queue for every client is 760 bytes, so the
        # client that needs one gets one here.
        if (sync or chopsize) and not isinstance(self.send_queue, deque):
            self.send_queue = deque()
        super().sendData(data, sync, chopsize)

    def onClose(self, wasClean: bool, code: Optional[int], reason: Optional[str]) -> None:
        self.factory.unregister(self)

    def connectionLost(self, reason) -> None:
        # onClose covers nearly every path; this one covers a drop that
        # Autobahn reports before the handshake or not at all.
        self.factory.unregister(self)
        super().connectionLost(reason)
        # Autobahn fires is_closed with the protocol itself: a cycle that
        # only the cyclic GC could free, and objects frozen out of its sight
        # (hub/freezer.py) are never freed that way.  Nothing waits on it
        # any more.
        closed = self.__dict__.get("is_closed")
        if closed is not None and closed.called and closed.result is self:
            closed.result = None

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


for _name, _value in SHARED_WHILE_OPEN.items():
    setattr(StatusProtocol, _name, _value)
del _name, _value


def releaseChannel(producer: Any) -> None:
    """
    Let twisted.web's HTTP channel of an upgraded connection go without the
    cyclic GC: the channel and its request refer to each other, and nothing
    else will ever finish that request (the WebSocket took its transport).
    Once the upgrade's render returns, both are freed by reference counting.

    @param producer: what the transport had as its producer: the channel,
        or over TLS the TLS layer's wrapper around it.
    """
    channel = getattr(producer, "_producer", producer)
    if isinstance(channel, HTTPChannel):
        channel.requests.clear()
