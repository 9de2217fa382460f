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


def getJSON(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


def test_example_page_follows_the_status_through_the_router(
    hub_process: Any, crossbar_router: Any, page: Any
) -> None:
    from playwright.sync_api import expect

    router = crossbar_router()
    hub = hub_process(
        env={"STATUSHUB_WAMP_TICKET": router.ticket},
        args=["--wamp-url", router.hubUrl, "--wamp-realm", "statushub"],
    )
    # the page joins where clients go (the same port here)
    page.goto(f"{hub.url}/examples/wamp.html?url={router.url}")
    state = page.locator("#wamp-state")
    expect(state).to_have_attribute("data-state", "joined")

    current = getJSON(f"{hub.url}/api/status")
    expect(page.locator("#seq")).to_have_text(str(current["seq"]))
    expect(page.locator("#deploy-status")).to_have_text(current["deployStatus"])
    shown = page.evaluate("window.statushubWamp.messages")
    assert shown[-1] == current

    router.stop()
    expect(state).to_have_attribute("data-state", "reconnecting")
    router.start()
    expect(state).to_have_attribute("data-state", "joined", timeout=40_000)
    expect(page.locator("#seq")).to_have_text(str(current["seq"]))

    assert page.recorder.errors == []
    # nothing but the hub's own origin and the router's WebSocket
    foreign = page.recorder.foreignRequests(hub.url)
    assert foreign and all(url.startswith(router.url) for url in foreign), foreign
