"""
Unit tests of the WAMP sink: a fake session and a fake clock, no router.
The real router is in test_wamp_router.py.
"""

from __future__ import annotations

import json
import threading
from types import SimpleNamespace
from typing import Any, Optional

import pytest
from twisted.internet import task
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.error import ConnectionRefusedError
from zope.interface.verify import verifyObject

from statushub import config as configuration
from autobahn.wamp.exception import ApplicationError

from statushub.interfaces import IHealthCheck, IStatusSink
from statushub.status import NodeStatus, StatusBoard
from statushub.wamp import TICKET_VARIABLE, WampStatusSink, fromConfig

URL = "ws://127.0.0.1:8081/ws"


class FakeReactor(task.Clock):
    """
    A clock that also records calls handed over from other threads.
    """

    def __init__(self) -> None:
        super().__init__()
        self.fromThreads: list[tuple[Any, tuple]] = []

    def callFromThread(self, f: Any, *args: Any) -> None:
        self.fromThreads.append((f, args))


class FakeSession:
    """
    Records what the sink asks of the router; publications stay
    unacknowledged until the test says.
    """

    def __init__(self, registerResult: Optional[Deferred] = None) -> None:
        self.published: list[tuple[str, dict, Any]] = []
        self.acks: list[Deferred] = []
        self.registered: list[tuple[Any, str, Any]] = []
        self._registerResult = registerResult

    def publish(self, topic: str, message: dict, options: Any = None) -> Deferred:
        self.published.append((topic, message, options))
        d: Deferred = Deferred()
        self.acks.append(d)
        return d

    def register(self, endpoint: Any, procedure: str, options: Any = None) -> Deferred:
        self.registered.append((endpoint, procedure, options))
        return self._registerResult or succeed(None)

    def leave(self) -> None:
        pass

    def disconnect(self) -> None:
        pass

    def ackAll(self) -> None:
        acks, self.acks = self.acks, []
        for d in acks:
            if not d.called:
                d.callback(None)


class NeverConnects:
    """
    An endpoint whose every connection attempt fails at once, counting them.
    """

    def __init__(self) -> None:
        self.attempts = 0

    def connect(self, factory: Any) -> Deferred:
        self.attempts += 1
        return fail(ConnectionRefusedError("router down"))


DETAILS = SimpleNamespace(realm="statushub", authrole="hub")


def makeSink(**kwargs: Any) -> tuple[WampStatusSink, StatusBoard, FakeReactor]:
    reactor = FakeReactor()
    board = StatusBoard(reactor)
    sink = WampStatusSink(
        reactor,
        board,
        URL,
        "statushub",
        endpoint=kwargs.pop("endpoint", NeverConnects()),
        retryPolicy=kwargs.pop("retryPolicy", lambda attempt: 1.0 * attempt),
        **kwargs,
    )
    board.addSink(sink)
    return sink, board, reactor


def join(sink: WampStatusSink, session: FakeSession) -> None:
    d = sink._joined(session, DETAILS)  # type: ignore[arg-type]
    # a coroutine: run it to its end (every await here is already fired)
    from twisted.internet.defer import ensureDeferred

    ensureDeferred(d)


def running(**kwargs: Any) -> tuple[WampStatusSink, StatusBoard, FakeReactor]:
    sink, board, reactor = makeSink(**kwargs)
    sink.startService()
    return sink, board, reactor


def test_provides_its_interfaces() -> None:
    sink, _, _ = makeSink()
    assert verifyObject(IStatusSink, sink)
    assert verifyObject(IHealthCheck, sink)
    assert sink.name == "wamp"


@pytest.mark.parametrize(
    "kwargs, problem",
    [
        ({"url": "http://127.0.0.1/ws"}, "WAMP url 'http://127.0.0.1/ws'"),
        ({"prefix": "io..statushub"}, "WAMP prefix 'io..statushub'"),
        ({"prefix": "Io.StatusHub"}, "WAMP prefix"),
        ({"realm": ""}, "realm must not be empty"),
    ],
)
def test_rejects_bad_settings(kwargs: dict, problem: str) -> None:
    settings = {"url": URL, "realm": "statushub", **kwargs}
    with pytest.raises(ValueError, match=problem.replace(".", r"\.")):
        WampStatusSink(FakeReactor(), StatusBoard(task.Clock()), **settings)


