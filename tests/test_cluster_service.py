"""
Two hubs' cluster services on a real Redis, the leader's work a stand-in
(a board and a control, no engine): the leader's pictures reach both
mirrors, a request made on the follower is answered once its picture is
written, and when the leader stops the other takes over and numbers on.
"""

from __future__ import annotations

from typing import Any

import pytest
import pytest_twisted
from twisted.application.service import MultiService, Service
from twisted.internet import reactor
from twisted.internet.defer import ensureDeferred, succeed
from zope.interface.verify import verifyObject

from statushub.cluster.service import ClusterService
from statushub.interfaces import IDeploymentControl, IHealthCheck, IHistory, IStatusSource
from statushub.status import Picture, StatusBoard
from tests.waiting import waitUntil


class Work(MultiService):
    """
    What an orchestrator does, in small: shows "demo" deployed when it
    starts, deploys by showing a picture.
    """

    def __init__(self, board: StatusBoard, fence: Any) -> None:
        super().__init__()
        self.board = board
        self.fenced = fence(object())
        self.control = self
        self.healthChecks: list[Any] = []

    def startService(self) -> None:
        super().startService()
        self.board.update(Picture("deployed", deployment="demo", engine="reachable"))

    def deploy(self, topology: Any) -> Any:
        self.board.update(Picture("deploying", deployment=topology, engine="reachable"))
        return succeed(self.board.current(topology))

    def teardown(self, name: str) -> Any:
        self.board.update(Picture("tearing_down", deployment=name, engine="reachable"))
        return succeed(self.board.current(name))


class Publisher(Service):
    """
    A sink that is a service, as the WAMP publisher is.
    """

    def __init__(self) -> None:
        self.published: list[dict] = []

    def broadcast(self, message: dict) -> None:
        assert self.running
        self.published.append(message)


@pytest.fixture
def cluster(redis_server: Any) -> Any:
    server = redis_server()
    started: list[ClusterService] = []

    def start(name: str) -> ClusterService:
        service = ClusterService(
            server.url, 2.0, reactor, Work, owner="test", hubId=name,
            codecs={"deploy": (lambda t: [t], lambda d: [d])},
            leaderSinks=[Publisher()],
        )
        service.startService()
        started.append(service)
        return service

    yield start
    for service in started:
        if service.running:
            pytest_twisted.blockon(ensureDeferred(_stop(service)))


async def _stop(service: ClusterService) -> None:
    await service.stopService()


@pytest_twisted.ensureDeferred
async def test_twoHubsOneCluster(cluster: Any) -> None:
    a = cluster("a")
    await waitUntil(lambda: a.leadership.isLeader, 10, what="a leads")
    b = cluster("b")
    verifyObject(IStatusSource, b.mirror)
    verifyObject(IHistory, b.history)
    verifyObject(IDeploymentControl, b.control)
    for check in b.healthChecks:
        verifyObject(IHealthCheck, check)
    for hub in (a, b):
        await waitUntil(lambda: hub.mirror.names() == ["demo"], 10, what="demo shown")
    assert a.mirror.current("demo") == b.mirror.current("demo")
    assert {c.name: c.health() for c in b.healthChecks} == {
        "engine": "reachable", "history": "ok", "cluster": "follower",
    }
    assert {c.name: c.health() for c in a.healthChecks}["cluster"] == "leader"

    picture = await b.control.deploy("web")
    assert picture["deployStatus"] == "deploying"
    # answered once written: every hub shows it by then, or a moment after
    assert a.mirror.current("web") == picture
    await waitUntil(lambda: b.mirror.current("web") == picture, 5, what="b shows it")

    await a.stopService()
    await waitUntil(lambda: b.leadership.isLeader, 10, what="b takes over")
    # numbering goes on: the same picture is not sent again; a change is next
    await waitUntil(lambda: b.control.local is not None, 10, what="b's work started")
    assert b.mirror.current("demo")["seq"] == 1
    picture = await b.control.teardown("web")
    assert picture["seq"] == 2 and picture["epoch"] == b.mirror.epoch
    page = await b.history.page("web")
    assert page.last == 2 and len(page.bodies) == 2


@pytest_twisted.ensureDeferred
async def test_onlyTheLeaderPublishes(cluster: Any) -> None:
    a = cluster("a")
    await waitUntil(lambda: a.leadership.isLeader, 10, what="a leads")
    b = cluster("b")
    await waitUntil(lambda: b.feed.synced, 10, what="b subscribed")
    publishers = [hub.leaderSinks[0] for hub in (a, b)]
    await waitUntil(lambda: publishers[0].published, 10, what="a publishes")
    assert publishers[0].running and not publishers[1].running
    await a.stopService()
    assert not publishers[0].running
    await waitUntil(lambda: publishers[1].running, 10, what="b publishes once it leads")
    await b.control.teardown("demo")
    await waitUntil(lambda: any(m["deployment"] == "demo" and m["deployStatus"] == "tearing_down"
                                for m in publishers[1].published), 10, what="b's publication")
    assert not any(m["deployStatus"] == "tearing_down" for m in publishers[0].published)
