"""
The hub: tracks the connected feed clients, indexed by what they follow, and
broadcasts each message to those that want it.
"""

from __future__ import annotations

import json
from time import perf_counter
from types import FunctionType
from typing import TYPE_CHECKING, Any, Iterator, Optional

from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from autobahn.websocket.protocol import WebSocketProtocol
from twisted.internet.interfaces import IReactorFromThreads, IReactorTime
from twisted.logger import Logger
from twisted.python import threadable
from zope.interface import implementer

from statushub.historypage import Page
from statushub.hub import closecodes
from statushub.hub.directwrite import writeFrame
from statushub.hub.freezer import ConnectionFreezer
from statushub.hub.protocol import StatusProtocol
from statushub.interfaces import IHistory, IStatusSink, IStatusSource

if TYPE_CHECKING:
    from statushub.metrics import FeedMetrics

STATE_OPEN = WebSocketProtocol.STATE_OPEN
# A server ping without payload: FIN + opcode 9, length 0 (RFC 6455 5.5.2),
# the same two bytes for every client.
PING_FRAME = bytes([0x80 | 0x9, 0])
# a client that missed more than this many messages gets the current
# picture instead of a replay
REPLAY_MAX = 1000


def encodeMessage(message: dict[str, Any]) -> bytes:
    """
    The JSON text of one status message, compact: it goes to every client.
    """
    return json.dumps(message, separators=(",", ":")).encode("utf-8")


