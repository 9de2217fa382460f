"""
The hub in memory: the seed's test plan, keep-alive on a task.Clock, slow
and misbehaving clients, and every way a client can leave.
"""

from __future__ import annotations

import json
import struct

import pytest
from twisted.internet import reactor
from twisted.internet.task import Clock
from zope.interface.verify import verifyObject

from statushub.hub import StatusHubFactory, closecodes
from statushub.hub.keepalive import KeepAlive
from statushub.interfaces import IStatusSink, IStatusSource
from statushub.status import NodeStatus, Picture, StatusBoard
from tests.memoryclient import MemoryClient


def makeHub(**kwargs) -> tuple[StatusBoard, StatusHubFactory]:
    board = StatusBoard(Clock())
    hub = StatusHubFactory(board, reactor, **kwargs)
    board.addSink(hub)
    return board, hub


def deployed(n: int = 1, name: str = "demo") -> Picture:
    return Picture(
        deployStatus="deployed",
        deployment=name,
        nodeStatuses=tuple(
            NodeStatus(f"node{i}", f"c{i}", "running") for i in range(n)
        ),
    )


def closeFrame(client: MemoryClient) -> tuple[int, str]:
    [(opcode, payload)] = [f for f in client.frames() if f[0] == 8]
    (code,) = struct.unpack("!H", payload[:2])
    return code, payload[2:].decode("utf-8")


def test_interfaces() -> None:
    board, hub = makeHub()
    verifyObject(IStatusSink, hub)
    verifyObject(IStatusSource, board)


# The seed's test plan.


def test_registered_client_receives_broadcast() -> None:
    board, hub = makeHub()
    client = MemoryClient(hub).open()
    assert client.protocol in hub
    board.update(deployed())
    messages = client.messages()
    assert [m["deployStatus"] for m in messages] == ["idle", "deployed"]
    assert messages[1]["nodeStatuses"] == [
        {"nodeId": "node0", "containerId": "c0", "status": "running"}
    ]


def test_unregistered_client_receives_nothing() -> None:
    board, hub = makeHub()
    client = MemoryClient(hub).open()
    client.messages()
    hub.unregister(client.protocol)
    board.update(deployed())
    assert client.messages() == []
    assert len(hub) == 0


def test_every_client_receives_broadcast() -> None:
    board, hub = makeHub()
    clients = [MemoryClient(hub, port=40000 + i).open() for i in range(5)]
    board.update(deployed(2))
    for client in clients:
        assert [m["seq"] for m in client.messages()] == [0, 1]


def test_disconnected_client_is_unregistered() -> None:
    board, hub = makeHub()
    gone, staying = MemoryClient(hub, 1).open(), MemoryClient(hub, 2).open()
    gone.disconnect()
    assert gone.protocol not in hub
    assert staying.protocol in hub
    board.update(deployed())
    assert [m["seq"] for m in staying.messages()] == [0, 1]


# The picture a client gets.


def test_new_client_gets_current_picture_then_changes_only() -> None:
    board, hub = makeHub()
    board.update(deployed())
    client = MemoryClient(hub).open()
    [snapshot] = client.messages()
    assert snapshot["deployStatus"] == "deployed"
    assert snapshot["seq"] == 1
    board.update(deployed())  # no change, no message
    assert client.messages() == []
    board.update(Picture(deployStatus="tearing_down", deployment="demo"))
    assert [m["seq"] for m in client.messages()] == [2]


def test_idle_snapshot_shape() -> None:
    board, hub = makeHub()
    [snapshot] = MemoryClient(hub).open().messages()
    assert snapshot["type"] == "status_update"
    assert snapshot["deployStatus"] == "idle"
    assert snapshot["nodeStatuses"] == []
    assert snapshot["seq"] == 0
    assert snapshot["timestamp"].endswith("Z")


def test_a_client_has_every_option_of_the_factory() -> None:
    """
    The hub copies Autobahn's per-connection options itself (to skip the
    debug line Autobahn formats at every connection): none may be missed.
    """
    from autobahn.twisted.websocket import WebSocketServerProtocol

    board, hub = makeHub(maxMessageSize=1234)
    protocol = MemoryClient(hub).open().protocol
    assert WebSocketServerProtocol.CONFIG_ATTRS
    for name in WebSocketServerProtocol.CONFIG_ATTRS:
        assert getattr(protocol, name) == getattr(hub, name), name
    assert protocol.maxMessagePayloadSize == 1234


def test_get_status_is_answered_with_the_current_picture() -> None:
    board, hub = makeHub()
    client = MemoryClient(hub).open()
    board.update(deployed())
    client.messages()
    client.send(json.dumps({"type": "get_status"}).encode())
    [again] = client.messages()
    assert again["seq"] == 1
    assert client.protocol in hub


