"""
The dashboard's own logic, in a real Chromium, with the hub played by the
test: Playwright serves statushub/static at a made-up origin and answers the
feed and the API itself.  That is how a seq jump, a refused token or an API
error can be produced on demand; tests/test_dashboard.py runs the same page
against the real hub.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.fixtures.browser import TIMEOUT_MS

pytestmark = pytest.mark.browser

STATIC = Path(__file__).parent.parent / "statushub" / "static"
ORIGIN = "http://statushub.test"
TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css"}


def picture(seq, deployStatus="deployed", nodes=(), deployment="demo", **extra):
    message = {
        "type": "status_update",
        "deployStatus": deployStatus,
        "nodeStatuses": list(nodes),
        "deployment": deployment,
        "engine": "reachable",
        "error": None,
        "seq": seq,
        "timestamp": "2026-11-26T08:00:00.000Z",
    }
    message.update(extra)
    return message


def node(nodeId, status="running", health="healthy", containerId=None):
    entry = {
        "nodeId": nodeId,
        "containerId": containerId or (nodeId * 64)[:64],
        "status": status,
    }
    if health:
        entry["health"] = health
    return entry


class FakeHub:
    """
    The hub as the page sees it, answered from inside the browser.

    @ivar sockets: every feed connection the page opened, newest last.
    @ivar calls: C{(method, path, headers, body)} of every API request.
    @ivar responses: C{(method, path) -> (status, body)}.
    """

    def __init__(self, page) -> None:
        self.page = page
        self.sockets: list = []
        self.calls: list[tuple] = []
        self.responses: dict[tuple[str, str], tuple[int, str]] = {}
        page.route(f"{ORIGIN}/**", self._http)
        page.route_web_socket("**/ws/status*", lambda socket: self.sockets.append(socket))

    def _http(self, route) -> None:
        request = route.request
        path = request.url[len(ORIGIN):].split("?")[0]
        if path == "/":
            path = "/index.html"
        if path.startswith("/api/"):
            self.calls.append((request.method, path, request.headers, request.post_data))
            status, body = self.responses.get((request.method, path), (404, "{}"))
            route.fulfill(status=status, body=body, content_type="application/json")
            return
        file = STATIC / path.lstrip("/")
        if file.is_file():
            route.fulfill(body=file.read_bytes(), content_type=TYPES.get(file.suffix))
        else:
            route.fulfill(status=404, body="not found")

    def waitFor(self, predicate, what: str):
        """
        Poll (letting Playwright deliver events) until C{predicate()}.
        """
        deadline = time.monotonic() + TIMEOUT_MS / 1000
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"{what} did not happen in time")
            self.page.wait_for_timeout(50)

    def socket(self, count: int = 1):
        """
        The C{count}th feed connection, once the page has opened it.
        """
        self.waitFor(lambda: len(self.sockets) >= count, f"feed connection {count}")
        return self.sockets[count - 1]

    def send(self, socket, message: dict) -> None:
        socket.send(json.dumps(message))


@pytest.fixture
def hub(page):
    return FakeHub(page)


def row(page, nodeId: str, field: str):
    return page.locator(f'#nodes tr[data-node-id="{nodeId}"] [data-field="{field}"]')


def test_snapshot(page, hub):
    """
    The first picture shows the deployment, every node's short container id,
    status and health as words, and the feed as live; no request leaves the
    page's origin.
    """
    from playwright.sync_api import expect

    page.goto(ORIGIN + "/")
    socket = hub.socket()
    hub.send(
        socket,
        picture(
            7,
            nodes=[node("web"), node("db", status="exited", health=None)],
        ),
    )
    expect(page.locator("#connection")).to_have_text("live")
    expect(page.locator("#deployment-name")).to_have_text("demo")
    expect(page.locator("#deploy-status")).to_have_text("deployed")
    expect(page.locator("#nodes tbody tr")).to_have_count(2)
    expect(row(page, "web", "container")).to_have_text("webwebwebweb")
    expect(row(page, "web", "status")).to_have_text("running")
    expect(row(page, "web", "health")).to_have_text("healthy")
    expect(row(page, "db", "status")).to_have_text("exited")
    expect(row(page, "db", "health")).to_have_text("n/a")
    expect(row(page, "web", "since")).to_contain_text(" s")
    expect(page.locator("#last-update")).not_to_have_text("never")
    assert page.recorder.foreignRequests(ORIGIN) == []
    assert page.recorder.errors == []


def test_change(page, hub):
    """
    A later message replaces the picture: a node that went away is gone, a
    changed one shows its new status.
    """
    from playwright.sync_api import expect

    page.goto(ORIGIN + "/")
    socket = hub.socket()
    hub.send(socket, picture(1, nodes=[node("a"), node("b")]))
    expect(page.locator("#nodes tbody tr")).to_have_count(2)
    hub.send(socket, picture(2, nodes=[node("a", status="exited", health=None)]))
    expect(page.locator("#nodes tbody tr")).to_have_count(1)
    expect(row(page, "a", "status")).to_have_text("exited")
    hub.send(socket, picture(3, deployStatus="idle", deployment=None))
    expect(page.locator("#nodes tbody tr")).to_have_count(0)
    expect(page.locator("#no-nodes")).to_be_visible()
    expect(page.locator("#deploy-status")).to_have_text("idle")
    expect(page.locator("#teardown")).to_be_disabled()


def test_seqJump(page, hub):
    """
    A gap in C{seq} makes the page fetch /api/status and show that picture,
    and say that it missed updates.
    """
    from playwright.sync_api import expect

    hub.responses[("GET", "/api/status")] = (
        200,
        json.dumps(picture(9, nodes=[node("fetched")])),
    )
    page.goto(ORIGIN + "/")
    socket = hub.socket()
    hub.send(socket, picture(1, nodes=[node("a")]))
    expect(row(page, "a", "node")).to_have_text("a")
    assert [call for call in hub.calls if call[1] == "/api/status"] == []
    hub.send(socket, picture(5, nodes=[node("jumped")]))
    expect(row(page, "fetched", "node")).to_have_text("fetched")
    expect(page.locator("#missed")).to_contain_text("3 update(s) missed")


def test_reconnect(page, hub):
    """
    When the feed drops, the page says it is reconnecting, opens a new
    connection by itself, and takes that connection's snapshot even though
    its seq starts again (a restarted hub).
    """
    from playwright.sync_api import expect

    page.goto(ORIGIN + "/")
    first = hub.socket(1)
    hub.send(first, picture(40, nodes=[node("old")]))
    expect(row(page, "old", "node")).to_have_text("old")
    first.close(code=1001, reason="going away")
    expect(page.locator("#connection")).to_have_text("reconnecting")
    second = hub.socket(2)
    hub.send(second, picture(0, nodes=[node("new")]))
    expect(page.locator("#connection")).to_have_text("live")
    expect(row(page, "new", "node")).to_have_text("new")
    expect(page.locator("#nodes tbody tr")).to_have_count(1)
    assert page.recorder.errors == []


def test_refused(page, hub):
    """
    A close for policy violation (a bad token) stops the retrying, says the
    page is disconnected, and offers to reconnect by hand.
    """
    from playwright.sync_api import expect

    page.goto(ORIGIN + "/")
    hub.socket(1).close(code=1008, reason="bad token")
    expect(page.locator("#connection")).to_have_text("disconnected")
    expect(page.locator("#connection-detail")).to_contain_text("bad token")
    expect(page.locator("#reconnect")).to_be_visible()
    page.locator("#reconnect").click()
    hub.send(hub.socket(2), picture(1))
    expect(page.locator("#connection")).to_have_text("live")
    expect(page.locator("#reconnect")).to_be_hidden()


def test_token(page, hub, tmp_path):
    """
    C{?token=} in the page's URL goes to the feed as C{?token=} and to the
    API as a bearer header.
    """
    from playwright.sync_api import expect

    hub.responses[("POST", "/api/deployment")] = (202, json.dumps(picture(2)))
    hub.responses[("DELETE", "/api/deployment")] = (202, json.dumps(picture(3)))
    page.goto(ORIGIN + "/?token=s%26cret")
    socket = hub.socket()
    assert socket.url.endswith("/ws/status?token=s%26cret")
    hub.send(socket, picture(1))
    topology = tmp_path / "demo.json"
    topology.write_text('{"name": "demo", "nodes": []}')
    page.locator("#deploy-file").set_input_files(str(topology))
    page.locator("#deploy").click()
    expect(page.locator("#api-message")).to_have_text("Deployment of demo.json accepted.")
    page.locator("#teardown").click()
    expect(page.locator("#api-message")).to_have_text("Teardown accepted.")
    calls = [(method, path, headers.get("authorization"), body) for method, path, headers, body in hub.calls]
    assert calls == [
        ("POST", "/api/deployment", "Bearer s&cret", '{"name": "demo", "nodes": []}'),
        ("DELETE", "/api/deployment", "Bearer s&cret", None),
    ]


def test_apiError(page, hub, tmp_path):
    """
    A refused deployment shows the API's C{error} text; a body that is not
    the API's JSON is shown as it is.
    """
    from playwright.sync_api import expect

    page.goto(ORIGIN + "/")
    hub.send(hub.socket(), picture(1, deployStatus="idle", deployment=None))
    topology = tmp_path / "bad.json"
    topology.write_text('{"name": "bad"}')
    hub.responses[("POST", "/api/deployment")] = (
        400,
        json.dumps({"error": "nodes: required", "field": "nodes"}),
    )
    page.locator("#deploy-file").set_input_files(str(topology))
    page.locator("#deploy").click()
    message = page.locator("#api-message")
    expect(message).to_have_text("Refused (400): nodes: required")
    expect(message).to_have_class("error")
    hub.responses[("POST", "/api/deployment")] = (502, "proxy says no")
    page.locator("#deploy").click()
    expect(message).to_have_text("Refused (502): proxy says no")
