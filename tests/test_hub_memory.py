"""
What a feed connection costs and leaves behind, on real loopback sockets
through the real site (twisted.web's upgrade, Autobahn, the hub): nothing
of it is left for the cyclic garbage collector, whichever way it ends, so
that connections frozen out of the collector's sight (hub/freezer.py) are
still freed; and what an open client keeps is small.
"""

from __future__ import annotations

import gc
import json
import sys
import weakref
from contextlib import contextmanager
from typing import Any, Iterator

import pytest
import pytest_twisted
from autobahn.twisted.websocket import (
    WebSocketClientFactory,
    WebSocketClientProtocol,
    WebSocketServerProtocol,
)
from twisted.internet import reactor, tcp
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.web.http import HTTPChannel
from twisted.web.server import Request

from statushub.hub import StatusProtocol
from statushub.hub.freezer import ConnectionFreezer
from statushub.hub.keepalive import KeepAlive
from statushub.hub.protocol import HANDSHAKE_ONLY
from tests.memoryclient import MemoryClient
from tests.test_hub import makeHub
from tests.test_hub_sockets import LiveHub, startHub
from tests.waiting import waitUntil
from tests.wsclient import connectFeed

# the server side of a feed connection: what a frozen connection would leak
SERVER_SIDE = (StatusProtocol, tcp.Server, HTTPChannel, Request)


@pytest.fixture
def liveHub():
    hubs: list[LiveHub] = []

    async def start(**keys: Any) -> LiveHub:
        live = await startHub(**keys)
        hubs.append(live)
        return live

    yield start
    for live in hubs:
        for client in live.hub:
            client.dropConnection(abort=True)
        pytest_twisted.blockon(live.port.stopListening())


@contextmanager
def cyclicGCOff() -> Iterator[None]:
    """
    No cyclic collection meanwhile: an object that goes away went by
    reference counting.
    """
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def leftForTheCyclicGC(hub: Any, port: Any) -> list[str]:
    """
    The server-side objects of C{hub}'s connections (on C{port}) that only a
    cyclic collection would free now.  Other tests' objects may become
    garbage meanwhile: they are not counted.
    """
    site = getattr(port.factory, "wrappedFactory", port.factory)  # under TLS

    def ours(thing: Any) -> bool:
        if isinstance(thing, StatusProtocol):
            return thing.factory is hub
        if isinstance(thing, tcp.Server):
            return thing.server is port
        return getattr(thing, "site", None) is site

    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        gc.collect()
        return sorted({
            type(o).__name__ for o in gc.garbage if isinstance(o, SERVER_SIDE) and ours(o)
        })
    finally:
        gc.set_debug(0)
        gc.garbage.clear()


async def serverSideOf(live: LiveHub, count: int) -> list[weakref.ref]:
    await waitUntil(lambda: len(live.hub) == count, what="the clients to be registered")
    return [weakref.ref(client) for client in live.hub]


async def freed(refs: list[weakref.ref]) -> None:
    await waitUntil(
        lambda: all(ref() is None for ref in refs), timeout=15,
        what="the server side of the closed connections to be freed",
    )


@pytest_twisted.ensureDeferred
async def test_clients_that_close_or_vanish_leave_nothing_for_the_cyclic_gc(liveHub) -> None:
    live = await liveHub()
    with cyclicGCOff():
        closing = await connectFeed(live.wsUrl)
        vanishing = await connectFeed(live.wsUrl + "?deployment=demo")
        refs = await serverSideOf(live, 2)
        await closing.close()  # the close handshake
        vanishing.protocol.transport.abortConnection()  # no close frame: RST
        await freed(refs)
        assert leftForTheCyclicGC(live.hub, live.port) == []


@pytest_twisted.ensureDeferred
async def test_clients_the_hub_closes_leave_nothing_for_the_cyclic_gc(liveHub) -> None:
    live = await liveHub()
    with cyclicGCOff():
        bad = await connectFeed(live.wsUrl)
        refs = await serverSideOf(live, 1)
        bad.send(b"not json")  # closed by the hub with 4001
        await bad.waitForClose()
        assert bad.closeCode == 4001
        await freed(refs)
        assert leftForTheCyclicGC(live.hub, live.port) == []


class SilentClientProtocol(WebSocketClientProtocol):
    """
    Completes the handshake, then reads nothing: answers no ping.
    """

    def onOpen(self) -> None:
        self.transport.pauseProducing()
        self.factory.opened.callback(self)


@pytest_twisted.ensureDeferred
async def test_a_client_dropped_for_not_answering_leaves_nothing(liveHub) -> None:
    live = await liveHub()
    keepAlive = KeepAlive(live.hub, reactor, interval=0.1, timeout=0.2)
    with cyclicGCOff():
        factory = WebSocketClientFactory(live.wsUrl)
        factory.protocol = SilentClientProtocol
        factory.opened = Deferred()
        await TCP4ClientEndpoint(reactor, "127.0.0.1", live.port.getHost().port).connect(
            factory
        )
        silent = await factory.opened
        refs = await serverSideOf(live, 1)
        keepAlive.startService()
        try:
            await freed(refs)  # dropped (aborted) by the hub, then freed
        finally:
            keepAlive.stopService()
            silent.transport.abortConnection()
        assert leftForTheCyclicGC(live.hub, live.port) == []