def test_uris_follow_the_prefix() -> None:
    sink, _, _ = makeSink(prefix="io.statushub.host1")
    assert sink.topic == "io.statushub.host1.status"
    assert sink.procedure == "io.statushub.host1.get_status"


def test_join_publishes_current_picture_and_registers_get_status() -> None:
    sink, board, _ = running()
    board.change("demo", deployStatus="deploying")
    assert sink.health() == "connecting"
    session = FakeSession()
    join(sink, session)

    assert sink.health() == "joined"
    published = [(topic, message) for topic, message, _ in session.published]
    assert published == [
        ("io.statushub.status", board.current("demo")),
        ("io.statushub.deployment.demo", board.current("demo")),
    ]
    assert published[0][1]["deployStatus"] == "deploying"
    for _, _, options in session.published:
        assert options.acknowledge is True and options.retain is True
    procedures = {procedure: endpoint for endpoint, procedure, _ in session.registered}
    assert sorted(procedures) == ["io.statushub.get_status", "io.statushub.list_deployments"]
    assert {options.invoke for _, _, options in session.registered} == {"last"}
    getStatus = procedures["io.statushub.get_status"]
    board.change("demo", deployStatus="deployed")
    assert getStatus() == board.current("demo")
    assert getStatus()["deployStatus"] == "deployed"


def test_join_publishes_every_deployment() -> None:
    sink, board, _ = running()
    for name in ("b", "a"):
        board.change(name, deployStatus="deployed")
    session = FakeSession()
    join(sink, session)
    assert [topic for topic, _, _ in session.published] == [
        "io.statushub.status", "io.statushub.deployment.a",
        "io.statushub.status", "io.statushub.deployment.b",
    ]


def test_get_status_and_list_deployments_with_several() -> None:
    sink, board, _ = running()
    session = FakeSession()
    join(sink, session)
    procedures = {procedure: endpoint for endpoint, procedure, _ in session.registered}
    getStatus = procedures["io.statushub.get_status"]
    listDeployments = procedures["io.statushub.list_deployments"]
    assert getStatus()["deployment"] is None and listDeployments() == []
    board.change("b", deployStatus="deployed")
    assert getStatus() == board.current("b")  # the only one
    board.change("a", deployStatus="deploying")
    with pytest.raises(ApplicationError) as caught:
        getStatus()
    assert caught.value.error == "io.statushub.error.several_deployments"
    assert caught.value.kwargs["deployments"] == ["a", "b"]
    assert getStatus("a") == board.current("a")
    assert getStatus("zulu")["deployStatus"] == "idle"
    with pytest.raises(ApplicationError) as caught:
        getStatus("No Name")
    assert caught.value.error == ApplicationError.INVALID_ARGUMENT
    assert listDeployments() == [board.current("a"), board.current("b")]


def test_each_deployment_has_its_topic() -> None:
    sink, board, _ = running()
    session = FakeSession()
    join(sink, session)
    session.published.clear()
    board.change("web-1", deployStatus="deploying")
    assert [topic for topic, _, _ in session.published] == [
        "io.statushub.status", "io.statushub.deployment.web-1"]
    assert sink.deploymentTopic("x") == "io.statushub.deployment.x"


def test_slow_router_keeps_the_newest_message_of_each_deployment() -> None:
    sink, board, _ = running(maxInFlight=1)
    session = FakeSession()
    join(sink, session)  # the idle picture in flight
    board.change("a", deployStatus="deploying")
    board.change("b", deployStatus="deploying")
    board.change("a", deployStatus="deployed")
    assert sink.coalesced == 1  # a's deploying, replaced by its deployed
    session.ackAll()
    session.ackAll()
    statusTopic = [m for topic, m, _ in session.published if topic == "io.statushub.status"]
    assert [(m["deployment"], m["deployStatus"]) for m in statusTopic] == [
        (None, "idle"), ("a", "deployed"), ("b", "deploying")]


