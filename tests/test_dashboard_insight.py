"""
A node's log and its resource use on the dashboard, in real Chromium against
the real hub process and the private Docker engine.

Plain (non-twisted) tests: Playwright's sync API runs its own loop, and the
hub is a separate process.
"""

from __future__ import annotations

import os
import re

import pytest

from tests.blockingapi import api
from tests.fixtures.docker import HUNGRY, IMAGE
from tests.test_dashboard import screenshot

pytestmark = [pytest.mark.browser, pytest.mark.docker]

COUNTER = "i=1; while :; do echo line $i; i=$((i+1)); usleep 200000; done"
BUSY = "while :; do :; done"


def startHub(hub_process, docker):
    return hub_process(
        config="[polling]\ninterval = 0.5\n", env={"DOCKER_HOST": docker.host}
    )


def deploy(hub, name: str, nodes: dict[str, str]) -> None:
    status, body = api(hub, "POST", "/api/deployments", {
        "name": name,
        "nodes": [{"id": node, "image": IMAGE, "command": ["sh", "-c", script]}
                  for node, script in nodes.items()],
    })
    assert status == 202, body


def lineNumbers(page) -> list[int]:
    texts = page.locator("#log-lines [data-log-line] .text").all_text_contents()
    return [int(text.split()[1]) for text in texts]


def test_logFollowsLiveAndCellsFill(hub_process, docker, page) -> None:
    """
    At /?deployment=NAME&node=NODE the node's log shows, each line an
    element with data-log-line, and new lines appear as the node prints
    them; reading back stops the scrolling until asked to follow again.
    Each running node's row carries its CPU and memory, numbers, shown.
    """
    from playwright.sync_api import expect

    hub = startHub(hub_process, docker)
    deploy(hub, "insight", {"counter": COUNTER, "busy": BUSY})
    page.goto(f"{hub.url}/?deployment=insight&node=counter")
    panel = page.locator("#log-panel")
    expect(panel).to_be_visible()
    expect(page.locator("#log-node")).to_have_text("counter")
    expect(page.locator("#log-state")).to_have_attribute("data-state", "following",
                                                         timeout=30_000)
    lines = page.locator("#log-lines [data-log-line]")
    expect(lines.first).to_be_visible(timeout=30_000)
    first = lineNumbers(page)
    # new lines as they are printed, in order, none missed
    page.wait_for_function(
        f"document.querySelectorAll('#log-lines [data-log-line]').length >= {len(first) + 10}"
    )
    seen = lineNumbers(page)
    assert seen == list(range(seen[0], seen[0] + len(seen))), seen
    assert seen[-1] >= first[-1] + 10
    assert lines.last.get_attribute("data-stream") == "stdout"

    # CPU and memory of every running node, as numbers
    for node in ("counter", "busy"):
        row = page.locator(f'#nodes tr[data-node="{node}"]')
        expect(row).to_have_attribute("data-cpu", re.compile(r"^[0-9.]+$"),
                                      timeout=30_000)
        memory = float(row.get_attribute("data-memory"))
        assert memory > 0
        expect(row.locator('[data-field="cpu"]')).to_contain_text("%")
        expect(row.locator('[data-field="memory"]')).to_contain_text("/")
    page.wait_for_function(
        "Number(document.querySelector('#nodes tr[data-node=\"busy\"]').dataset.cpu) > 50",
        timeout=30_000,
    )

    # reading back (once there is more than the panel shows): no scrolling
    # while new lines come, until asked
    page.wait_for_function(
        "(b => b.scrollHeight > b.clientHeight + 100)(document.getElementById('log-lines'))")
    page.locator("#log-lines").hover()
    page.mouse.wheel(0, -5000)
    page.wait_for_function("document.getElementById('log-lines').scrollTop === 0")
    count = lines.count()
    page.wait_for_function(
        f"document.querySelectorAll('#log-lines [data-log-line]').length >= {count + 3}"
    )
    # still where the reader is (near the top), nowhere near the newest line
    position = page.evaluate(
        "(b => [b.scrollTop, b.scrollHeight - b.scrollTop - b.clientHeight])"
        "(document.getElementById('log-lines'))")
    assert position[0] < 50 and position[1] > 100, position
    follow = page.locator("#log-newest")
    expect(follow).to_be_visible()
    expect(follow).to_contain_text("new line")
    follow.click()
    expect(follow).to_be_hidden()
    assert page.evaluate(
        "(b => b.scrollHeight - b.scrollTop - b.clientHeight)(document.getElementById('log-lines'))"
    ) <= 8
    assert page.recorder.errors == []
    assert page.recorder.foreignRequests(hub.url) == []