@pytest_twisted.ensureDeferred
async def test_a_refused_handshake_leaves_nothing(liveHub) -> None:
    live = await liveHub()
    with cyclicGCOff():
        with pytest.raises(ConnectionError):
            # refused by the hub's onConnect, after twisted.web handed over
            await connectFeed(live.wsUrl + "?deployment=Not%20A%20Name")
        await waitUntil(
            lambda: not [o for o in gc.get_objects() if isinstance(o, StatusProtocol)
                         and o.factory is live.hub],
            what="the refused connection's protocol to be freed",
        )
        assert leftForTheCyclicGC(live.hub, live.port) == []


@pytest_twisted.ensureDeferred
async def test_frozen_connections_are_walked_by_no_collection_and_still_freed(
    liveHub,
) -> None:
    """
    The freezer with the real collector: a batch of real clients is frozen
    out of every collection, and freed when they leave all the same.
    """
    live = await liveHub()
    freezer = ConnectionFreezer(reactor, live.hub.__len__, batch=10)
    live.hub.freezer = freezer
    freezer.startService()
    try:
        await waitUntil(lambda: freezer.freezes == 1, what="the start-up freeze")
        clients = [await connectFeed(live.wsUrl) for _ in range(10)]
        refs = await serverSideOf(live, 10)
        await waitUntil(lambda: freezer.freezes == 2, what="the batch to be frozen")
        tracked = {id(o) for o in gc.get_objects()}  # what a full collection walks
        assert not [ref for ref in refs if id(ref()) in tracked]
        for client in clients:
            await client.close()
        del clients
        await freed(refs)
    finally:
        freezer.stopService()
        gc.unfreeze()  # the rest of the test session: as it was


# What an open client keeps.


def test_an_open_client_keeps_no_handshake_and_shares_the_options() -> None:
    board, hub = makeHub(maxMessageSize=1234)
    protocol = MemoryClient(hub).open().protocol
    kept = set(vars(protocol))
    assert not kept & HANDSHAKE_ONLY
    assert not kept & set(WebSocketServerProtocol.CONFIG_ATTRS)
    assert protocol.maxMessagePayloadSize == 1234
    # small enough for one of CPython's smallest dict tables (21 keys)
    assert len(kept) <= 21, sorted(kept)


def test_a_client_answering_pings_and_asking_keeps_working() -> None:
    board, hub = makeHub()
    client = MemoryClient(hub).open()
    protocol = client.protocol
    hub.sendPing(protocol)
    protocol.pingSentAt = 1.0
    client.pong()
    assert protocol.pingSentAt is None
    assert sys.getsizeof(vars(protocol)) <= sys.getsizeof(dict.fromkeys(range(21)))
    client.frames()
    client.send(json.dumps({"type": "get_status"}).encode())
    assert [m["seq"] for m in client.messages()] == [0]
    client.send("é".encode("latin-1"))  # invalid UTF-8: the validator is made on demand
    assert [opcode for opcode, _ in client.frames()] == [8]


def test_options_changed_later_reach_only_later_clients() -> None:
    board, hub = makeHub(maxMessageSize=1000)
    before = MemoryClient(hub, 1).open().protocol
    hub.setProtocolOptions(maxMessagePayloadSize=2000)
    after = MemoryClient(hub, 2).open().protocol
    assert (before.maxMessagePayloadSize, after.maxMessagePayloadSize) == (1000, 2000)
    assert isinstance(after, StatusProtocol)
    other = makeHub(maxMessageSize=3000)[1]
    assert MemoryClient(other, 3).open().protocol.maxMessagePayloadSize == 3000
    assert MemoryClient(hub, 4).open().protocol.maxMessagePayloadSize == 2000


@pytest_twisted.ensureDeferred
async def test_a_chopped_send_still_goes_out_in_order(liveHub) -> None:
    """
    Autobahn's queue for chopped and "sync" sends is made for the client
    that needs one (none of the hub's sends do).
    """
    live = await liveHub()
    client = await connectFeed(live.wsUrl)
    [server] = list(live.hub)
    frame = live.hub.prepareMessage(b'{"seq": 7}').payloadHybi
    server.sendData(frame, chopsize=3)
    await client.waitFor(lambda m: m.get("seq") == 7)
    await client.close()


# Twisted's ssl: endpoint hands pyOpenSSL its own key and certificate objects
@pytest.mark.filterwarnings("ignore:Passing pyOpenSSL:DeprecationWarning")
@pytest_twisted.ensureDeferred
async def test_a_tls_client_leaves_nothing_for_the_cyclic_gc(tmp_path) -> None:
    from twisted.internet.endpoints import quoteStringArgument, serverFromString
    from twisted.internet.ssl import Certificate

    from statushub import config as configuration
    from statushub.hub import StatusHubFactory
    from statushub.status import StatusBoard
    from statushub.web.site import makeSite
    from tests.test_tls import throwawayCertificate

    keyPath, certPath = throwawayCertificate(tmp_path)
    board = StatusBoard(reactor)
    hub = StatusHubFactory(board, reactor)
    board.addSink(hub)
    endpoint = serverFromString(
        reactor,
        "ssl:0:interface=127.0.0.1"
        f":privateKey={quoteStringArgument(str(keyPath))}"
        f":certKey={quoteStringArgument(str(certPath))}",
    )
    port = await endpoint.listen(makeSite(board, hub, configuration.defaults()))
    try:
        with cyclicGCOff():
            client = await connectFeed(
                f"wss://127.0.0.1:{port.getHost().port}/ws/status",
                trustRoot=Certificate.loadPEM(certPath.read_bytes()),
            )
            await client.waitFor(lambda m: m["seq"] == 0)
            refs = [weakref.ref(c) for c in hub]
            await client.close()
            await freed(refs)
            assert leftForTheCyclicGC(hub, port) == []
    finally:
        await port.stopListening()