def test_every_change_is_published_once_as_the_feed_message() -> None:
    sink, board, _ = running()
    session = FakeSession()
    join(sink, session)
    board.change(deployStatus="deploying")
    board.change(
        deployStatus="deployed",
        nodeStatuses=(NodeStatus("web", "c1", "running", "healthy"),),
    )
    board.change(deployStatus="deployed")  # no change: no message
    messages = [message for _, message, _ in session.published]
    assert [m["seq"] for m in messages] == [0, 1, 2]
    assert messages[-1] is board.current()
    assert messages[-1]["nodeStatuses"] == [
        {"nodeId": "web", "containerId": "c1", "status": "running", "health": "healthy"}
    ]
    session.ackAll()
    assert sink.published == 3


def test_nothing_is_published_while_not_joined() -> None:
    sink, board, _ = running()
    board.change(deployStatus="deploying")
    assert sink.health() == "connecting"
    # and nothing is kept for later but the current picture
    session = FakeSession()
    board.change(deployStatus="deployed")
    join(sink, session)
    assert [m["deployStatus"] for _, m, _ in session.published] == ["deployed"]


def test_slow_router_keeps_only_the_newest_message() -> None:
    sink, board, _ = running(maxInFlight=2)
    session = FakeSession()
    join(sink, session)  # seq 0 in flight
    for status in ("deploying", "deployed", "tearing_down", "idle"):
        board.change(deployStatus=status)
    # seq 0 and 1 in flight; 2, 3 and 4 came while both were: only 4 waits
    assert [m["seq"] for _, m, _ in session.published] == [0, 1]
    assert sink.coalesced == 2
    session.acks[0].callback(None)
    assert [m["seq"] for _, m, _ in session.published] == [0, 1, 4]
    session.ackAll()
    assert sink.published == 3
    board.change(deployStatus="failed")
    assert session.published[-1][1]["seq"] == 5


def test_refused_publication_is_logged_and_frees_its_slot() -> None:
    sink, board, _ = running(maxInFlight=1)
    session = FakeSession()
    join(sink, session)
    session.acks[0].errback(Exception("wamp.error.not_authorized"))
    board.change(deployStatus="deploying")
    assert session.published[-1][1]["deployStatus"] == "deploying"


def test_router_lost_then_rejoined_republishes_current() -> None:
    sink, board, _ = running()
    first = FakeSession()
    join(sink, first)
    sink._disconnected(first)  # type: ignore[arg-type]
    assert sink.health() == "disconnected"
    board.change(deployStatus="deploying")
    board.change(deployStatus="deployed")
    assert len(first.published) == 1

    second = FakeSession()
    join(sink, second)
    assert sink.health() == "joined"
    assert sink.joins == 2
    assert [m["deployStatus"] for _, m, _ in second.published] == ["deployed"]
    # the first session's late answers change nothing of the second's
    first.ackAll()
    board.change(deployStatus="tearing_down")
    assert len(second.published) == 2


def test_a_failed_registration_still_publishes() -> None:
    sink, board, _ = running()
    session = FakeSession(registerResult=fail(Exception("wamp.error.not_authorized")))
    join(sink, session)
    assert sink.health() == "joined"
    board.change(deployStatus="deploying")
    assert len(session.published) == 2


def test_broadcast_from_another_thread_goes_through_the_reactor() -> None:
    sink, board, reactor = running()
    session = FakeSession()
    join(sink, session)
    message = dict(board.current(), seq=7)
    worker = threading.Thread(target=sink.broadcast, args=(message,))
    worker.start()
    worker.join()
    assert len(session.published) == 1  # not published from that thread
    [(f, args)] = reactor.fromThreads
    f(*args)
    assert session.published[-1][1] is message


