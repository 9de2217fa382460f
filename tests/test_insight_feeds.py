"""
The /ws/logs and /ws/stats connections in memory: real handshakes on a
StringTransport, the hubs on a task.Clock and the fake engine.  What a
request may ask, what a follower is sent, and how one that reads too slowly
is left out, told, and dropped without holding up the others.
"""

from __future__ import annotations

import struct

import pytest
from twisted.application.internet import TimerService
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from statushub.insight.feeds import LogFeedFactory, StatsFeedFactory, closeReason
from statushub.insight.logs import LogHub
from statushub.insight.stats import StatsHub
from tests.fakeengine import FakeEngine
from tests.fakeinsight import DeferredPump, FakeLocator, callNow
from tests.memoryclient import HANDSHAKE, MemoryClient


class Feeds:
    made: list["Feeds"] = []

    def __init__(self, maxSendBuffer: int = 1024 * 1024, **options) -> None:
        Feeds.made.append(self)
        self.clock = Clock()
        self.engine = FakeEngine()
        self.locator = FakeLocator(self.engine)
        pump = self.pump = DeferredPump()
        self.logs = LogHub(self.engine, self.locator, self.clock, pump, callNow, **options)
        self.stats = StatsHub(self.engine, self.locator, self.clock, pump, callNow)
        self.rounds = TimerService(self.stats.interval, self.stats.tick)
        self.rounds.clock = self.clock
        self.rounds.startService()
        feed = dict(maxSendBuffer=maxSendBuffer, pingInterval=0, pingTimeout=0)
        self.logFeed = LogFeedFactory(self.logs, self.clock, **feed)
        self.statsFeed = StatsFeedFactory(self.stats, self.clock, **feed)
        self.ids = self.locator.deploy("demo", "web", "db")

    def follower(self, query: str = "deployment=demo&node=web", port: int = 40000) -> MemoryClient:
        return MemoryClient(self.logFeed, port, f"/ws/logs?{query}").open()

    def print(self, *texts: str, node: str = "web") -> None:
        for text in texts:
            self.engine.printLine(self.ids[node], text)
        self.clock.advance(0.1)


@pytest.fixture(autouse=True)
def closeEverything():
    yield
    for feeds in Feeds.made:
        feeds.rounds.stopService()
        feeds.logs.closeAll()
        feeds.stats.closeAll()
        assert feeds.pump.running == 0
        feeds.engine.assertStreamsClosed()
    Feeds.made.clear()


def refusal(factory, path: str) -> bytes:
    transport = StringTransport()
    protocol = factory.buildProtocol(None)
    protocol.makeConnection(transport)
    protocol.dataReceived(HANDSHAKE % path.encode("ascii"))
    return transport.value()


def closeOf(client: MemoryClient) -> tuple[int, str]:
    [(opcode, payload)] = [f for f in client.frames() if f[0] == 8]
    (code,) = struct.unpack("!H", payload[:2])
    return code, payload[2:].decode("utf-8")


def texts(messages) -> list[str]:
    return [line["text"] for m in messages if m["type"] == "log" for line in m["lines"]]


@pytest.mark.parametrize(
    "query, status, words",
    [
        ("node=web", b"400", b"deployment: required"),
        ("deployment=demo", b"400", b"node: required"),
        ("deployment=demo&node=web&node=db", b"400", b"node: give one"),
        ("deployment=Demo!&node=web", b"400", b"is not a deployment name"),
        ("deployment=demo&node=web&tail=ten", b"400", b"tail: 'ten' is not a whole number"),
        ("deployment=demo&node=web&tail=10001", b"400", b"tail: 10001 is more than 10000"),
        ("deployment=demo&node=web&tail=%D9%A3", b"400", b"is not a whole number"),
        ("deployment=nope&node=web", b"404", b"no deployment named 'nope'"),
        ("deployment=demo&node=nope", b"404", b"has no node 'nope'"),
    ],
)
def test_logRequestChecked(query: str, status: bytes, words: bytes) -> None:
    feeds = Feeds()
    answer = refusal(feeds.logFeed, f"/ws/logs?{query}")
    assert answer.startswith(b"HTTP/1.1 " + status), answer
    assert words in answer
    assert feeds.engine.logStreams == []