# Misbehaving clients are closed, alone.


@pytest.mark.parametrize(
    "payload, opcode, reason",
    [
        (b"{not json", 1, "not valid JSON"),
        (b'{"type": "subscribe"}', 1, "only accepted message"),
        (b"\x00\x01", 2, "binary"),
    ],
)
def test_bad_message_closes_only_that_client(payload, opcode, reason) -> None:
    board, hub = makeHub()
    bad, good = MemoryClient(hub, 1).open(), MemoryClient(hub, 2).open()
    bad.messages()
    bad.send(payload, opcode)
    code, text = closeFrame(bad)
    assert code == closecodes.BAD_MESSAGE
    assert reason in text
    assert bad.protocol not in hub
    board.update(deployed())
    assert [m["seq"] for m in good.messages()] == [0, 1]


def test_oversized_message_closes_only_that_client() -> None:
    board, hub = makeHub(maxMessageSize=64)
    big, good = MemoryClient(hub, 1).open(), MemoryClient(hub, 2).open()
    big.messages()
    big.send(b'{"type": "get_status", "pad": "' + b"x" * 100 + b'"}')
    code, _ = closeFrame(big)
    assert code == 1009  # message too big
    assert big.protocol not in hub
    assert good.protocol in hub


def test_slow_client_is_dropped_with_a_reason() -> None:
    board, hub = makeHub(maxSendBuffer=10_000)
    slow, fast = MemoryClient(hub, 1).open(), MemoryClient(hub, 2).open()
    slow.messages()
    fast.messages()
    for i in range(50):
        # the transport says its buffer is full on every write, as Twisted does
        slow.protocol.window.pauseProducing()
        board.update(deployed(i + 1))
    assert slow.protocol not in hub
    code, reason = closeFrame(slow)
    assert code == closecodes.TOO_SLOW
    assert "too slow" in reason and "10000" in reason
    assert [m["seq"] for m in fast.messages()] == list(range(1, 51))


def test_paused_client_that_catches_up_is_kept() -> None:
    board, hub = makeHub(maxSendBuffer=1024 * 1024)
    client = MemoryClient(hub).open()
    client.protocol.window.pauseProducing()
    board.update(deployed())
    client.protocol.window.resumeProducing()
    assert client.protocol.window.unsent == 0
    assert client.protocol in hub


# Keep-alive.


def test_silent_client_is_dropped_after_ping_timeout() -> None:
    board, hub = makeHub()
    clock = Clock()
    keepAlive = KeepAlive(hub, clock, interval=5, timeout=2)
    keepAlive.startService()
    silent, answering = MemoryClient(hub, 1).open(), MemoryClient(hub, 2).open()
    clock.advance(5)
    assert any(opcode == 9 for opcode, _ in silent.frames())  # pinged
    answering.pong()
    clock.advance(1.9)
    assert silent.protocol in hub
    clock.advance(0.1)
    assert silent.protocol not in hub
    assert silent.transport.disconnecting
    assert answering.protocol in hub
    keepAlive.stopService()
    assert clock.getDelayedCalls() == []


def test_client_answering_every_ping_stays() -> None:
    board, hub = makeHub()
    clock = Clock()
    keepAlive = KeepAlive(hub, clock, interval=1, timeout=3)
    keepAlive.startService()
    client = MemoryClient(hub).open()
    for _ in range(10):
        clock.advance(1)
        client.pong()
    assert client.protocol in hub
    keepAlive.stopService()


def test_timeout_longer_than_interval() -> None:
    board, hub = makeHub()
    clock = Clock()
    keepAlive = KeepAlive(hub, clock, interval=1, timeout=3.5)
    keepAlive.startService()
    client = MemoryClient(hub).open()
    clock.pump([1, 1, 1, 1])  # first ping at 1, unanswered for 3 s
    assert client.protocol in hub
    clock.advance(0.5)  # 3.5 s after the first ping
    assert client.protocol not in hub
    keepAlive.stopService()


def test_client_pings_are_answered() -> None:
    board, hub = makeHub()
    client = MemoryClient(hub).open()
    client.messages()
    client.send(b"hello", opcode=9)
    assert (0xA, b"hello") in client.frames()


# No way of leaving leaks a protocol.


