"""
The hub on real loopback sockets, in the test's reactor: thread safety,
slow readers, and the guards in front of the feed and the API.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
import pytest_twisted
import treq
from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP4ServerEndpoint

from statushub import config as configuration
from statushub.hub import StatusHubFactory
from statushub.status import StatusBoard
from statushub.web.site import makeSite
from tests.waiting import waitUntil
from tests.wsclient import connectFeed


class LiveHub:
    def __init__(self, board: StatusBoard, hub: StatusHubFactory, port: Any) -> None:
        self.board = board
        self.hub = hub
        self.port = port
        number = port.getHost().port
        self.url = f"http://127.0.0.1:{number}"
        self.wsUrl = f"ws://127.0.0.1:{number}/ws/status"


async def startHub(**serverKeys: Any) -> LiveHub:
    config = configuration.defaults()
    for key, value in serverKeys.items():
        if key in config["server"]:
            config.override("server", key, value)
        else:
            config.override("feed", key, value)
    board = StatusBoard(reactor)
    hub = StatusHubFactory(
        board,
        reactor,
        maxSendBuffer=config["feed"]["max_send_buffer"],
        maxMessageSize=config["feed"]["max_message_size"],
    )
    board.addSink(hub)
    site = makeSite(board, hub, config)
    port = await TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(site)
    return LiveHub(board, hub, port)


@pytest.fixture
def liveHubs():
    hubs: list[LiveHub] = []
    yield hubs
    for live in hubs:
        for client in live.hub:
            client.dropConnection(abort=True)
        pytest_twisted.blockon(live.port.stopListening())


@pytest_twisted.ensureDeferred
async def test_broadcasts_from_many_threads_while_clients_come_and_go(liveHubs) -> None:
    live = await startHub()
    liveHubs.append(live)
    steady = [await connectFeed(live.wsUrl) for _ in range(5)]
    await waitUntil(lambda: len(live.hub) == 5)

    threads, perThread = 8, 50
    start = threading.Barrier(threads)

    def broadcaster(thread: int) -> None:
        start.wait()
        for i in range(perThread):
            live.hub.broadcast({"type": "status_update", "thread": thread, "i": i})

    workers = [threading.Thread(target=broadcaster, args=(t,)) for t in range(threads)]
    for worker in workers:
        worker.start()
    # clients come and go while the threads broadcast
    for _ in range(10):
        passing = await connectFeed(live.wsUrl)
        await passing.close()

    total = threads * perThread
    for client in steady:
        await waitUntil(
            lambda: len(client.messages) == 1 + total,
            timeout=30,
            what="every broadcast to reach every client",
        )
    for worker in workers:
        worker.join()

    orders = [[(m["thread"], m["i"]) for m in c.messages[1:]] for c in steady]
    # every client saw the same order, and each thread's messages in the
    # order it sent them
    assert all(order == orders[0] for order in orders)
    for thread in range(threads):
        assert [i for t, i in orders[0] if t == thread] == list(range(perThread))
    await waitUntil(lambda: len(live.hub) == 5, what="passing clients to be unregistered")


class StalledClientProtocol(WebSocketClientProtocol):
    """
    Completes the handshake, then stops reading from its socket.
    """

    def onOpen(self) -> None:
        self.transport.pauseProducing()
        self.factory.opened.callback(self)


@pytest_twisted.ensureDeferred
async def test_client_that_stops_reading_is_cut_off_and_others_still_receive(
    liveHubs,
) -> None:
    live = await startHub(max_send_buffer=256 * 1024)
    liveHubs.append(live)
    reader = await connectFeed(live.wsUrl)

    factory = WebSocketClientFactory(live.wsUrl)
    factory.protocol = StalledClientProtocol
    factory.opened = Deferred()
    await TCP4ClientEndpoint(reactor, "127.0.0.1", live.port.getHost().port).connect(factory)
    stalled = await factory.opened
    await waitUntil(lambda: len(live.hub) == 2)
    [stalledOnServer] = [c for c in live.hub if c.transport.getPeer().port ==
                         stalled.transport.getHost().port]

    # 64 KiB messages: the kernel's socket buffers fill first, then the
    # transport's, then the hub's limit is reached
    pad = "x" * 65536
    sent = 0
    while stalledOnServer in live.hub:
        assert sent < 2000, "the stalled client was never dropped"
        live.hub.broadcast({"type": "status_update", "n": sent, "pad": pad})
        sent += 1
        # let the reader keep up, as a healthy client would
        await waitUntil(lambda: len(reader.messages) == 1 + sent, timeout=30)

    assert reader.protocol.factory is not None and not reader.closed
    assert [m["n"] for m in reader.messages[1:]] == list(range(sent))
    # the hub never held more for it than the limit allows
    assert stalledOnServer.window.unsent <= 256 * 1024
    await waitUntil(
        lambda: not stalledOnServer.transport.connected, timeout=15,
        what="the stalled connection to be closed",
    )
    stalled.transport.abortConnection()


@pytest_twisted.ensureDeferred
async def test_token_guards_api_and_feed(liveHubs) -> None:
    live = await startHub(token="s3cret")
    liveHubs.append(live)

    refused = await treq.get(live.url + "/api/status")
    assert refused.code == 401
    assert "token" in (await refused.json())["error"]
    wrong = await treq.get(live.url + "/api/status", headers={"Authorization": "Bearer nope"})
    assert wrong.code == 401
    byHeader = await treq.get(
        live.url + "/api/status", headers={"Authorization": "Bearer s3cret"}
    )
    assert byHeader.code == 200
    assert (await byHeader.json())["type"] == "status_update"
    byQuery = await treq.get(live.url + "/api/status?token=s3cret")
    assert byQuery.code == 200
    health = await treq.get(live.url + "/healthz")
    assert health.code == 200

    with pytest.raises(ConnectionError):
        await connectFeed(live.wsUrl)
    client = await connectFeed(live.wsUrl + "?token=s3cret")
    await client.waitFor(lambda m: m["seq"] == 0)
    client2 = await connectFeed(live.wsUrl, token="s3cret")
    await client2.waitFor(lambda m: m["seq"] == 0)
    await client.close()
    await client2.close()


@pytest_twisted.ensureDeferred
async def test_foreign_origins_are_refused_unless_allowed(liveHubs) -> None:
    live = await startHub(allowed_origins=["http://dash.example"])
    liveHubs.append(live)
    own = live.url
    for origin in [own, "http://dash.example", None]:
        client = await connectFeed(live.wsUrl, origin=origin)
        await client.waitFor(lambda m: m["seq"] == 0)
        await client.close()
    with pytest.raises(ConnectionError):
        await connectFeed(live.wsUrl, origin="http://evil.example")


@pytest_twisted.ensureDeferred
async def test_api_answers_json(liveHubs) -> None:
    live = await startHub()
    liveHubs.append(live)
    status = await treq.get(live.url + "/api/status")
    assert status.headers.getRawHeaders("content-type") == ["application/json"]
    body = await status.json()
    assert body["deployStatus"] == "idle" and body["nodeStatuses"] == []
    missing = await treq.get(live.url + "/api/nothing")
    assert missing.code == 404
    assert "error" in await missing.json()
    page = await treq.get(live.url + "/")
    assert page.code == 200
    assert b"statushub" in await page.content()
