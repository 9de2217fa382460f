"""
A drive-by deploy, tried by a real Chromium: a page of another origin (a
small HTTP server on 127.0.0.2) sends the hub a topology and a teardown, as
any web page open in the same browser could.  The hub runs with the
defaults of C{make run} (no token) on the private engine; the engine must
show nothing created and nothing removed, while the hub's own dashboard
still deploys and tears down.

Plain (non-twisted) tests: Playwright's sync API runs its own loop.
"""

from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Iterator
import urllib.error
import urllib.request
from urllib.parse import quote

import pytest

from tests.fixtures.browser import TIMEOUT_MS
from tests.hubapi import topology

pytestmark = [pytest.mark.browser, pytest.mark.docker]

# What the page tries, each way a page can: fetch in no-cors mode (a
# "simple" request: no preflight), a form posted as text/plain into a hidden
# frame (the oldest way to send JSON-looking text across sites), and a
# DELETE (which a browser only sends after a preflight).
ATTACK_PAGE = """<!doctype html>
<title>Cute cats</title>
<iframe name="sink" hidden></iframe>
<script>
"use strict";
const params = new URLSearchParams(location.search);
const hub = params.get("hub");
const topology = params.get("topology");
const target = hub + "/api/deployment";

async function attempt(what, init) {
  try {
    const response = await fetch(target, init);
    return what + ": answered (" + response.type + ")";
  } catch (err) {
    return what + ": " + err.name;
  }
}

function postForm() {
  return new Promise((resolve) => {
    const form = document.createElement("form");
    form.method = "POST";
    form.enctype = "text/plain";
    form.action = target;
    form.target = "sink";
    // text/plain sends name=value: a name that opens the JSON and a value
    // that closes it give a body that parses as the topology
    const field = document.createElement("input");
    field.name = topology.slice(0, -1) + ', "x": "';
    field.value = '"}';
    form.appendChild(field);
    document.body.appendChild(form);
    document.querySelector("iframe").onload = () => resolve("form: loaded");
    form.submit();
  });
}

window.attack = async function (kind) {
  if (kind === "deploy") {
    return [
      await attempt("fetch POST", { method: "POST", mode: "no-cors", body: topology }),
      await attempt("fetch POST json", {
        method: "POST", mode: "no-cors", body: topology,
        headers: { "Content-Type": "application/json" },
      }),
      await postForm(),
    ];
  }
  return [
    await attempt("fetch DELETE", { method: "DELETE" }),
    await attempt("fetch DELETE no-cors", { method: "DELETE", mode: "no-cors" }),
    await attempt("fetch DELETE credentials", { method: "DELETE", credentials: "include" }),
  ];
};
</script>
"""


class AttackHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = ATTACK_PAGE.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:
        pass


@pytest.fixture
def attacker() -> Iterator[str]:
    """
    The URL of the attack page, served from another loopback address (so
    another origin, and another site, than the hub's 127.0.0.1).
    """
    server = ThreadingHTTPServer(("127.0.0.2", 0), AttackHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.2:{server.server_address[1]}/cats.html"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def api(hub, method: str, path: str, body: bytes | None = None) -> tuple[int, dict]:
    """
    One API request as a program (the CLI) sends it: JSON, no Origin.
    """
    request = urllib.request.Request(f"{hub.url}{path}", data=body, method=method)
    if body is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def waitFor(
    page, predicate: Callable[[], object], what: str, timeout: float = TIMEOUT_MS / 1000
) -> object:
    """
    Poll C{predicate} until it holds, letting Playwright deliver events.
    """
    deadline = time.monotonic() + timeout
    while not (result := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout} s")
        page.wait_for_timeout(50)
    return result


REFUSED_CROSS_SITE = re.compile(r"audit: (\w+) of .* refused \(403\): cross-site.*127\.0\.0\.2")


def refusedCrossSite(hub, action: str) -> list[str]:
    return [
        line for line in list(hub.log)
        if (match := REFUSED_CROSS_SITE.search(line)) and match.group(1) == action
    ]


def test_pageOfAnotherOriginCannotDeployOrTearDown(
    hub_process, docker, page, attacker, tmp_path
) -> None:
    from playwright.sync_api import expect

    # the defaults of `make run`: no token, loopback
    hub = hub_process(config="[polling]\ninterval = 0.5\n", env={"DOCKER_HOST": docker.host})
    plan = json.dumps(topology("driveby", nodes=2))
    attackURL = f"{attacker}?hub={quote(hub.url)}&topology={quote(plan)}"

    # -- a deploy, on an idle hub
    page.goto(attackURL)
    results = page.evaluate("kind => window.attack(kind)", "deploy")
    assert results == [
        "fetch POST: answered (opaque)",
        "fetch POST json: answered (opaque)",
        "form: loaded",
    ]
    # the requests reached the hub, which refused them itself: every one
    # came with its Origin
    waitFor(page, lambda: len(refusedCrossSite(hub, "deploy")) == 3, "three refused deploys")
    status, picture = api(hub, "GET", "/api/status")
    assert picture["deployStatus"] == "idle" and picture["deployment"] is None
    assert docker.labelledContainers() == []

    # -- a teardown, of a deployment made as a program makes it
    status, body = api(hub, "POST", "/api/deployment", plan.encode())
    assert status == 202, body
    waitFor(
        page,
        lambda: api(hub, "GET", "/api/status")[1]["deployStatus"] == "deployed",
        "the deployment", timeout=60,
    )
    containers = sorted(docker.labelledContainers())
    assert len(containers) == 2

    page.goto(attackURL)
    results = page.evaluate("kind => window.attack(kind)", "teardown")
    # the browser does not even send these: a DELETE needs a CORS preflight,
    # which the hub does not answer, and no-cors allows no DELETE at all
    assert results == [
        "fetch DELETE: TypeError",
        "fetch DELETE no-cors: TypeError",
        "fetch DELETE credentials: TypeError",
    ]
    status, picture = api(hub, "GET", "/api/status")
    assert picture["deployStatus"] == "deployed" and picture["deployment"] == "driveby"
    assert sorted(docker.labelledContainers()) == containers
    running = docker.docker("ps", "-q", "--filter", "label=io.statushub.deployment").split()
    assert len(running) == 2
    assert not any("teardown of" in line and "accepted" in line for line in hub.log)

    # -- the hub's own page, in the same browser, still tears it down
    page.goto(hub.url + "/")
    row = page.locator('#deployments tr[data-deployment="driveby"]')
    expect(row).to_have_attribute("data-status", "deployed")
    row.locator("button.teardown").click()
    expect(page.locator("#api-message")).to_have_text("Teardown of driveby accepted.")
    expect(row).to_have_count(0, timeout=60_000)
    waitFor(page, lambda: docker.labelledContainers() == [], "the teardown", timeout=30)
