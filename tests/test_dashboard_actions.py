"""
Acting on one node from the dashboard, in real Chromium against the real hub
on the private engine: the operator's page clicks a node's restart button and
the container restarts; a stop (confirmed) shows the node stopped on purpose;
the viewer's page, and a page without a token, have no buttons.

docs/dashboard-actions.png is taken here:
C{STATUSHUB_SCREENSHOT=docs/dashboard.png pytest tests/test_dashboard_actions.py}
"""

from __future__ import annotations

import json

import pytest

from tests.blockingapi import api
from tests.hubapi import topology
from tests.test_dashboard import expectRunningHealthy, node, row, screenshot
from tests.waiting import blockUntil

pytestmark = [pytest.mark.browser, pytest.mark.docker]

OPERATOR = "operator-token-0123456789"
VIEWER = "viewer-token-0123456789ab"


def startedAt(docker, containerId: str) -> str:
    found = json.loads(docker.docker("inspect", containerId))[0]
    return found["State"]["StartedAt"]


def actionButtons(page, nodeId: str) -> list[str]:
    return node(page, nodeId).locator("button[data-action]").evaluate_all(
        "buttons => buttons.map(b => b.dataset.action)")


def test_operatorActsViewerCannot(hub_process, docker, page) -> None:
    from playwright.sync_api import expect

    hub = hub_process(
        config=(
            f'[server]\ntoken = "{OPERATOR}"\nviewer_token = "{VIEWER}"\n'
            "[polling]\ninterval = 0.5\n[deploy]\nstop_timeout = 5\n"
        ),
        env={"DOCKER_HOST": docker.host},
    )
    status, body = api(hub, "POST", "/api/deployments", topology("clicks", nodes=3),
                       token=OPERATOR)
    assert status == 202, body

    page.goto(hub.url + f"/?deployment=clicks&token={OPERATOR}")
    expectRunningHealthy(page, 3)
    expect(node(page, "n0").locator("button[data-action]")).to_have_count(3)
    assert actionButtons(page, "n0") == ["restart", "stop", "recreate"]
    containerId = row(page, "n0", "container").get_attribute("title")
    before = startedAt(docker, containerId)

    node(page, "n0").locator('button[data-action="restart"]').click()
    expect(page.locator("#api-message")).to_have_text("Restart of n0 accepted.")
    blockUntil(lambda: startedAt(docker, containerId) > before, timeout=30,
               what="the container started anew")
    expect(node(page, "n0")).to_have_attribute("data-status", "running", timeout=30_000)
    expect(node(page, "n0").locator("button[data-action]")).to_have_count(3, timeout=30_000)
    assert row(page, "n0", "container").get_attribute("title") == containerId

    # stop asks first (the page fixture says yes), then shows it stopped on purpose
    node(page, "n2").locator('button[data-action="stop"]').click()
    expect(node(page, "n2")).to_have_attribute("data-stopped-by", "operator", timeout=30_000)
    expect(node(page, "n2")).to_have_attribute("data-status", "exited", timeout=30_000)
    expect(row(page, "n2", "status")).to_have_text("stopped")
    expect(node(page, "n2").locator("button[data-action]")).to_have_count(2, timeout=30_000)
    assert actionButtons(page, "n2") == ["start", "recreate"]
    expect(page.locator('#changes tr[data-for="n2"]').first).to_contain_text("stopped",
                                                                             timeout=30_000)
    screenshot(page, "-actions")

    page.goto(hub.url + f"/?deployment=clicks&token={VIEWER}")
    expect(page.locator("#connection")).to_have_text("live")
    expect(page.locator("#nodes tbody tr")).to_have_count(3)
    expect(node(page, "n2")).to_have_attribute("data-stopped-by", "operator")
    # the page has learnt its role (body[data-role]) and shows no buttons
    expect(page.locator("body")).to_have_attribute("data-role", "viewer")
    expect(page.locator("#nodes button[data-action]")).to_have_count(0)

    page.goto(hub.url + "/?deployment=clicks")
    expect(page.locator("#connection")).to_have_text("disconnected")
    expect(page.locator("body")).to_have_attribute("data-role", "none")
    expect(page.locator("#nodes button[data-action]")).to_have_count(0)
    assert page.recorder.foreignRequests(hub.url) == []
    assert page.recorder.errors == []
