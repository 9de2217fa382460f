"""
The dashboard's own logic, in a real Chromium, with the hub played by the
test: Playwright serves statushub/static at a made-up origin and answers the
feed and the API itself.  That is how a seq jump, a refused token or an API
error can be produced on demand; tests/test_dashboard.py runs the same page
against the real hub.

The overview (C{/}) has a row per deployment, the view of one
(C{/?deployment=NAME}) a row per node; both are read through the data
attributes PRODUCT.md promises (C{data-deployment}, C{data-node},
C{data-status}, C{data-health}).
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
        "epoch": "e1",
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

    def send(self, socket, *messages: dict) -> None:
        for message in messages:
            socket.send(json.dumps(message))

    def apiCalls(self, path: str) -> list:
        return [call for call in self.calls if call[1] == path]


@pytest.fixture
def hub(page):
    return FakeHub(page)


def row(page, nodeId: str, field: str):
    return page.locator(f'#nodes tr[data-node="{nodeId}"] [data-field="{field}"]')


def deploymentRow(page, name: str):
    return page.locator(f'#deployments tr[data-deployment="{name}"]')


def names(page) -> list[str]:
    return page.locator("#deployments tbody tr").evaluate_all(
        "rows => rows.map(row => row.dataset.deployment)")


# ---- the overview ----------------------------------------------------------


def test_overview(page, hub):
    """
    The snapshot of every deployment: a row each, in name order, with its
    status and its nodes counted by status, linked to its own view (token
    kept); no request leaves the page's origin.
    """
    from playwright.sync_api import expect

    page.goto(ORIGIN + "/?token=t")
    socket = hub.socket()
    assert socket.url == "ws://statushub.test/ws/status?token=t"
    hub.send(
        socket,
        picture(3, deployment="alpha", nodes=[node("a"), node("b"), node("c", status="exited", health=None)]),
        picture(9, deployment="beta", deployStatus="deploying"),
    )
    expect(page.locator("#connection")).to_have_text("live")
    expect(page.locator("#deployments tbody tr")).to_have_count(2)
    assert names(page) == ["alpha", "beta"]
    alpha = deploymentRow(page, "alpha")
    expect(alpha).to_have_attribute("data-status", "deployed")
    expect(alpha.locator('[data-field="nodes"]')).to_have_text("1 exited 2 running")
    expect(alpha.locator('[data-field="nodes"] [data-state="running"]')).to_have_attribute("data-count", "2")
    expect(deploymentRow(page, "beta")).to_have_attribute("data-status", "deploying")
    expect(deploymentRow(page, "beta").locator('[data-field="nodes"]')).to_have_text("no nodes")
    expect(alpha.locator("a")).to_have_attribute("href", "/?deployment=alpha&token=t")
    expect(page.locator("#no-deployments")).to_be_hidden()
    expect(page.locator("#engine")).to_have_text("reachable")
    expect(page.locator("#deployment-view")).to_be_hidden()
    # the view of one is not built on the overview
    expect(page.locator("#nodes [data-node]")).to_have_count(0)
    assert page.recorder.foreignRequests(ORIGIN) == []
    assert page.recorder.errors == []


def test_overviewOfAHubWithNone(page, hub):
    from playwright.sync_api import expect

    page.goto(ORIGIN + "/")
    hub.send(hub.socket(), picture(0, deployStatus="idle", deployment=None, engine="unreachable"))
    expect(page.locator("#connection")).to_have_text("live")
    expect(page.locator("#no-deployments")).to_be_visible()
    expect(page.locator("#deployments tbody tr")).to_have_count(0)
    expect(page.locator("#engine")).to_have_text("unreachable")
    expect(page.locator("#last-update")).not_to_have_text("never")


def test_overviewFollowsChanges(page, hub):
    """
    A new deployment gets a row in its place; a change updates its row; a
    deployment whose teardown ends (idle, no nodes) drops out.
    """
    from playwright.sync_api import expect

    page.goto(ORIGIN + "/")
    socket = hub.socket()
    hub.send(socket, picture(0, deployStatus="idle", deployment=None))
    expect(page.locator("#no-deployments")).to_be_visible()
    hub.send(socket, picture(1, deployment="m", deployStatus="deploying"))
    hub.send(socket, picture(1, deployment="c", deployStatus="deploying"))
    expect(page.locator("#deployments tbody tr")).to_have_count(2)
    assert names(page) == ["c", "m"]
    hub.send(socket, picture(2, deployment="m", nodes=[node("x", status="exited", health=None)]))
    expect(deploymentRow(page, "m")).to_have_attribute("data-status", "deployed")
    expect(deploymentRow(page, "m").locator('[data-field="nodes"]')).to_have_text("1 exited")
    hub.send(socket, picture(3, deployment="m", deployStatus="tearing_down"))
    expect(deploymentRow(page, "m")).to_have_attribute("data-status", "tearing_down")
    hub.send(socket, picture(4, deployment="m", deployStatus="idle"))
    expect(page.locator("#deployments tbody tr")).to_have_count(1)
    assert names(page) == ["c"]
    hub.send(socket, picture(2, deployment="c", deployStatus="failed", error="no such image"))
    expect(deploymentRow(page, "c")).to_have_attribute("data-status", "failed")
    expect(deploymentRow(page, "c").locator(".row-error")).to_have_text("Error: no such image")
    hub.send(socket, picture(3, deployment="c", deployStatus="idle"))
    expect(page.locator("#no-deployments")).to_be_visible()
    assert page.recorder.errors == []


def test_seqGapPerDeployment(page, hub):
    """
    seq counts per deployment: messages of several deployments interleaved
    are no gap.  A jump in one deployment's seq makes the page fetch that
    deployment (only) and show it, and say that it missed updates; a new
    epoch is no gap either.
    """
    from playwright.sync_api import expect

    hub.responses[("GET", "/api/deployments/b")] = (
        200,
        json.dumps(picture(12, deployment="b", deployStatus="failed", error="fetched")),
    )
    page.goto(ORIGIN + "/")
    socket = hub.socket()
    hub.send(socket, picture(1, deployment="a"), picture(7, deployment="b"),
             picture(2, deployment="a"), picture(8, deployment="b"),
             picture(1, deployment="a", epoch="e2", deployStatus="deploying"))
    expect(deploymentRow(page, "a")).to_have_attribute("data-status", "deploying")
    assert hub.calls == []
    hub.send(socket, picture(11, deployment="b"))
    expect(deploymentRow(page, "b")).to_have_attribute("data-status", "failed")
    expect(page.locator("#missed")).to_contain_text("2 update(s) missed")
    assert [call[:2] for call in hub.calls] == [("GET", "/api/deployments/b")]
    # older than what is shown: ignored
    hub.send(socket, picture(10, deployment="b", deployStatus="deploying"),
             picture(2, deployment="a", epoch="e2"))
    expect(deploymentRow(page, "a")).to_have_attribute("data-status", "deployed")
    expect(deploymentRow(page, "b")).to_have_attribute("data-status", "failed")


def test_seqGapOfADeploymentGoneMeanwhile(page, hub):
    """
    The fetch after a gap answers 404: the deployment is gone, its row too.
    """
    from playwright.sync_api import expect

    page.goto(ORIGIN + "/")
    socket = hub.socket()
    hub.send(socket, picture(1, deployment="a"), picture(1, deployment="b"))
    expect(page.locator("#deployments tbody tr")).to_have_count(2)
    hub.send(socket, picture(5, deployment="b", deployStatus="tearing_down"))
    expect(page.locator("#deployments tbody tr")).to_have_count(1)
    assert names(page) == ["a"]
    assert hub.apiCalls("/api/deployments/b")


def test_overviewReconnectTakesTheNewSnapshot(page, hub):
    """
    After a reconnect the new snapshot replaces the overview: a deployment
    torn down while the feed was away is no longer shown.
    """
    from playwright.sync_api import expect

    page.goto(ORIGIN + "/")
    first = hub.socket(1)
    hub.send(first, picture(4, deployment="a"), picture(6, deployment="b"))
    expect(page.locator("#deployments tbody tr")).to_have_count(2)
    first.close(code=1001, reason="going away")
    expect(page.locator("#connection")).to_have_text("reconnecting")
    second = hub.socket(2)
    hub.send(second, picture(1, deployment="b", epoch="e2"))
    expect(page.locator("#connection")).to_have_text("live")
    expect(page.locator("#deployments tbody tr")).to_have_count(1)
    assert names(page) == ["b"]
    assert page.recorder.errors == []


# ---- the view of one deployment ---------------------------------------------


def test_view(page, hub):
    """
    C{/?deployment=NAME} follows that deployment's feed and shows every
    node's short container id, status and health as words, and as data
    attributes (C{data-health} only where there is a health).
    """
    from playwright.sync_api import expect

    page.goto(ORIGIN + "/?deployment=demo")
    socket = hub.socket()
    assert socket.url == "ws://statushub.test/ws/status?deployment=demo"
    hub.send(socket, picture(7, nodes=[node("web"), node("db", status="exited", health=None)]))
    expect(page.locator("#connection")).to_have_text("live")
    expect(page.locator("#overview")).to_be_hidden()
    expect(page.locator("#deploy-form")).to_be_hidden()
    expect(page.locator("#deployment-name")).to_have_text("demo")
    expect(page.locator("#deploy-status")).to_have_text("deployed")
    expect(page.locator("#nodes tbody tr")).to_have_count(2)
    web = page.locator('#nodes tr[data-node="web"]')
    expect(web).to_have_attribute("data-status", "running")
    expect(web).to_have_attribute("data-health", "healthy")
    db = page.locator('#nodes tr[data-node="db"]')
    expect(db).to_have_attribute("data-status", "exited")
    assert db.get_attribute("data-health") is None
    expect(row(page, "web", "container")).to_have_text("webwebwebweb")
    expect(row(page, "web", "status")).to_have_text("running")
    expect(row(page, "web", "health")).to_have_text("healthy")
    expect(row(page, "db", "health")).to_have_text("n/a")
    expect(row(page, "web", "since")).to_contain_text(" s")
    expect(page.locator("#overview-link")).to_have_attribute("href", "/")
    assert page.title() == "demo · statushub"
    assert page.recorder.foreignRequests(ORIGIN) == []
    assert page.recorder.errors == []


def test_viewOnASwarm(page, hub):
    """
    On a Swarm each node shows its host (C{data-host}, C{data-host-status})
    and a host that is down says so; a failed task's reason is the status's
    title.  Nodes without a host (one engine) show no host column.
    """
    from playwright.sync_api import expect

    page.goto(ORIGIN + "/?deployment=demo")
    socket = hub.socket()
    hub.send(socket, picture(1, nodes=[node("web")]))
    expect(page.locator("#nodes tbody tr")).to_have_count(1)
    expect(page.locator("#host-column")).to_be_hidden()
    expect(row(page, "web", "host")).to_have_count(0)
    hub.send(socket, picture(2, nodes=[
        {**node("web"), "host": "manager", "hostStatus": "ready"},
        {**node("db", status="unknown", health=None), "host": "worker", "hostStatus": "down"},
        {**node("cache", status="failed", health=None), "host": "worker", "hostStatus": "ready",
         "error": "No such image: x"},
    ]))
    expect(page.locator("#host-column")).to_be_visible()
    web = page.locator('#nodes tr[data-node="web"]')
    expect(web).to_have_attribute("data-host", "manager")
    expect(web).to_have_attribute("data-host-status", "ready")
    expect(row(page, "web", "host")).to_have_text("manager")
    db = page.locator('#nodes tr[data-node="db"]')
    expect(db).to_have_attribute("data-host-status", "down")
    expect(db).to_have_attribute("data-status", "unknown")
    expect(row(page, "db", "host")).to_have_text("worker host down")
    expect(row(page, "cache", "status").locator(".badge")).to_have_attribute("title", "No such image: x")
    assert page.recorder.errors == []


def test_viewChange(page, hub):
    """
    A later message replaces the picture: a node that went away is gone, a
    changed one shows its new status; the final idle empties it.
    """
    from playwright.sync_api import expect

    page.goto(ORIGIN + "/?deployment=demo")
    socket = hub.socket()
    hub.send(socket, picture(1, nodes=[node("a"), node("b")]))
    expect(page.locator("#nodes tbody tr")).to_have_count(2)
    hub.send(socket, picture(2, nodes=[node("a", status="exited", health=None)]))
    expect(page.locator("#nodes tbody tr")).to_have_count(1)
    expect(row(page, "a", "status")).to_have_text("exited")
    expect(page.locator('#nodes tr[data-node="a"]')).to_have_attribute("data-status", "exited")
    hub.send(socket, picture(3, deployStatus="idle"))
    expect(page.locator("#nodes tbody tr")).to_have_count(0)
    expect(page.locator("#no-nodes")).to_be_visible()
    expect(page.locator("#deploy-status")).to_have_text("idle")
    expect(page.locator("#deployment-name")).to_have_text("demo")
    expect(page.locator("#teardown")).to_be_disabled()


def test_viewSeqJump(page, hub):
    """
    A gap in the deployment's C{seq} makes the page fetch it again and
    show that picture, and say that it missed updates.
    """
    from playwright.sync_api import expect

    hub.responses[("GET", "/api/deployments/demo")] = (
        200,
        json.dumps(picture(9, nodes=[node("fetched")])),
    )
    page.goto(ORIGIN + "/?deployment=demo")
    socket = hub.socket()
    hub.send(socket, picture(1, nodes=[node("a")]))
    expect(row(page, "a", "node")).to_have_text("a")
    # (the page reads the history at start: that is not a refetch)
    assert [c for c in hub.calls if c[1] == "/api/deployments/demo"] == []
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

    page.goto(ORIGIN + "/?deployment=demo")
    first = hub.socket(1)
    hub.send(first, picture(40, nodes=[node("old")]))
    expect(row(page, "old", "node")).to_have_text("old")
    first.close(code=1001, reason="going away")
    expect(page.locator("#connection")).to_have_text("reconnecting")
    second = hub.socket(2)
    # it asks to resume after the last message it had
    assert second.url.endswith("/ws/status?deployment=demo&since=40&epoch=e1")
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


def test_tokenAndActions(page, hub, tmp_path):
    """
    C{?token=} in the page's URL goes to the feed as C{?token=} and to the
    API as a bearer header.  Deploy posts the file as C{application/json} to
    C{/api/deployments}; tear-down, from an overview row or from the view of
    one, deletes that deployment only.
    """
    from playwright.sync_api import expect

    hub.responses[("POST", "/api/deployments")] = (202, json.dumps(picture(2)))
    hub.responses[("DELETE", "/api/deployments/demo")] = (202, json.dumps(picture(3)))
    hub.responses[("DELETE", "/api/deployments/other")] = (202, json.dumps(picture(3)))
    page.goto(ORIGIN + "/?token=s%26cret")
    socket = hub.socket()
    assert socket.url.endswith("/ws/status?token=s%26cret")
    hub.send(socket, picture(1), picture(1, deployment="other"))
    topology = tmp_path / "demo.json"
    topology.write_text('{"name": "demo", "nodes": []}')
    page.locator("#deploy-file").set_input_files(str(topology))
    page.locator("#deploy").click()
    expect(page.locator("#api-message")).to_have_text("Deployment of demo.json accepted.")
    deploymentRow(page, "other").locator("button.teardown").click()
    expect(page.locator("#api-message")).to_have_text("Teardown of other accepted.")

    deploymentRow(page, "demo").locator("a").click()
    page.wait_for_url(ORIGIN + "/?deployment=demo&token=s%26cret")
    view = hub.socket(2)
    assert view.url.endswith("/ws/status?deployment=demo&token=s%26cret")
    hub.send(view, picture(1))
    page.locator("#teardown").click()
    expect(page.locator("#api-message")).to_have_text("Teardown of demo accepted.")
    calls = [(method, path, headers.get("authorization"), headers.get("content-type"), body)
             for method, path, headers, body in hub.calls]
    assert calls == [
        ("POST", "/api/deployments", "Bearer s&cret", "application/json",
         '{"name": "demo", "nodes": []}'),
        ("DELETE", "/api/deployments/other", "Bearer s&cret", None, None),
        # the view asks what its token may do, and reads the history,
        # with the token too
        ("GET", "/api/whoami", "Bearer s&cret", None, None),
        ("GET", "/api/deployments/demo/history", "Bearer s&cret", None, None),
        ("DELETE", "/api/deployments/demo", "Bearer s&cret", None, None),
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
    hub.responses[("POST", "/api/deployments")] = (
        400,
        json.dumps({"error": "nodes: required", "field": "nodes"}),
    )
    page.locator("#deploy-file").set_input_files(str(topology))
    page.locator("#deploy").click()
    message = page.locator("#api-message")
    expect(message).to_have_text("Refused (400): nodes: required")
    expect(message).to_have_class("error")
    hub.responses[("POST", "/api/deployments")] = (502, "proxy says no")
    page.locator("#deploy").click()
    expect(message).to_have_text("Refused (502): proxy says no")


# ---- acting on one node ------------------------------------------------------


OPERATOR = json.dumps({"role": "operator", "canChange": True})


def buttons(page, nodeId: str) -> list[str]:
    return page.locator(f'#nodes tr[data-node="{nodeId}"] button[data-action]').evaluate_all(
        "buttons => buttons.map(b => b.dataset.action)")


def test_nodeActionButtons(page, hub):
    """
    With a token that may change things, each node row has a button per
    action that applies to it now: a running node restart, stop, recreate;
    one stopped start, recreate; one gone recreate; none while an action is
    under way on it (which it says), or while the deployment is not
    deployed.  A node an operator stopped shows "stopped", not a crash, in
    its row and in the changes list.
    """
    from playwright.sync_api import expect

    hub.responses[("GET", "/api/whoami")] = (200, OPERATOR)
    page.goto(ORIGIN + "/?deployment=demo")
    stopped = dict(node("db", status="exited", health=None), stoppedBy="operator", exitCode=143)
    busy = dict(node("cache"), action="restart")
    failed = dict(node("queue", status="missing", health=None, containerId=""),
                  actionError="recreate failed: no such image (the old container is removed)")
    socket = hub.socket()
    hub.send(socket, picture(1, nodes=[node("web"), node("db"), node("cache"), failed]),
             picture(2, nodes=[node("web"), stopped, busy, failed]))
    expect(page.locator("body")).to_have_attribute("data-role", "operator")
    expect(page.locator('#nodes tr[data-node="web"] button[data-action]')).to_have_count(3)
    assert buttons(page, "web") == ["restart", "stop", "recreate"]
    assert buttons(page, "db") == ["start", "recreate"]
    assert buttons(page, "cache") == []
    assert buttons(page, "queue") == ["recreate"]
    expect(row(page, "cache", "actions")).to_have_text("restart under way…")
    expect(row(page, "queue", "actions")).to_contain_text("recreate failed: no such image")
    db = page.locator('#nodes tr[data-node="db"]')
    expect(db).to_have_attribute("data-status", "exited")
    expect(db).to_have_attribute("data-stopped-by", "operator")
    expect(row(page, "db", "status")).to_have_text("stopped")
    expect(page.locator('#changes tr[data-for="db"]').first).to_contain_text("running → stopped")

    hub.send(socket, picture(3, deployStatus="tearing_down", nodes=[node("web")]))
    expect(page.locator("#deploy-status")).to_have_text("tearing down")
    assert buttons(page, "web") == []
    assert page.recorder.errors == []


def test_nodeActionRequests(page, hub):
    """
    A click posts C{{}} as JSON, with the token, to the node's action path,
    and says what the hub answered (202, 200, a refusal); stop and recreate
    ask first, and nothing is sent when the answer is no.
    """
    from playwright.sync_api import expect

    hub.responses[("GET", "/api/whoami")] = (200, OPERATOR)
    base = "/api/deployments/demo/nodes/web/"
    hub.responses[("POST", base + "restart")] = (202, json.dumps(picture(2)))
    hub.responses[("POST", base + "stop")] = (200, json.dumps(picture(2)))
    hub.responses[("POST", base + "recreate")] = (
        409, json.dumps({"error": "node 'web' of 'demo': a restart is under way; wait for it to end"}))
    page.goto(ORIGIN + "/?deployment=demo&token=t0ken")
    hub.send(hub.socket(), picture(1, nodes=[node("web")]))
    message = page.locator("#api-message")

    def button(action: str):
        return page.locator(f'#nodes tr[data-node="web"] button[data-action="{action}"]')

    button("restart").click()
    expect(message).to_have_text("Restart of web accepted.")
    questions = []

    def answer(dialog):
        questions.append(dialog.message)
        dialog.dismiss() if len(questions) == 1 else dialog.accept()

    page.remove_listener("dialog", page.acceptDialogs)
    page.on("dialog", answer)
    button("stop").click()  # dismissed: nothing sent
    button("stop").click()
    expect(message).to_have_text("web is already stopped.")
    button("recreate").click()
    expect(message).to_have_text(
        "Refused (409): node 'web' of 'demo': a restart is under way; wait for it to end")
    expect(message).to_have_class("error")
    assert questions[0].startswith("Stop web?") and questions[2].startswith("Recreate web?")
    posts = [(path, headers.get("authorization"), headers.get("content-type"), body)
             for method, path, headers, body in hub.calls if method == "POST"]
    assert posts == [
        (base + "restart", "Bearer t0ken", "application/json", "{}"),
        (base + "stop", "Bearer t0ken", "application/json", "{}"),
        (base + "recreate", "Bearer t0ken", "application/json", "{}"),
    ]


@pytest.mark.parametrize("answer", [
    (200, json.dumps({"role": "viewer", "canChange": False})),
    (401, json.dumps({"error": "a valid token is required"})),
])
def test_noNodeActionsForViewers(page, hub, answer):
    """
    A viewer's token, or none where tokens are set: no action buttons, no
    actions column.
    """
    from playwright.sync_api import expect

    hub.responses[("GET", "/api/whoami")] = answer
    page.goto(ORIGIN + "/?deployment=demo")
    hub.send(hub.socket(), picture(1, nodes=[node("web")]))
    expect(page.locator('#nodes tr[data-node="web"]')).to_have_count(1)
    expect(page.locator("body")).to_have_attribute("data-role", "viewer" if answer[0] == 200 else "none")
    expect(page.locator("#nodes button[data-action]")).to_have_count(0)
    expect(page.locator("#node-actions-column")).to_be_hidden()