def test_clickOnANodeOpensItsLog(hub_process, docker, page) -> None:
    """
    In a deployment's view, a click on a node shows its log, and the
    address says which (a reload shows the same).
    """
    from playwright.sync_api import expect

    hub = startHub(hub_process, docker)
    deploy(hub, "clicks", {"counter": COUNTER, "other": "echo other node; sleep infinity"})
    page.goto(f"{hub.url}/?deployment=clicks")
    expect(page.locator("#log-panel")).to_be_hidden()
    page.locator('#nodes tr[data-node="other"] [data-field="node"] a').click()
    expect(page.locator("#log-panel")).to_be_visible()
    expect(page.locator("#log-lines [data-log-line] .text").first).to_have_text(
        "other node", timeout=30_000)
    assert "node=other" in page.url
    page.locator('#nodes tr[data-node="counter"] [data-field="node"] a').click()
    expect(page.locator("#log-node")).to_have_text("counter")
    expect(page.locator("#log-lines [data-log-line] .text").first).to_contain_text(
        "line ", timeout=30_000)
    assert "node=counter" in page.url
    page.locator("#log-close").click()
    expect(page.locator("#log-panel")).to_be_hidden()
    assert "node=" not in page.url
    assert page.recorder.errors == []


def test_theDemo(hub_process, docker, page) -> None:
    """
    The demo topology (etc/demo-topology.json): web's log following, a
    slow request on stderr among its lines, the worker's bursts of CPU.
    With C{STATUSHUB_SCREENSHOT=docs/dashboard.png}, docs/dashboard-logs.png
    is taken here, as the other pages' (L{tests.test_dashboard.screenshot}).
    """
    from playwright.sync_api import expect

    hub = startHub(hub_process, docker)
    with open(os.path.join(os.path.dirname(__file__), "..", "etc", "demo-topology.json")) as f:
        status, body = api(hub, "POST", "/api/deployments", f.read().encode())
    assert status == 202, body
    page.goto(f"{hub.url}/?deployment=demo&node=web")
    # web prints a line a second, and every 15th a slow request on stderr
    expect(page.locator('#log-lines [data-log-line][data-stream="stderr"]')).to_have_count(
        1, timeout=60_000)
    expect(page.locator('#log-lines [data-log-line][data-stream="stderr"] .text')).to_have_text(
        "slow request: GET /report took 1.2s")
    for node in ("web", "api", "worker"):
        expect(page.locator(f'#nodes tr[data-node="{node}"]')).to_have_attribute(
            "data-memory", re.compile(r"^[0-9]+$"))
    page.wait_for_function(
        "Number(document.querySelector('#nodes tr[data-node=\"worker\"]').dataset.cpu) > 5",
        timeout=30_000,
    )
    expect(page.locator('#nodes tr[data-node="web"]')).to_have_attribute(
        "data-health", "healthy")
    screenshot(page, "-logs")
    assert page.recorder.errors == []


def test_outOfMemory(hub_process, docker, page) -> None:
    """
    A node the OOM killer ended says so in its row; one that runs shows
    its memory against the limit it was given.
    """
    from playwright.sync_api import expect

    hub = startHub(hub_process, docker)
    status, body = api(hub, "POST", "/api/deployments", {"name": "memory", "nodes": [
        {"id": "hungry", "image": IMAGE, "command": ["sh", "-c", HUNGRY],
         "resources": {"memory": "16m"}},
        {"id": "calm", "image": IMAGE, "command": ["sleep", "infinity"],
         "resources": {"memory": "64m"}},
    ]})
    assert status == 202, body
    page.goto(f"{hub.url}/?deployment=memory")
    hungry = page.locator('#nodes tr[data-node="hungry"]')
    expect(hungry).to_have_attribute("data-oom-killed", "true", timeout=60_000)
    expect(hungry).to_have_attribute("data-status", "exited")
    expect(hungry.locator('[data-field="status"]')).to_contain_text("out of memory")
    calm = page.locator('#nodes tr[data-node="calm"]')
    expect(calm).to_have_attribute("data-memory-limit", str(64 * 2**20), timeout=30_000)
    expect(calm.locator('[data-field="memory"]')).to_contain_text("64.0 MiB")
    assert not page.locator('#nodes tr[data-node="calm"][data-oom-killed]').count()
    assert page.recorder.errors == []
