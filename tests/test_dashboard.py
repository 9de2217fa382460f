"""
The dashboard in real Chromium against the real hub process (and, for
deployments, the private Docker engine): what a person watching the page
sees.

Plain (non-twisted) tests: Playwright's sync API runs its own loop, and the
hub is a separate process.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.hubapi import topology

pytestmark = pytest.mark.browser


def startHub(hub_process, docker=None, config: str = ""):
    if docker is None:
        return hub_process(config=config)
    return hub_process(
        config=config + "[polling]\ninterval = 0.5\n",
        env={"DOCKER_HOST": docker.host},
    )


def api(hub: Any, method: str, path: str, body: bytes | None = None, token: str | None = None):
    """
    C{(status, parsed JSON or raw text)} of one API request.
    """
    request = urllib.request.Request(f"{hub.url}{path}", data=body, method=method)
    if body is not None:
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode("utf-8", "replace")


def row(page, nodeId: str, field: str):
    return page.locator(f'#nodes tr[data-node-id="{nodeId}"] [data-field="{field}"]')


def expectRunningHealthy(page, nodes: int) -> None:
    from playwright.sync_api import expect

    expect(page.locator("#deploy-status")).to_have_text("deployed", timeout=60_000)
    expect(page.locator("#nodes tbody tr")).to_have_count(nodes)
    for i in range(nodes):
        expect(row(page, f"n{i}", "status")).to_have_text("running")
        expect(row(page, f"n{i}", "health")).to_have_text("healthy", timeout=30_000)


def deployFromPage(page, path: Path) -> None:
    page.locator("#deploy-file").set_input_files(str(path))
    page.locator("#deploy").click()


# ---- the hub alone -------------------------------------------------------


def test_idleSnapshot(hub_process, page) -> None:
    """
    Served by the hub at /, the page shows the hub's current picture (idle,
    no nodes) as live, and asks nothing of any other host.
    """
    from playwright.sync_api import expect

    hub = startHub(hub_process)
    page.goto(hub.url + "/")
    expect(page.locator("#connection")).to_have_text("live")
    status, current = api(hub, "GET", "/api/status")
    assert status == 200
    expect(page.locator("#deploy-status")).to_have_text(current["deployStatus"])
    expect(page.locator("#deployment-name")).to_have_text("none")
    expect(page.locator("#nodes tbody tr")).to_have_count(0)
    expect(page.locator("#no-nodes")).to_be_visible()
    expect(page.locator("#last-update")).not_to_have_text("never")
    assert page.recorder.foreignRequests(hub.url) == []
    assert page.recorder.errors == []


def test_token(hub_process, page) -> None:
    """
    With a token configured, a page opened without it says it is
    disconnected and why; with C{?token=} it is live.
    """
    from playwright.sync_api import expect

    hub = startHub(hub_process, config='[server]\ntoken = "t0ken"\n')
    page.goto(hub.url + "/")
    expect(page.locator("#connection")).to_have_text("disconnected")
    expect(page.locator("#connection-detail")).to_contain_text("401")
    page.goto(hub.url + "/?token=t0ken")
    expect(page.locator("#connection")).to_have_text("live")
    expect(page.locator("#deploy-status")).to_have_text("idle")


def test_invalidFileShowsTheAPIError(hub_process, page, tmp_path) -> None:
    """
    A topology the API refuses: the page shows the API's own error text.
    """
    from playwright.sync_api import expect

    hub = startHub(hub_process)
    page.goto(hub.url + "/")
    expect(page.locator("#connection")).to_have_text("live")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"name": "bad", "nodes": [{"id": "x"}]}))
    deployFromPage(page, bad)
    message = page.locator("#api-message")
    expect(message).to_have_class("error")
    expect(message).to_contain_text("Refused (400)")
    # the same body straight to the API: its error is what the page shows
    status, body = api(hub, "POST", "/api/deployment", bad.read_bytes())
    assert status == 400, body
    expect(message).to_contain_text(body["error"])
    expect(page.locator("#deploy-status")).to_have_text("idle")


# ---- with the Docker engine ------------------------------------------------


@pytest.mark.docker
def test_deployKillTeardown(hub_process, docker, page, tmp_path) -> None:
    """
    Deployed from the page: three nodes running and healthy.  A container
    killed with the Docker CLI turns its row to exited; teardown from the
    page empties it.
    """
    from playwright.sync_api import expect

    hub = startHub(hub_process, docker)
    page.goto(hub.url + "/")
    expect(page.locator("#connection")).to_have_text("live")
    path = tmp_path / "dash.json"
    path.write_text(json.dumps(topology("dash")))
    deployFromPage(page, path)
    expect(page.locator("#api-message")).to_have_text("Deployment of dash.json accepted.")
    expectRunningHealthy(page, 3)
    expect(page.locator("#deployment-name")).to_have_text("dash")

    containerId = row(page, "n1", "container").get_attribute("title")
    docker.docker("kill", containerId)
    # "a couple of seconds" on an idle machine; generous for a busy one
    expect(row(page, "n1", "status")).to_have_text("exited", timeout=10_000)
    expect(row(page, "n0", "status")).to_have_text("running")

    screenshot = os.environ.get("STATUSHUB_SCREENSHOT")
    if screenshot:
        # docs/dashboard.png: STATUSHUB_SCREENSHOT=docs/dashboard.png pytest -k deployKill
        page.set_viewport_size({"width": 1000, "height": 680})
        page.screenshot(path=screenshot, full_page=True)

    page.locator("#teardown").click()
    expect(page.locator("#deploy-status")).to_have_text("idle", timeout=60_000)
    expect(page.locator("#nodes tbody tr")).to_have_count(0)
    expect(page.locator("#deployment-name")).to_have_text("none")
    assert docker.labelledContainers() == []
    assert page.recorder.foreignRequests(hub.url) == []
    assert page.recorder.errors == []


@pytest.mark.docker
def test_followsTheHubAcrossARestart(hub_process, docker, page) -> None:
    """
    The hub stopped: the page says it is reconnecting.  The hub started again
    on the same port: the page is live again without a reload, shows the
    deployment the hub found again, and follows the next change.
    """
    from playwright.sync_api import expect

    hub = startHub(hub_process, docker)
    status, body = api(hub, "POST", "/api/deployment", json.dumps(topology("dash", nodes=2)).encode())
    assert status == 202, body
    page.goto(hub.url + "/")
    expectRunningHealthy(page, 2)
    # a marker that a reload would wipe
    page.evaluate("document.body.dataset.loadedOnce = 'yes'")

    hub.stop()
    expect(page.locator("#connection")).to_have_text("reconnecting")
    hub.start()
    expect(page.locator("#connection")).to_have_text("live", timeout=40_000)
    expectRunningHealthy(page, 2)

    containerId = row(page, "n0", "container").get_attribute("title")
    docker.docker("kill", containerId)
    expect(row(page, "n0", "status")).to_have_text("exited", timeout=10_000)
    assert page.evaluate("document.body.dataset.loadedOnce") == "yes"
    assert page.recorder.errors == []
