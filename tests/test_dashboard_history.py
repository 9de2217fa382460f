"""
The dashboard's timelines and list of changes in real Chromium against the
real hub and the private Docker engine: they come from the history, so a
kill that happened while the page was closed (and the hub restarted since)
is there when the page opens again.
"""

from __future__ import annotations

import os
from datetime import datetime

import pytest

from tests.blockingapi import api
from tests.hubapi import topology
from tests.waiting import blockUntil

pytestmark = [pytest.mark.browser, pytest.mark.docker]


# asked from a page of the hub's origin that is not the dashboard
N0_EXITED = """async () => {
  const picture = await (await fetch("/api/deployments/past")).json();
  return picture.nodeStatuses[0].status === "exited";
}"""


@pytest.mark.parametrize("restart", ["stop", "kill"])
def test_killWhileThePageWasClosed(hub_process, docker, page, restart, tmp_path) -> None:
    """
    The hub stopped, or killed (then it numbers under a new epoch, seq
    going on), and started again: the page shows what happened before.
    """
    from playwright.sync_api import expect

    hub = hub_process(config="[polling]\ninterval = 0.5\n", env={"DOCKER_HOST": docker.host})
    status, body = api(hub, "POST", "/api/deployments", topology("past", nodes=2))
    assert status == 202, body
    page.goto(hub.url + "/?deployment=past")
    expect(page.locator("#deploy-status")).to_have_text("deployed", timeout=60_000)
    for nodeId in ("n0", "n1"):
        expect(page.locator(f'#nodes tr[data-node="{nodeId}"]')).to_have_attribute(
            "data-health", "healthy", timeout=30_000
        )
    containerId = page.locator('#nodes tr[data-node="n0"] [data-field="container"]').get_attribute("title")
    page.goto(hub.url + "/healthz")  # the dashboard is closed

    docker.docker("kill", containerId)
    page.wait_for_function(N0_EXITED, polling=100, timeout=30_000)
    if restart == "kill":
        status, current = api(hub, "GET", "/api/deployments/past")
        blockUntil(lambda: api(hub, "GET", "/api/deployments/past/history")[1]["last"]
                   >= current["seq"], timeout=30, what="the kill written")
        hub.kill()
        # and back where it cannot reach the engine: before adopting, it
        # answers with the last message it sent, of the old epoch
        hub.env["DOCKER_HOST"] = f"unix://{tmp_path}/no-engine.sock"
    else:
        hub.stop()
    hub.start()

    page.goto(hub.url + "/?deployment=past")
    change = page.locator('#changes tbody tr[data-for="n0"][data-to="exited"]')
    expect(change).to_have_count(1, timeout=30_000)
    expect(change.locator('[data-field="exitCode"]')).to_have_text("137")
    expect(change.locator('[data-field="change"]')).to_contain_text("→ exited")
    # newest first: the kill is above n0's start
    first = page.locator("#changes tbody tr").first
    expect(first).to_have_attribute("data-to", "exited")

    bar = page.locator('#timelines .timeline[data-for="n0"] .segment')
    expect(bar.last).to_have_attribute("data-state", "exited")  # the right edge: now
    assert "exited" in bar.last.get_attribute("title")
    expect(page.locator('#timelines .timeline[data-for="n1"] .segment').last).to_have_attribute(
        "data-state", "running"
    )
    # PRODUCT.md: the node rows are the only ones with data-node
    assert page.locator("#timelines [data-node], #changes [data-node]").count() == 0
    assert page.recorder.errors == []


# ---- a teardown, and a redeploy 45 s later -------------------------------

# libfaketime, from Debian's faketime (make system-deps): the first hub runs
# with its wall clock 45 s behind, so what it stamps happened 45 s before
# what the second, on the right time, stamps next
LIBFAKETIME = "/usr/lib/{arch}/faketime/libfaketime.so.1"

SEGMENTS = """(lines) => lines.length ? Array.from(lines[0].querySelectorAll(".segment"),
  (s) => ({state: s.dataset.state, from: s.dataset.from, to: s.dataset.to || null})) : []"""


