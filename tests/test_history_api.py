"""
The history API (C{GET /api/deployments/NAME/history}) over an in-memory
L{IHistory}, through the site the hub builds (its guards and roles
included), with treq's StubTreq.  The SQLite store behind it on a real hub:
test_history_docker.py.
"""

from __future__ import annotations

import json
from typing import Any, Optional

import pytest
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.task import Clock
from zope.interface import implementer
from zope.interface.verify import verifyObject

from statushub import config as configuration
from statushub.historypage import HistoryUnavailable, Page
from statushub.hub import StatusHubFactory
from statushub.interfaces import IDeploymentControl, IHistory
from statushub.status import StatusBoard
from statushub.web.deployments import deploymentsAPI
from statushub.web.site import makeSite
from tests.siteclient import SiteClient, answered, fired


@implementer(IHistory)
class MemoryHistory:
    """
    Kept messages in a list; a read answers at once, or, with C{hold}, when
    the test calls L{release}; with C{broken}, it fails as an unreadable
    database does.
    """

    name = "history"

    def __init__(self) -> None:
        self.kept: list[dict] = []
        self.reads: list[tuple[Optional[str], int, int, Any]] = []
        self.hold = False
        self.held: list[tuple[Deferred, Page]] = []
        self.broken: Optional[str] = None

    def append(self, message: dict) -> None:
        self.kept.append(message)

    def page(self, deployment: Optional[str], since: int = 0, limit: int = 1000,
             after: Any = None) -> Deferred:
        self.reads.append((deployment, since, limit, after))
        if self.broken is not None:
            return fail(HistoryUnavailable(self.broken))
        mine = [m for m in self.kept if m["deployment"] == deployment]
        page = Page(
            mine[0]["seq"] if mine else 0,
            mine[-1]["seq"] if mine else 0,
            [json.dumps(m) for m in mine if m["seq"] > since][:limit],
        )
        if not self.hold:
            return succeed(page)
        d: Deferred = Deferred()
        self.held.append((d, page))
        return d

    def release(self) -> None:
        for d, page in self.held:
            d.callback(page)
        self.held = []

    def health(self) -> str:
        return self.broken or "ok"


@implementer(IDeploymentControl)
class NoChanges:
    def deploy(self, topology: Any) -> Deferred:
        raise AssertionError("not under test")

    teardown = deploy


def message(name: str, seq: int) -> dict:
    return {"type": "status_update", "deployment": name, "seq": seq, "epoch": "e1"}


def client(history: Optional[MemoryHistory], **server: str) -> SiteClient:
    config = configuration.defaults()
    for key, value in server.items():
        config.override("server", key, value)
    clock = Clock()
    board = StatusBoard(clock)
    site = makeSite(
        board, StatusHubFactory(board, clock), config,
        api=deploymentsAPI(NoChanges(), board, history), reactor=clock,
    )
    return SiteClient(site)


@pytest.fixture
def history() -> MemoryHistory:
    history = MemoryHistory()
    for seq in range(1, 6):
        history.append(message("alpha", seq))
    history.append(message("bravo", 1))
    return history


def test_memoryHistoryIsAnIHistory(history: MemoryHistory) -> None:
    verifyObject(IHistory, history)


def test_pageAfterSinceWithinTheLimit(history: MemoryHistory) -> None:
    answer = client(history).request("GET", "/api/deployments/alpha/history?since=1&limit=2")
    assert answer.code == 200
    assert answer.headers["content-type"] == "application/json"
    body = answer.json()
    assert {k: body[k] for k in ("deployment", "first", "last")} == {
        "deployment": "alpha", "first": 1, "last": 5
    }
    assert [m["seq"] for m in body["messages"]] == [2, 3]
    assert history.reads == [("alpha", 1, 2, None)]


def test_defaultsAndTheEpoch(history: MemoryHistory) -> None:
    site = client(history)
    body = site.request("GET", "/api/deployments/alpha/history").json()
    assert [m["seq"] for m in body["messages"]] == [1, 2, 3, 4, 5]
    assert isinstance(body["epoch"], str) and body["epoch"]
    assert history.reads == [("alpha", 0, 1000, None)]


def test_neverSeenIs404(history: MemoryHistory) -> None:
    code, body = client(history).call("GET", "/api/deployments/never/history")
    assert code == 404 and body == {"error": "no deployment named 'never'"}


@pytest.mark.parametrize(
    "query, field",
    [("since=x", "since"), ("limit=10001", "limit"), ("since=1&since=2", "since"),
     ("limit=-1", "limit")],
)
def test_badArgumentIs400NamingIt(history: MemoryHistory, query: str, field: str) -> None:
    code, body = client(history).call("GET", f"/api/deployments/alpha/history?{query}")
    assert code == 400 and body["field"] == field and field in body["error"]
    assert history.reads == []


def test_unreadableIs503(history: MemoryHistory) -> None:
    history.broken = "cannot read the database"
    code, body = client(history).call("GET", "/api/deployments/alpha/history")
    assert code == 503 and "cannot read the database" in body["error"]


def test_answeredWhenTheReadIsDone(history: MemoryHistory) -> None:
    history.hold = True
    site = client(history)
    pending = site.send("GET", "/api/deployments/bravo/history")
    assert not answered(pending)
    history.release()
    site.flush()
    answer = fired(pending)
    assert answer.code == 200 and [m["seq"] for m in answer.json()["messages"]] == [1]


def test_noHistoryKept() -> None:
    code, body = client(None).call("GET", "/api/deployments/alpha/history")
    assert code == 404 and "[history] enabled = false" in body["error"]


def test_aViewerReadsItAndNobodyElse(history: MemoryHistory) -> None:
    site = client(history, token="op", viewer_token="view")
    path = "/api/deployments/alpha/history"
    assert site.request("GET", path).code == 401
    assert site.request("GET", path, headers={"Authorization": "Bearer view"}).code == 200
    assert site.request("GET", path, headers={"Host": "evil.example"}).code == 403


def test_onlyGet(history: MemoryHistory) -> None:
    code, body = client(history).call("DELETE", "/api/deployments/alpha/history")
    assert code == 405 and "GET" in body["error"]