def test_router_down_retries_with_growing_delay() -> None:
    endpoint = NeverConnects()
    sink, _, reactor = running(endpoint=endpoint)
    assert endpoint.attempts == 1
    reactor.advance(1.0)  # policy(1) == 1
    assert endpoint.attempts == 2
    reactor.advance(1.9)  # policy(2) == 2: not yet
    assert endpoint.attempts == 2
    reactor.advance(0.1)
    assert endpoint.attempts == 3
    assert sink.health() == "connecting"


def test_refused_joins_count_toward_the_backoff() -> None:
    sink, _, _ = running()
    for _ in range(3):
        sink._disconnected(FakeSession())  # type: ignore[arg-type]
    assert sink.health() == "disconnected"
    # ClientService counts 1 failed attempt; three refused joins add up
    assert sink._retryDelay(1) == 4.0
    join(sink, FakeSession())
    assert sink._retryDelay(1) == 1.0


def test_stop_stops_retrying() -> None:
    endpoint = NeverConnects()
    sink, _, reactor = running(endpoint=endpoint)
    d = sink.stopService()
    assert d.called
    reactor.advance(100)
    assert endpoint.attempts == 1
    assert sink.health() == "stopped"


def test_wamp_is_off_unless_configured() -> None:
    assert configuration.defaults()["wamp"]["url"] == ""
    assert fromConfig(configuration.defaults()["wamp"], FakeReactor(), StatusBoard(task.Clock())) is None


def test_config_section_makes_the_sink(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TICKET_VARIABLE, "from-env")
    loaded = configuration.parse(
        {"wamp": {"url": URL, "realm": "r1", "prefix": "io.statushub.h1"}}, "test.toml"
    )
    sink = fromConfig(loaded["wamp"], FakeReactor(), StatusBoard(task.Clock()))
    assert sink is not None
    assert (sink.url, sink.realm, sink.topic) == (URL, "r1", "io.statushub.h1.status")
    assert (sink.authid, sink.ticket) == ("statushub", "from-env")


@pytest.mark.parametrize(
    "section, problem",
    [
        ({"url": "tcp:8081"}, r"test.toml: \[wamp\] url: not a ws:// or wss:// URL"),
        ({"prefix": "io statushub"}, r"test.toml: \[wamp\] prefix: must be dot-separated"),
        ({"realm": ""}, r"test.toml: \[wamp\] realm: must not be empty"),
        ({"urls": URL}, r"test.toml: \[wamp\] unknown key 'urls'"),
    ],
)
def test_config_errors_name_the_key(section: dict, problem: str) -> None:
    with pytest.raises(configuration.ConfigError, match=problem):
        configuration.parse({"wamp": section}, "test.toml")


def test_command_line_overrides_the_wamp_section() -> None:
    from statushub.tap import Options

    options = Options()
    options.parseOptions(["--wamp-url", URL, "--wamp-realm", "elsewhere"])
    assert options.config["wamp"]["url"] == URL
    assert options.config["wamp"]["realm"] == "elsewhere"
    assert options.config["wamp"]["prefix"] == "io.statushub"


def test_command_line_rejects_a_bad_wamp_url() -> None:
    from twisted.python.usage import UsageError

    from statushub.tap import Options

    with pytest.raises(UsageError, match=r"\[wamp\] url: not a ws:// or wss:// URL"):
        Options().parseOptions(["--wamp-url", "127.0.0.1:8081"])


def test_example_page_is_told_the_clients_router_address() -> None:
    from twisted.web.test.requesthelper import DummyRequest

    from statushub.web.examples import RouterInfo

    def told(section: dict) -> dict:
        wamp = configuration.parse({"wamp": section}, "test.toml")["wamp"]
        request = DummyRequest([b""])
        body = RouterInfo(wamp).render_GET(request)
        assert request.responseHeaders.getRawHeaders(b"content-type") == [b"application/json"]
        return json.loads(body)

    assert told({}) == {"url": None, "realm": "statushub", "prefix": "io.statushub"}
    assert told({"url": URL})["url"] == URL
    clients = "ws://127.0.0.1:9081/ws"
    assert told({"url": URL, "client_url": clients, "ticket": "s3cret"}) == {
        "url": clients,
        "realm": "statushub",
        "prefix": "io.statushub",
    }