@implementer(IStatusSink)
class StatusHubFactory(WebSocketServerFactory):
    """
    An Autobahn server factory that is also the set of its open connections.

    Clients are indexed by subscription: those of the unfiltered feed, and a
    set per deployment name.  A message is encoded and framed once, then the
    same bytes are written to the unfiltered clients and to that
    deployment's, and to no one else: a change costs its own watchers, not
    every client.  Nothing here waits for a client: a client's unread data
    sits in its own transport buffer, and a client whose buffer grows past
    C{maxSendBuffer} is disconnected.

    @param source: where the current pictures come from, for new clients.
    @param reactor: used to hand broadcasts from other threads to the reactor
        thread, and as the clock for keep-alive.
    @param metrics: where to count frames, broadcasts and drops; L{None}: no
        counting.
    @param history: where a client that resumes (C{?since=SEQ&epoch=E})
        finds what it missed; L{None}: every client gets the current
        picture.
    """

    protocol = StatusProtocol
    log = Logger()

    def __init__(
        self,
        source: IStatusSource,
        reactor: IReactorTime,
        maxSendBuffer: int = 1024 * 1024,
        maxMessageSize: int = 4096,
        metrics: Optional[FeedMetrics] = None,
        history: Optional[IHistory] = None,
    ) -> None:
        super().__init__(reactor=reactor)
        self.metrics = metrics
        self.setProtocolOptions(
            maxMessagePayloadSize=maxMessageSize,
            maxFramePayloadSize=maxMessageSize,
            # tell a client that breaks the protocol why, before dropping it
            failByDrop=False,
            # keep-alive is ours (KeepAlive): one timer for all clients
            autoPingInterval=0,
            # every client gets the same bytes, so no per-client compression
            perMessageCompressionAccept=lambda offers: None,
            # a GET without Upgrade is a 426, not Autobahn's status page: that
            # page had none of the hub's answer headers, its ?redirect=URL
            # sent anyone anywhere (303), and a ?after= not a number was an
            # unhandled ValueError
            webStatus=False,
        )
        self.maxSendBuffer = maxSendBuffer
        self._source = source
        # dicts keep insertion order: the oldest clients are served first
        self._clients: dict[StatusProtocol, None] = {}
        self._everything: dict[StatusProtocol, None] = {}
        self._watchers: dict[str, dict[StatusProtocol, None]] = {}
        # per deployment, the last message broadcast and its frame: the
        # snapshot a new client gets is framed once, not once per client
        self._frames: dict[Optional[str], tuple[dict[str, Any], bytes]] = {}
        self._history = history
        # clients whose replay is being read: the live frames of their
        # deployment wait here, with their seq, until it is sent
        self._resuming: dict[StatusProtocol, list[tuple[int, bytes]]] = {}
        # (options, the protocol class that carries them): buildProtocol
        self._optionsClass: Optional[tuple[dict[str, Any], type]] = None
        # told of every client that opens, to freeze them out of the
        # cyclic GC in batches (hub/freezer.py); set by the service tree
        self.freezer: Optional[ConnectionFreezer] = None

    def buildProtocol(self, addr: Any) -> StatusProtocol:
        """
        A protocol whose class carries this factory's WebSocket options,
        shared by all its connections instead of copied into each one.
        """
        options = {name: getattr(self, name) for name in WebSocketServerProtocol.CONFIG_ATTRS}
        shared = self._optionsClass
        if shared is None or shared[0] != options or shared[1].__base__ is not self.protocol:
            # the first connection, or the options changed: later
            # connections get the new ones, as they would from Autobahn
            base = self.protocol
            attributes = {
                # a function on a class would become a method of the client
                name: staticmethod(value) if isinstance(value, FunctionType) else value
                for name, value in options.items()
            }
            attributes.update(__module__=base.__module__, __qualname__=base.__qualname__)
            cls = type(base.__name__, (base,), attributes)
            shared = self._optionsClass = (options, cls)
        protocol = shared[1]()
        protocol.factory = self
        return protocol

    def __len__(self) -> int:
        return len(self._clients)

    def __iter__(self) -> Iterator[StatusProtocol]:
        return iter(list(self._clients))

    def __contains__(self, client: object) -> bool:
        return client in self._clients

    def _frame(self, message: dict[str, Any]) -> bytes:
        return self.prepareMessage(encodeMessage(message)).payloadHybi

    def _frameFor(self, message: dict[str, Any]) -> bytes:
        cached = self._frames.get(message.get("deployment"))
        if cached is not None and cached[0] is message:
            return cached[1]
        frame = self._frame(message)
        if message.get("deployment") is None:
            # the idle picture of no deployment, changed while not shown
            self._frames[None] = (message, frame)
        return frame

    def subscribers(self, deployment: Optional[str] = None) -> int:
        """
        How many clients follow C{deployment} alone (L{None}: how many
        follow every deployment).
        """
        if deployment is None:
            return len(self._everything)
        return len(self._watchers.get(deployment, ()))

    def register(self, client: StatusProtocol) -> None:
        """
        Add an open client and send it its snapshot at once, or, when it
        resumes, what it missed (read from the history first).
        """
        self._clients[client] = None
        if self.metrics is not None:
            self.metrics.opened()
        if self.freezer is not None:
            self.freezer.opened()
        if self._startResume(client):
            return
        self._subscribe(client)
        self._sendSnapshot(client)

    def _subscribe(self, client: StatusProtocol) -> None:
        name = client.subscription
        if name is None:
            self._everything[client] = None
        else:
            self._watchers.setdefault(name, {})[client] = None

    # -- resuming a feed -----------------------------------------------

    def _startResume(self, client: StatusProtocol) -> bool:
        """
        Begin the replay of what C{client} missed, if it asked and can have
        one: it follows one deployment, with the current epoch.

        @return: whether a replay is under way (the client is subscribed
            when it has been sent).
        """
        resume, name = client.resumeFrom, client.subscription
        if resume is None or name is None or self._history is None:
            return False
        since, epoch = resume
        if epoch != self._source.epoch:
            return False  # another numbering: the current picture
        last = self._source.current(name)["seq"]
        if since == last:
            self._subscribe(client)  # nothing missed: live from here
            return True
        if since > last:
            return False
        self._resuming[client] = []
        self._history.page(name, since, REPLAY_MAX).addBoth(
            lambda page: self._finishResume(client, since, page)
        )
        return True

    def _finishResume(self, client: StatusProtocol, since: int, page: Any) -> None:
        buffered = self._resuming.pop(client, None)
        if buffered is None or client not in self._clients:
            return  # gone meanwhile
        if client.state != STATE_OPEN:
            self.unregister(client)
            return
        self._subscribe(client)
        complete = (
            isinstance(page, Page)
            and page.last - since == len(page.bodies)
            and (not page.bodies or page.first <= since + 1)
        )
        if not complete:
            # pruned, too much, or unreadable: the current picture instead
            if not isinstance(page, Page):
                self.log.warn("resume: the history cannot be read: {why}", why=page)
            self._sendSnapshot(client)
            return
        for body in page.bodies:
            frame = self.prepareMessage(body.encode("utf-8")).payloadHybi
            self._send(client, frame)
            if self.metrics is not None:
                self.metrics.sent(len(frame))
        sent = since + len(page.bodies)
        for seq, frame in buffered:
            if seq > sent:  # what the replay already had is not sent twice
                self._send(client, frame)
                if self.metrics is not None:
                    self.metrics.sent(len(frame))

    def unregister(self, client: StatusProtocol) -> None:
        """
        Forget a client; harmless if it was never registered or already gone.
        """
        if self._clients.pop(client, self) is self:
            return
        self._resuming.pop(client, None)
        name = client.subscription
        if name is None:
            self._everything.pop(client, None)
            return
        watchers = self._watchers.get(name)
        if watchers is not None:
            watchers.pop(client, None)
            if not watchers:
                del self._watchers[name]

    def sendCurrent(self, client: StatusProtocol) -> None:
        """
        Send a registered client its snapshot again (its C{get_status}).
        """
        if client in self._clients:
            self._sendSnapshot(client)

    def _sendSnapshot(self, client: StatusProtocol) -> None:
        for message in self._source.snapshot(client.subscription):
            frame = self._frameFor(message)
            self._send(client, frame)
            if self.metrics is not None:
                self.metrics.sent(len(frame))

    def broadcast(self, message: dict[str, Any]) -> None:
        """
        Send C{message} to the clients of every deployment and to those of
        its own.  From a thread other than the reactor's, the call is handed
        to the reactor and returns at once; messages keep the order in which
        they reach the reactor.
        """
        if not threadable.isInIOThread():
            IReactorFromThreads(self.reactor).callFromThread(self.broadcast, message)
            return
        started = perf_counter()
        frame = self._frame(message)
        name = message.get("deployment")
        if name is not None and message.get("deployStatus") == "idle":
            # its last message: the deployment leaves the snapshot
            self._frames.pop(name, None)
        else:
            self._frames[name] = (message, frame)
        if self._resuming:
            for client, waiting in self._resuming.items():
                if client.subscription == name:
                    waiting.append((message["seq"], frame))
        for client in list(self._everything):
            self._send(client, frame)
        reached = len(self._everything)
        if name is not None:
            watchers = self._watchers.get(name)
            if watchers:
                for client in list(watchers):
                    self._send(client, frame)
                reached += len(watchers)
        if self.metrics is not None:
            # counted once per message, never per client: the clients still
            # registered are those it reached (_send forgets the others)
            self.metrics.broadcasted(reached, len(frame), perf_counter() - started)

    def _send(self, client: StatusProtocol, frame: bytes) -> None:
        # Runs once per client per message: kept to attribute reads and one
        # call on the common path (open, not paused, nothing queued).
        if client.state != STATE_OPEN:
            self.unregister(client)
            return
        window = client.window
        # admit() only has something to count while the transport is paused
        if (
            window is not None
            and window.paused
            and not window.admit(len(frame), self.maxSendBuffer)
        ):
            self.dropSlowClient(client)
            return
        writeFrame(client.transport, frame)

    def sendPing(self, client: StatusProtocol) -> None:
        """
        Ping one client the way a status frame goes out (L{writeFrame}): a
        round of pings to every client is then as cheap as a broadcast, and
        does not hold up the next one.
        """
        if client.state == STATE_OPEN:
            writeFrame(client.transport, PING_FRAME)

    def dropSlowClient(self, client: StatusProtocol) -> None:
        """
        Disconnect a client that does not read fast enough.  It is told why
        in the close frame; if it does not read that either, Autobahn's close
        handshake timeout drops the connection.
        """
        self.log.info(
            "dropping slow feed client {peer}: more than {limit} bytes unsent",
            peer=client.peer,
            limit=self.maxSendBuffer,
        )
        client.sendClose(
            closecodes.TOO_SLOW,
            f"client too slow: more than {self.maxSendBuffer} bytes left unread",
        )

    def dropUnresponsive(self, client: StatusProtocol, timeout: float) -> None:
        """
        Drop a client that did not answer a ping within C{timeout} seconds.
        There is no point in a close handshake with a peer that is not
        answering.
        """
        self.unregister(client)
        if self.metrics is not None:
            self.metrics.dropped("ping_timeout")
        self.log.info(
            "dropping feed client {peer}: no answer to ping within {timeout} s",
            peer=client.peer,
            timeout=timeout,
        )
        client.dropConnection(abort=True)