def test_no_path_leaks_a_protocol() -> None:
    board, hub = makeHub(maxSendBuffer=1000)
    clock = Clock()
    keepAlive = KeepAlive(hub, clock, interval=1, timeout=1)
    keepAlive.startService()

    clean = MemoryClient(hub, 1).open()
    clean.send(struct.pack("!H", 1000), opcode=8)
    clean.disconnect()

    dropped = MemoryClient(hub, 2).open()
    dropped.disconnect()

    failed = MemoryClient(hub, 3)
    failed.protocol.dataReceived(b"GET /ws/status HTTP/1.1\r\nHost: x\r\n\r\n")
    failed.disconnect()

    bad = MemoryClient(hub, 4).open()
    bad.send(b"garbage")
    bad.disconnect()

    slow = MemoryClient(hub, 5).open()
    slow.protocol.window.pauseProducing()
    board.update(deployed(40))
    slow.disconnect()

    silent = MemoryClient(hub, 6).open()
    clock.advance(2)
    silent.disconnect()

    assert len(hub) == 0
    keepAlive.stopService()


# Subscriptions: every deployment, or one.


def followers(hub, name: str, count: int, port: int = 41000) -> list[MemoryClient]:
    return [
        MemoryClient(hub, port + i, path=f"/ws/status?deployment={name}").open()
        for i in range(count)
    ]


def test_a_change_reaches_only_its_watchers_and_the_unfiltered() -> None:
    board, hub = makeHub()
    everything = MemoryClient(hub, 40001).open()
    watchA = followers(hub, "a", 3, 41000)
    watchB = followers(hub, "b", 2, 42000)
    for client in [everything, *watchA, *watchB]:
        client.messages()
    assert (hub.subscribers(), hub.subscribers("a"), hub.subscribers("b")) == (1, 3, 2)

    board.update(deployed(name="a"))
    assert [m["deployment"] for m in everything.messages()] == ["a"]
    for client in watchA:
        assert [m["deployment"] for m in client.messages()] == ["a"]
    for client in watchB:
        assert client.frames() == []  # not a byte for b's watchers


def test_a_change_is_written_once_per_interested_client() -> None:
    """
    The hub writes to its unfiltered clients and that deployment's, and
    touches no other client's transport.
    """
    board, hub = makeHub()
    others = followers(hub, "b", 50)
    mine = followers(hub, "a", 2, 43000)
    writes = []
    for client in others + mine:
        client.messages()
        original = client.protocol.transport.write
        client.protocol.transport.write = (
            lambda data, original=original, c=client: (writes.append(c), original(data))
        )
    board.update(deployed(name="a"))
    assert sorted(map(id, writes)) == sorted(map(id, mine))


def test_filtered_snapshot_is_its_picture_or_idle_with_its_name() -> None:
    board, hub = makeHub()
    board.update(deployed(2, name="a"))
    [mine] = followers(hub, "a", 1)[0].messages()
    assert (mine["deployment"], mine["deployStatus"], mine["seq"]) == ("a", "deployed", 1)
    [ghost] = followers(hub, "nothing-yet", 1, 42000)[0].messages()
    assert (ghost["deployment"], ghost["deployStatus"], ghost["nodeStatuses"]) == (
        "nothing-yet", "idle", [])


def test_unfiltered_snapshot_is_every_deployment_in_name_order() -> None:
    board, hub = makeHub()
    for name in ("c", "a", "b"):
        board.update(deployed(name=name))
    client = MemoryClient(hub).open()
    assert [m["deployment"] for m in client.messages()] == ["a", "b", "c"]
    # and again on demand
    client.send(json.dumps({"type": "get_status"}).encode())
    assert [m["deployment"] for m in client.messages()] == ["a", "b", "c"]


def test_teardown_ends_with_idle_then_the_snapshot_leaves_it_out() -> None:
    board, hub = makeHub()
    board.update(deployed(name="a"))
    board.update(deployed(name="b"))
    watcher = followers(hub, "a", 1)[0]
    everything = MemoryClient(hub).open()
    watcher.messages(), everything.messages()
    board.update(Picture(deployStatus="idle", deployment="a"))
    [final] = watcher.messages()
    assert (final["deployStatus"], final["nodeStatuses"]) == ("idle", [])
    assert everything.messages() == [final]
    late = MemoryClient(hub, 40002).open()
    assert [m["deployment"] for m in late.messages()] == ["b"]


def test_unsubscribed_clients_leave_the_index() -> None:
    board, hub = makeHub()
    [watcher] = followers(hub, "a", 1)
    everything = MemoryClient(hub).open()
    watcher.disconnect()
    everything.disconnect()
    assert (len(hub), hub.subscribers(), hub.subscribers("a")) == (0, 0, 0)
    assert hub._watchers == {}


@pytest.mark.parametrize("query", ["deployment=Not%20A%20Name", "deployment=a&deployment=b"])
def test_bad_subscription_is_refused_before_the_upgrade(query) -> None:
    board, hub = makeHub()
    client = MemoryClient(hub, path=f"/ws/status?{query}")
    client.protocol.dataReceived(
        b"GET /ws/status?" + query.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    response = client.transport.value()
    assert response.startswith(b"HTTP/1.1 400"), response
    assert b"deployment" in response
    assert len(hub) == 0
