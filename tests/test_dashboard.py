"""
The dashboard in real Chromium against the real hub process (and, for
deployments, the private Docker engine): what a person watching the page
sees, read through the data attributes PRODUCT.md promises.

Plain (non-twisted) tests: Playwright's sync API runs its own loop, and the
hub is a separate process.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.blockingapi import api
from tests.hubapi import topology

pytestmark = pytest.mark.browser


def startHub(hub_process, docker=None, config: str = ""):
    if docker is None:
        return hub_process(config=config)
    return hub_process(
        config=config + "[polling]\ninterval = 0.5\n",
        env={"DOCKER_HOST": docker.host},
    )


def node(page, nodeId: str):
    return page.locator(f'#nodes tr[data-node="{nodeId}"]')


def row(page, nodeId: str, field: str):
    return page.locator(f'#nodes tr[data-node="{nodeId}"] [data-field="{field}"]')


def deploymentRow(page, name: str):
    return page.locator(f'#deployments tr[data-deployment="{name}"]')


def expectRunningHealthy(page, nodes: int) -> None:
    """
    The view of one deployment shows it deployed, C{nodes} nodes running
    and healthy.
    """
    from playwright.sync_api import expect

    expect(page.locator("#deploy-status")).to_have_text("deployed", timeout=60_000)
    expect(page.locator("#nodes tbody tr")).to_have_count(nodes)
    for i in range(nodes):
        expect(node(page, f"n{i}")).to_have_attribute("data-status", "running")
        expect(node(page, f"n{i}")).to_have_attribute("data-health", "healthy", timeout=30_000)


def deployFromPage(page, path: Path) -> None:
    page.locator("#deploy-file").set_input_files(str(path))
    page.locator("#deploy").click()


def screenshot(page, suffix: str = "") -> None:
    """
    docs/dashboard.png and docs/dashboard-deployment.png:
    C{STATUSHUB_SCREENSHOT=docs/dashboard.png pytest tests/test_dashboard.py -k several}
    """
    path = os.environ.get("STATUSHUB_SCREENSHOT")
    if path:
        stem, dot, extension = path.rpartition(".")
        page.set_viewport_size({"width": 1000, "height": 680})
        page.screenshot(path=f"{stem}{suffix}.{extension}", full_page=True)


# ---- the hub alone -------------------------------------------------------


def test_idleSnapshot(hub_process, page) -> None:
    """
    Served by the hub at /, the overview shows the hub's current picture (no
    deployments) as live, and asks nothing of any other host.
    """
    from playwright.sync_api import expect

    hub = startHub(hub_process)
    page.goto(hub.url + "/")
    expect(page.locator("#connection")).to_have_text("live")
    status, current = api(hub, "GET", "/api/deployments")
    assert (status, current) == (200, {"deployments": []})
    expect(page.locator("#no-deployments")).to_be_visible()
    expect(page.locator("#deployments tbody tr")).to_have_count(0)
    expect(page.locator("#engine")).not_to_have_text("unknown")
    expect(page.locator("#last-update")).not_to_have_text("never")
    assert page.recorder.foreignRequests(hub.url) == []
    assert page.recorder.errors == []


def test_viewOfADeploymentNotThere(hub_process, page) -> None:
    """
    The view of a name the hub does not have: idle, no nodes, nothing to
    tear down.
    """
    from playwright.sync_api import expect

    hub = startHub(hub_process)
    page.goto(hub.url + "/?deployment=later")
    expect(page.locator("#connection")).to_have_text("live")
    expect(page.locator("#deployment-name")).to_have_text("later")
    expect(page.locator("#deploy-status")).to_have_text("idle")
    expect(page.locator("#no-nodes")).to_be_visible()
    expect(page.locator("#teardown")).to_be_disabled()
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
    expect(page.locator("#no-deployments")).to_be_visible()


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
    status, body = api(hub, "POST", "/api/deployments", bad.read_bytes())
    assert status == 400, body
    expect(message).to_contain_text(body["error"])
    expect(page.locator("#no-deployments")).to_be_visible()


# ---- with the Docker engine ------------------------------------------------


@pytest.mark.docker
def test_deployKillTeardown(hub_process, docker, page, tmp_path) -> None:
    """
    Deployed from the page: its row in the overview, and in its view three
    nodes running and healthy.  A container killed with the Docker CLI turns
    its row to exited; teardown from the view empties it.
    """
    from playwright.sync_api import expect

    hub = startHub(hub_process, docker)
    page.goto(hub.url + "/")
    expect(page.locator("#connection")).to_have_text("live")
    path = tmp_path / "dash.json"
    path.write_text(json.dumps(topology("dash")))
    deployFromPage(page, path)
    expect(page.locator("#api-message")).to_have_text("Deployment of dash.json accepted.")
    expect(deploymentRow(page, "dash")).to_have_attribute("data-status", "deployed", timeout=60_000)

    deploymentRow(page, "dash").locator("a").click()
    page.wait_for_url(hub.url + "/?deployment=dash")
    expectRunningHealthy(page, 3)
    expect(page.locator("#deployment-name")).to_have_text("dash")

    containerId = row(page, "n1", "container").get_attribute("title")
    docker.docker("kill", containerId)
    # "a couple of seconds" on an idle machine; generous for a busy one
    expect(node(page, "n1")).to_have_attribute("data-status", "exited", timeout=10_000)
    expect(row(page, "n1", "status")).to_have_text("exited")
    expect(node(page, "n0")).to_have_attribute("data-status", "running")

    page.locator("#teardown").click()
    expect(page.locator("#deploy-status")).to_have_text("idle", timeout=60_000)
    expect(page.locator("#nodes tbody tr")).to_have_count(0)
    expect(page.locator("#deployment-name")).to_have_text("dash")
    assert docker.labelledContainers() == []
    page.locator("#overview-link").click()
    expect(page.locator("#no-deployments")).to_be_visible()
    assert page.recorder.foreignRequests(hub.url) == []
    assert page.recorder.errors == []


@pytest.mark.docker
def test_severalDeployments(hub_process, docker, page) -> None:
    """
    Three deployments: the overview has a row each, live; a kill in one shows
    in its row and in no other; its view follows it; tearing one down from
    its row removes that one only, containers and row, and leaves the others.
    """
    from playwright.sync_api import expect

    hub = startHub(hub_process, docker)
    page.goto(hub.url + "/")
    expect(page.locator("#connection")).to_have_text("live")
    for name, nodes in (("web", 3), ("db", 1), ("cache", 2)):
        status, body = api(hub, "POST", "/api/deployments", topology(name, nodes=nodes))
        assert status == 202, body
    for name, nodes in (("web", 3), ("db", 1), ("cache", 2)):
        expect(deploymentRow(page, name)).to_have_attribute("data-status", "deployed", timeout=60_000)
        counts = deploymentRow(page, name).locator('[data-field="nodes"]')
        expect(counts).to_have_text(f"{nodes} running", timeout=30_000)
    names = page.locator("#deployments tbody tr").evaluate_all(
        "rows => rows.map(row => row.dataset.deployment)")
    assert names == ["cache", "db", "web"]

    status, web = api(hub, "GET", "/api/deployments/web")
    docker.docker("kill", web["nodeStatuses"][1]["containerId"])
    expect(deploymentRow(page, "web").locator('[data-field="nodes"]')).to_have_text(
        "1 exited 2 running", timeout=10_000)
    expect(deploymentRow(page, "cache").locator('[data-field="nodes"]')).to_have_text("2 running")
    expect(deploymentRow(page, "db").locator('[data-field="nodes"]')).to_have_text("1 running")
    screenshot(page)

    page.goto(hub.url + "/?deployment=web")
    expect(page.locator("#connection")).to_have_text("live")
    expect(page.locator("#nodes tbody tr")).to_have_count(3)
    expect(node(page, "n1")).to_have_attribute("data-status", "exited")
    expect(node(page, "n0")).to_have_attribute("data-health", "healthy")
    screenshot(page, "-deployment")
    page.goto(hub.url + "/")

    def containers(name: str) -> set[str]:
        status, picture = api(hub, "GET", f"/api/deployments/{name}")
        return {n["containerId"] for n in picture["nodeStatuses"]}

    cacheContainers, dbContainers = containers("cache"), containers("db")
    deploymentRow(page, "db").locator("button.teardown").click()
    expect(page.locator("#api-message")).to_have_text("Teardown of db accepted.")
    expect(deploymentRow(page, "db")).to_have_count(0, timeout=60_000)
    expect(page.locator("#deployments tbody tr")).to_have_count(2)
    expect(deploymentRow(page, "cache")).to_have_attribute("data-status", "deployed")
    left = set(docker.labelledContainers())  # short ids
    assert {c[:12] for c in cacheContainers} <= left
    assert not {c[:12] for c in dbContainers} & left
    status, cache = api(hub, "GET", "/api/deployments/cache")
    assert {n["containerId"] for n in cache["nodeStatuses"]} == cacheContainers
    assert all(n["status"] == "running" for n in cache["nodeStatuses"])
    assert api(hub, "GET", "/api/deployments/db")[0] == 404
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
    status, body = api(hub, "POST", "/api/deployments", topology("dash", nodes=2))
    assert status == 202, body
    page.goto(hub.url + "/?deployment=dash")
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
    expect(node(page, "n0")).to_have_attribute("data-status", "exited", timeout=10_000)
    assert page.evaluate("document.body.dataset.loadedOnce") == "yes"
    assert page.recorder.errors == []
