"""
The real hub process (C{twistd -n statushub}) publishing on a real Crossbar.io
router, followed by real Autobahn JS clients (Node), beside real
C{/ws/status} clients.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
import pytest_twisted
import treq

from statushub.web.examples import AUTOBAHN_MIN_JS_SHA256
from tests.fixtures.docker import IMAGE
from tests.hubapi import SERVICE, post
from tests.waiting import waitUntil
from tests.wsclient import connectFeed

pytestmark = pytest.mark.wamp


async def getJSON(hub: Any, path: str) -> Any:
    response = await treq.get(f"{hub.url}{path}")
    assert response.code == 200, path
    return json.loads(await response.content())


async def wampHealth(hub: Any) -> str:
    return (await getJSON(hub, "/healthz")).get("wamp")


async def _is(value: Any, expected: str) -> bool:
    return (await value) == expected


def nodeStatus(message: dict, index: int) -> Any:
    nodes = message["nodeStatuses"]
    return nodes[index]["status"] if len(nodes) > index else None


def startHub(hub_process: Any, router: Any, config: str = "", **env: str) -> Any:
    # the router's address and realm on the command line, as the issue asks
    return hub_process(
        config=config,
        env={"STATUSHUB_WAMP_TICKET": router.ticket, **env},
        args=["--wamp-url", router.hubUrl, "--wamp-realm", "statushub"],
    )


@pytest_twisted.ensureDeferred
async def test_hub_joins_and_clients_get_the_same_picture_as_the_api(
    hub_process: Any, crossbar_router: Any, wamp_client: Any
) -> None:
    router = crossbar_router()
    hub = startHub(hub_process, router)
    assert await waitUntil(
        lambda: _is(wampHealth(hub), "joined"), 20, what="/healthz wamp joined"
    )

    client = wamp_client(router.url)
    got = await client.waitFor(lambda e: e["kind"] == "get_status")
    current = await getJSON(hub, "/api/status")
    assert got["message"] == current
    assert got["message"]["type"] == "status_update"


@pytest_twisted.ensureDeferred
async def test_hub_serves_with_the_router_down_and_joins_when_it_comes(
    hub_process: Any, crossbar_router: Any, wamp_client: Any
) -> None:
    router = crossbar_router(start=False)
    hub = startHub(hub_process, router)
    feed = await connectFeed(hub.wsUrl)
    try:
        first = await feed.waitFor(lambda m: True)
        assert first["type"] == "status_update"
        assert await wampHealth(hub) in ("connecting", "disconnected")

        router.start()
        await waitUntil(lambda: _is(wampHealth(hub), "joined"), 30, what="hub joined")
        client = wamp_client(router.url)
        got = await client.waitFor(lambda e: e["kind"] == "get_status")
        assert got["message"] == await getJSON(hub, "/api/status")
        assert not feed.closed
    finally:
        await feed.close()


@pytest_twisted.ensureDeferred
async def test_router_restart_hub_rejoins_and_republishes_feed_never_notices(
    hub_process: Any, crossbar_router: Any, wamp_client: Any
) -> None:
    router = crossbar_router()
    hub = startHub(hub_process, router)
    await waitUntil(lambda: _is(wampHealth(hub), "joined"), 20, what="hub joined")
    feed = await connectFeed(hub.wsUrl)
    try:
        await feed.waitFor(lambda m: True)
        client = wamp_client(router.url)
        await client.waitFor(lambda e: e["kind"] == "get_status")
        before = len(client.events)

        router.stop()
        await waitUntil(
            lambda: _is(wampHealth(hub), "disconnected"), 30, what="hub saw the router go"
        )
        # the feed is the hub's own: it keeps serving
        assert (await getJSON(hub, "/api/status"))["type"] == "status_update"

        router.start()
        await waitUntil(lambda: _is(wampHealth(hub), "joined"), 30, what="hub rejoined")
        current = await getJSON(hub, "/api/status")
        # The client reconnects by itself, on its own schedule, and is not
        # left behind: if it subscribed before the hub rejoined, it gets the
        # picture the hub republishes on rejoin; if after, its get_status
        # (answered by the hub's new registration) gives it.  Which one comes
        # first is a race between two reconnect timers, so either counts.
        def caughtUp() -> list[dict]:
            return [
                e for e in client.events[before:]
                if e["kind"] in ("status", "get_status") and e["message"] == current
            ]

        await waitUntil(caughtUp, 30, what="the Node client to get the current picture")
        assert any(e["kind"] == "left" for e in client.events[before:])
        # the hub joined twice: once at start, once after the restart
        joins = [line for line in hub.log if "joined WAMP realm" in line]
        assert len(joins) == 2, joins

        # /ws/status clients never noticed: same connection, no gap, nothing new
        assert not feed.closed
        assert feed.messages[-1]["seq"] == current["seq"]
        seqs = [m["seq"] for m in feed.messages]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    finally:
        await feed.close()


@pytest_twisted.ensureDeferred
async def test_example_page_and_its_files_are_served(
    hub_process: Any, crossbar_router: Any
) -> None:
    router = crossbar_router(start=False)
    hub = startHub(hub_process, router)
    page = await treq.get(f"{hub.url}/examples/wamp.html")
    assert page.code == 200
    html = (await page.content()).decode()
    # the page loads its scripts with its own ?token= (the hub may want one)
    assert '["autobahn.min.js", "wamp.js"]' in html
    index = await treq.get(f"{hub.url}/examples/")
    assert index.code == 200 and (await index.content()).decode() == html

    info = await getJSON(hub, "/examples/wamp.json")
    assert info == {"url": router.hubUrl, "realm": "statushub", "prefix": "io.statushub"}
    assert router.ticket not in json.dumps(info)

    bundle = await treq.get(f"{hub.url}/examples/autobahn.min.js")
    assert bundle.code == 200
    assert bundle.headers.getRawHeaders("content-type")[0].startswith("text/javascript")
    assert hashlib.sha256(await bundle.content()).hexdigest() == AUTOBAHN_MIN_JS_SHA256


@pytest.mark.docker
@pytest_twisted.ensureDeferred
async def test_autobahn_js_client_sees_a_real_deployment_and_a_killed_container(
    hub_process: Any, crossbar_router: Any, wamp_client: Any, docker: Any
) -> None:
    router = crossbar_router()
    hub = startHub(
        hub_process,
        router,
        config="[polling]\ninterval = 0.5\n",
        DOCKER_HOST=docker.host,
    )
    await waitUntil(lambda: _is(wampHealth(hub), "joined"), 20, what="hub joined")
    client = wamp_client(router.url)
    got = await client.waitFor(lambda e: e["kind"] == "get_status")
    assert got["message"]["deployStatus"] == "idle"

    topology = {
        "name": "wampdemo",
        "nodes": [
            {"id": "web", "image": IMAGE, "command": SERVICE},
            {"id": "db", "image": IMAGE, "command": SERVICE},
        ],
    }
    code, body = await post(hub, topology)
    assert code == 202, body

    def status(predicate: Any) -> Any:
        return lambda e: e["kind"] == "status" and predicate(e["message"])

    deploying = await client.waitFor(status(lambda m: m["deployStatus"] == "deploying"))
    deployed = await client.waitFor(
        status(
            lambda m: m["deployStatus"] == "deployed"
            and [n["status"] for n in m["nodeStatuses"]] == ["running", "running"]
        ),
        timeout=60,
    )
    assert deploying["message"]["seq"] < deployed["message"]["seq"]

    web = deployed["message"]["nodeStatuses"][0]
    assert web["nodeId"] == "web"
    docker.docker("kill", web["containerId"])
    exited = await client.waitFor(
        status(lambda m: m["seq"] > deployed["message"]["seq"] and nodeStatus(m, 0) == "exited"),
        timeout=60,
    )
    assert exited["message"]["nodeStatuses"][1]["status"] == "running"
    # what the Autobahn JS client saw is what the hub says
    assert exited["message"]["seq"] <= (await getJSON(hub, "/api/status"))["seq"]
    await treq.delete(f"{hub.url}/api/deployment")
    await client.waitFor(
        status(lambda m: m["deployStatus"] == "idle" and m["seq"] > exited["message"]["seq"]),
        timeout=60,
    )
