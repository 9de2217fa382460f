"""
The browser example (C{/examples/wamp.html}) in real Chromium: the Autobahn
JS browser bundle joins a real Crossbar.io router and shows what the real
hub publishes, and rejoins by itself when the router comes back.

Plain (non-twisted) tests: Playwright's sync API runs its own loop.
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest

pytestmark = [pytest.mark.wamp, pytest.mark.browser]


def getJSON(url: str, token: str = "") -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


VIEWER = "viewer-token-0123456789"


def test_example_page_follows_the_status_through_the_router(
    hub_process: Any, crossbar_router: Any, page: Any
) -> None:
    """
    With tokens on the hub: the page, its scripts and wamp.json follow the
    viewer role, and the page passes its own ?token= on to them.
    """
    from playwright.sync_api import expect

    router = crossbar_router()
    hub = hub_process(
        env={"STATUSHUB_WAMP_TICKET": router.ticket,
             "STATUSHUB_TOKEN": "operator-token-0123456789", "STATUSHUB_VIEWER_TOKEN": VIEWER},
        args=["--wamp-url", router.hubUrl, "--wamp-realm", "statushub"],
    )
    # the page joins where clients go (the same port here)
    page.goto(f"{hub.url}/examples/wamp.html?url={router.url}&token={VIEWER}")
    state = page.locator("#wamp-state")
    expect(state).to_have_attribute("data-state", "joined")

    # a hub with no deployment: list_deployments answers none
    assert getJSON(f"{hub.url}/api/deployments", VIEWER) == {"deployments": []}
    expect(page.locator("#no-deployments")).to_be_visible()
    expect(page.locator("#deployments section")).to_have_count(0)
    shown = page.evaluate("window.statushubWamp.messages")
    # what came, if anything (the router's retained event), is the hub's picture
    current = getJSON(f"{hub.url}/api/status", VIEWER)
    assert all(message["deployment"] is None for message in shown), shown
    assert not shown or shown[-1] == current

    router.stop()
    expect(state).to_have_attribute("data-state", "reconnecting")
    router.start()
    expect(state).to_have_attribute("data-state", "joined", timeout=40_000)
    expect(page.locator("#no-deployments")).to_be_visible()

    assert page.recorder.errors == []
    # nothing but the hub's own origin and the router's WebSocket
    foreign = page.recorder.foreignRequests(hub.url)
    assert foreign and all(url.startswith(router.url) for url in foreign), foreign


@pytest.mark.docker
def test_example_page_follows_every_deployment(
    hub_process: Any, crossbar_router: Any, docker: Any, page: Any
) -> None:
    """
    Two deployments: a section each, from list_deployments and then the
    events on C{<prefix>.status}, with the data attributes of PRODUCT.md;
    one torn down drops out and leaves the other.
    """
    from playwright.sync_api import expect

    from tests.blockingapi import api
    from tests.hubapi import topology

    router = crossbar_router()
    hub = hub_process(
        config="[polling]\ninterval = 0.5\n",
        env={"STATUSHUB_WAMP_TICKET": router.ticket, "DOCKER_HOST": docker.host},
        args=["--wamp-url", router.hubUrl, "--wamp-realm", "statushub"],
    )
    status, body = api(hub, "POST", "/api/deployments", topology("first", nodes=1))
    assert status == 202, body
    page.goto(f"{hub.url}/examples/wamp.html?url={router.url}")
    expect(page.locator("#wamp-state")).to_have_attribute("data-state", "joined")
    expect(page.locator('section[data-deployment="first"]')).to_have_attribute(
        "data-status", "deployed", timeout=60_000)
    status, body = api(hub, "POST", "/api/deployments", topology("second", nodes=2))
    assert status == 202, body
    second = page.locator('section[data-deployment="second"]')
    expect(second).to_have_attribute("data-status", "deployed", timeout=60_000)
    for node in ("n0", "n1"):
        expect(second.locator(f'tr[data-node="{node}"]')).to_have_attribute(
            "data-health", "healthy", timeout=30_000)
    names = page.locator("#deployments section").evaluate_all(
        "sections => sections.map(s => s.dataset.deployment)")
    assert names == ["first", "second"]

    status, body = api(hub, "DELETE", "/api/deployments/first")
    assert status == 202, body
    expect(page.locator('section[data-deployment="first"]')).to_have_count(0, timeout=60_000)
    expect(second).to_have_attribute("data-status", "deployed")
    assert page.recorder.errors == []
