"""
The dashboard's timelines and list of changes in real Chromium against the
real hub and the private Docker engine: they come from the history, so a
kill that happened while the page was closed (and the hub restarted since)
is there when the page opens again.
"""

from __future__ import annotations

import pytest

from tests.blockingapi import api
from tests.hubapi import topology

pytestmark = [pytest.mark.browser, pytest.mark.docker]


# asked from a page of the hub's origin that is not the dashboard
N0_EXITED = """async () => {
  const picture = await (await fetch("/api/deployments/past")).json();
  return picture.nodeStatuses[0].status === "exited";
}"""


def test_killWhileThePageWasClosed(hub_process, docker, page) -> None:
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