def libfaketime() -> str:
    import sysconfig

    path = LIBFAKETIME.format(arch=sysconfig.get_config_var("MULTIARCH") or "x86_64-linux-gnu")
    if not os.path.exists(path):
        pytest.fail(f"{path} is missing: `make system-deps` installs faketime")
    return path


def seconds(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def waitFor(hub, path: str, check, what: str):
    def answer():
        status, body = api(hub, "GET", path)
        return body if check(status, body) else None

    return blockUntil(answer, timeout=60, what=what)


def deployedAndRunning(status: int, body) -> bool:
    return (status == 200 and body["deployStatus"] == "deployed"
            and all(n["status"] == "running" for n in body["nodeStatuses"]))


def test_teardownEndsTheBarAndARedeployStartsANewOne(hub_process, docker, page) -> None:
    """
    Deploy, tear down, and deploy the same name again 45 s later: each
    node's timeline ends at the teardown and starts a new bar at the
    redeploy (read from each segment's times, not its pixels); the changes
    say C{deployed} for a node that came with a deployment.
    """
    from playwright.sync_api import expect

    hub = hub_process(config="[polling]\ninterval = 0.5\n", env={
        "DOCKER_HOST": docker.host, "LD_PRELOAD": libfaketime(), "FAKETIME": "-45s",
    })
    status, body = api(hub, "POST", "/api/deployments", topology("again", nodes=2))
    assert status == 202, body
    waitFor(hub, "/api/deployments/again", deployedAndRunning, "the first deployment")
    status, body = api(hub, "DELETE", "/api/deployments/again")
    assert status == 202, body
    waitFor(hub, "/api/deployments/again", lambda status, body: status == 404, "the teardown")
    hub.stop()
    del hub.env["LD_PRELOAD"], hub.env["FAKETIME"]
    hub.start()  # on the same database, on time
    status, body = api(hub, "POST", "/api/deployments", topology("again", nodes=2))
    assert status == 202, body
    waitFor(hub, "/api/deployments/again", deployedAndRunning, "the redeploy")

    # what the hub kept: the teardown's last message, and the redeploy's first
    status, history = api(hub, "GET", "/api/deployments/again/history")
    assert status == 200, history
    messages = history["messages"]
    gone = next(m for m in messages if m["deployStatus"] == "idle")

    def backWith(nodeId: str) -> dict:
        return next(m for m in messages if m["seq"] > gone["seq"]
                    and any(n["nodeId"] == nodeId for n in m["nodeStatuses"]))

    assert seconds(backWith("n0")["timestamp"]) - seconds(gone["timestamp"]) >= 45

    page.goto(hub.url + "/?deployment=again")
    for nodeId in ("n0", "n1"):
        back = backWith(nodeId)
        line = f'#timelines .timeline[data-for="{nodeId}"]'
        # the bar of the redeploy: from its first message, lasting
        expect(page.locator(f'{line} .segment[data-from="{back["timestamp"]}"]')).to_have_count(1)
        expect(page.locator(f"{line} .segment").last).to_have_attribute(
            "data-state", "running", timeout=30_000
        )
        segments = page.eval_on_selector_all(line, SEGMENTS)
        assert segments[-1]["to"] is None
        assert all(s["to"] is not None for s in segments[:-1])
        # the first bar ends at the teardown; nothing is drawn in the gap
        ended = [i for i, s in enumerate(segments) if s["to"] == gone["timestamp"]]
        assert len(ended) == 1, segments
        assert segments[ended[0] + 1]["from"] == back["timestamp"]
        for segment in segments:
            assert segment["to"] is not None and segment["to"] <= gone["timestamp"] or (
                segment["from"] >= back["timestamp"]), segments
        assert segments[0]["from"] < gone["timestamp"]  # the first deployment is drawn

        rows = page.locator(f'#changes tbody tr[data-for="{nodeId}"]')
        teardown = rows.and_(page.locator('[data-to="gone"]'))
        expect(teardown).to_have_count(1)
        expect(teardown).to_have_attribute("data-time", gone["timestamp"])
        arrivals = rows.and_(page.locator('[data-from="deployed"]'))
        expect(arrivals).to_have_count(2)  # the deploy and the redeploy
        expect(arrivals.first.locator('[data-field="change"]')).to_contain_text("deployed → ")
        assert "—" not in "".join(rows.locator('[data-field="change"]').all_text_contents())
    assert page.locator("#timelines [data-node], #changes [data-node]").count() == 0
    assert page.recorder.errors == []


# ---- only the last hour, page by page ------------------------------------

HOUR_CHANGES = 1500  # more than one page of the history API (1,000)


class HandedBackAtOnce:
    """
    The reactor of a history store used where no reactor runs (this plain
    test): what its writer thread hands back runs at once, in that thread.
    """

    def callFromThread(self, f, *args, **kwargs) -> None:
        f(*args, **kwargs)


def writeHistory(path, now: float) -> list[dict]:
    """
    The history of C{busy} as the hub's own store and board write it, with
    chosen times: deployed three hours ago, running since two hours ago,
    then C{HOUR_CHANGES} changes (paused, running, ...) two seconds apart
    within the last hour.

    @return: every message, in order.
    """
    import threading

    from twisted.internet.task import Clock

    from statushub.history.store import HistoryStore
    from statushub.numbering import PersistentNumbering
    from statushub.status import HistorySink, NodeStatus, Picture, StatusBoard, isoTimestamp

    store = HistoryStore(str(path), HandedBackAtOnce())
    opened = store.open()
    store.start()
    clock = Clock()
    board = StatusBoard(clock, PersistentNumbering(opened.epoch, opened.lastByName()))
    messages: list[dict] = []
    board.addSink(HistorySink(store))
    board.addSink(type("Keep", (), {"broadcast": staticmethod(messages.append)})())

    def at(moment: float, status: str, deployStatus: str = "deployed") -> None:
        clock.advance(moment - clock.seconds())
        node = NodeStatus("web", "c0ffee", status, since=isoTimestamp(moment))
        board.update(Picture(deployStatus, (node,), "busy", "reachable"))

    at(now - 3 * 3600, "created", "deploying")
    at(now - 2 * 3600, "running")
    for i in range(HOUR_CHANGES):
        at(now - 3300 + 2 * i, "paused" if i % 2 == 0 else "running")
    # every message written, the database closed cleanly
    closed = threading.Event()
    store.stop().addCallback(lambda _: closed.set())
    assert closed.wait(30), "the history's writer did not finish"
    return messages


def test_pageLoadsOnlyTheLastHourPageByPage(hub_process, page, tmp_path) -> None:
    """
    The view of a deployment asks the history API only for the last hour
    (and the one message before it, which says how the hour began), a page
    at a time, and draws all of it.
    """
    import time

    from playwright.sync_api import expect

    database = tmp_path / "busy.db"
    messages = writeHistory(database, time.time())
    # no engine: "busy" stays as the history left it (an engine without
    # its containers would end it)
    hub = hub_process(config=f'[history]\npath = "{database}"\n',
                      env={"DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock"})

    page.goto(hub.url + "/?deployment=busy")
    line = '#timelines .timeline[data-for="web"]'
    # the running that began two hours ago, then one segment per change
    expect(page.locator(f"{line} .segment")).to_have_count(1 + HOUR_CHANGES, timeout=30_000)
    segments = page.eval_on_selector_all(line, SEGMENTS)
    assert segments[0] == {"state": "running", "from": messages[1]["timestamp"],
                           "to": messages[2]["timestamp"]}
    assert [s["from"] for s in segments[1:]] == [m["timestamp"] for m in messages[2:]]
    assert segments[-1]["to"] is None
    assert [s["state"] for s in segments[1:3]] == ["paused", "running"]
    # the changes of the hour, newest first (the deploy is older: not there)
    rows = page.locator("#changes tbody tr")
    expect(rows.first).to_have_attribute("data-time", messages[-1]["timestamp"])
    assert page.locator('#changes tbody tr[data-from="deployed"]').count() == 0

    asked = [url.split("?", 1)[1] for url in page.recorder.requests if "/history?" in url]
    hourly = [q for q in asked if "after=" in q]
    assert [q for q in asked if q not in hourly] == ["since=1&limit=1"]  # the hour's eve
    assert len(hourly) == 2 and "since=0&limit=1000" in hourly[0], asked
    assert f"since={messages[1001]['seq']}&limit=1000" in hourly[1], asked
    assert page.recorder.errors == []