def test_tailThenLiveThenEnd() -> None:
    """
    The first message is the tail; then the lines as they come; then
    C{log_end} and a normal close when the node's container stops.
    """
    feeds = Feeds()
    for n in range(1, 6):
        feeds.engine.printLine(feeds.ids["web"], f"line {n}")
    client = feeds.follower("deployment=demo&node=web&tail=2")
    [first] = client.messages()
    assert first["type"] == "log"
    assert (first["deployment"], first["node"]) == ("demo", "web")
    assert texts([first]) == ["line 4", "line 5"]
    feeds.print("line 6")
    assert texts(client.messages()) == ["line 6"]
    assert len(feeds.logFeed) == 1
    feeds.engine.exit(feeds.ids["web"], 137)
    frames = client.frames()
    assert [f[0] for f in frames] == [1, 8]
    assert b'"log_end"' in frames[0][1]
    assert struct.unpack("!H", frames[1][1][:2]) == (1000,)


def test_slowFollowerIsToldWhatItMissed() -> None:
    """
    While a follower's transport is full, the batches are left out for it
    (and only for it); once it drains, it is told how many lines it missed.
    """
    feeds = Feeds()
    slow, fast = feeds.follower(port=1), feeds.follower(port=2)
    slow.messages(), fast.messages()
    slow.protocol.window.pauseProducing()
    feeds.print("a", "b")
    feeds.print("c")
    assert slow.messages() == []
    assert texts(fast.messages()) == ["a", "b", "c"]
    slow.protocol.window.resumeProducing()
    [gap] = slow.messages()
    assert gap == {"type": "log_gap", "deployment": "demo", "node": "web", "dropped": 3}
    feeds.print("d")
    assert texts(slow.messages()) == ["d"]


def test_tooSlowFollowerIsDropped() -> None:
    """
    A follower that leaves more than the send buffer's worth unread is
    closed (4000, saying why); the others keep every line.
    """
    feeds = Feeds(maxSendBuffer=2000)
    slow, fast = feeds.follower(port=1), feeds.follower(port=2)
    slow.messages(), fast.messages()
    slow.protocol.window.pauseProducing()
    sent = []
    for n in range(40):
        sent.append(f"line {n} " + "x" * 100)
        feeds.print(sent[-1])
    assert closeOf(slow) == (4000, "client too slow: more than 2000 bytes left unread")
    assert texts(fast.messages()) == sent
    assert feeds.logs.followers == 2  # until its close handshake ends
    slow.disconnect()
    assert feeds.logs.followers == 1 and len(feeds.logFeed) == 1


def test_followerMayNotSend() -> None:
    feeds = Feeds()
    client = feeds.follower()
    client.messages()
    client.send(b'{"type": "get_status"}')
    code, reason = closeOf(client)
    assert code == 4001 and "takes no messages" in reason


def test_leavingEndsTheStream() -> None:
    """
    A follower that goes away is forgotten at once; the stream closes a
    linger later.
    """
    feeds = Feeds(linger=5.0)
    client = feeds.follower()
    assert feeds.logs.streams == 1
    client.disconnect()
    assert feeds.logs.followers == 0 and len(feeds.logFeed) == 0
    feeds.clock.advance(5.0)
    assert feeds.logs.streams == 0


def test_engineFailureClosesWithTheReason() -> None:
    from statushub.engine import EngineError

    feeds = Feeds()
    feeds.engine.failNext["followLogs"] = EngineError("follow the log of web: engine gone")
    client = feeds.follower()
    assert closeOf(client) == (4002, "follow the log of web: engine gone")


def test_closeReasonIsCut() -> None:
    assert len(closeReason("é" * 200).encode("utf-8")) <= 120
    assert closeReason("short") == "short"


def test_statsFeed() -> None:
    """
    A stats watcher gets its deployment's message every second; without a
    deployment, one per deployment; an unknown deployment is 404.
    """
    feeds = Feeds()
    watcher = MemoryClient(feeds.statsFeed, 1, "/ws/stats?deployment=demo").open()
    everything = MemoryClient(feeds.statsFeed, 2, "/ws/stats").open()
    feeds.engine.sample(feeds.ids["web"], 12.5, 1000)
    feeds.clock.advance(1.0)
    last = watcher.messages()[-1]
    assert last["type"] == "stats" and last["deployment"] == "demo"
    assert last["nodes"][0]["cpu"] == 12.5
    assert [m["deployment"] for m in everything.messages()][-1:] == ["demo"]
    answer = refusal(feeds.statsFeed, "/ws/stats?deployment=nope")
    assert answer.startswith(b"HTTP/1.1 404")
    watcher.disconnect(), everything.disconnect()
    assert feeds.stats.watchers == 0
