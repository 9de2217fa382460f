"""
C{/metrics} end to end: behind the token on the real hub process, and
scraped every second by a real Prometheus server (Debian's), whose HTTP API
the tests ask what it saw: clients, messages, deployments, drops, the engine
going away and coming back.  The dashboard's queries and the alert rules
run on that Prometheus too.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
import treq
from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol
from twisted.application.internet import StreamServerEndpointService
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.threads import deferToThread

from statushub.hub.keepalive import KeepAlive
from statushub.tap import Options, makeService
from tests.fixtures.hubprocess import REPO
from tests.fixtures.prometheus import scrapeConfig
from tests.hubapi import topology
from tests.waiting import waitUntil
from tests.wsclient import connectFeed

DASHBOARD = REPO / "etc" / "grafana" / "statushub.json"
TOKEN = "metrics-test-token"
VIEWER = "metrics-test-viewer"
TOKENS = f'[server]\ntoken = "{TOKEN}"\nviewer_token = "{VIEWER}"\n'


def bearer(token: str = TOKEN) -> dict[str, list[str]]:
    return {"Authorization": [f"Bearer {token}"]}


@pytest_twisted.ensureDeferred
async def test_metrics_for_the_viewer_or_the_operator(hub_process) -> None:
    hub = hub_process(config=TOKENS)
    refused = await treq.get(hub.url + "/metrics")
    assert refused.code == 401
    assert "token" in (await refused.json())["error"]
    wrong = await treq.get(hub.url + "/metrics", headers=bearer("nope"))
    assert wrong.code == 401

    served = await treq.get(hub.url + "/metrics", headers=bearer(VIEWER))
    assert served.code == 200
    assert served.headers.getRawHeaders("content-type")[0].startswith("text/plain")
    text = (await served.content()).decode()
    assert re.search(r"^statushub_feed_clients 0\.0$", text, re.MULTILINE)
    assert "statushub_process_resident_memory_bytes" in text
    # the freezer's first step, a full collection as the hub starts, was timed
    full = re.search(r'^statushub_gc_pause_seconds_count\{generation="gen2"\} (\S+)$', text,
                     re.MULTILINE)
    assert full is not None and float(full.group(1)) >= 1
    assert (await treq.get(hub.url + "/metrics", headers=bearer(TOKEN))).code == 200
    byQuery = await treq.get(f"{hub.url}/metrics?token={VIEWER}")
    assert byQuery.code == 200


@pytest_twisted.ensureDeferred
async def test_metrics_open_without_token_and_gone_when_off(hub_process) -> None:
    open_ = hub_process()
    assert (await treq.get(open_.url + "/metrics")).code == 200
    off = hub_process(config="[metrics]\nenabled = false\n")
    assert (await treq.get(off.url + "/metrics")).code == 404
    # the rest of the hub does not mind
    assert (await treq.get(off.url + "/api/status")).code == 200


async def api(hub: Any, method: str, path: str, body: Any = None) -> int:
    response = await treq.request(
        method,
        f"{hub.url}{path}",
        data=None if body is None else json.dumps(body).encode(),
        headers={**bearer(), "content-type": ["application/json"]},
    )
    await response.content()
    return response.code


def dashboardQueries() -> list[tuple[str, str]]:
    """
    Every query of the Grafana dashboard, as Grafana would send it for all
    hubs: C{(panel title, PromQL)}.
    """
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [
        (panel["title"], target["expr"]
         .replace("$instance", ".*").replace("$__rate_interval", "1m"))
        for panel in panels
        for target in panel["targets"]
    ]


@pytest.mark.docker
@pytest_twisted.ensureDeferred
async def test_prometheus_scrapes_the_hub(hub_process, docker, prometheus, tmp_path: Path) -> None:
    hub = hub_process(
        config=(
            TOKENS
            + "[polling]\ninterval = 0.5\n"
            "[docker]\ntimeout = 2\n"
        ),
        env={"DOCKER_HOST": docker.host},
    )
    tokenFile = tmp_path / "statushub.token"
    tokenFile.write_text(VIEWER + "\n")
    server = prometheus(scrapeConfig(f"127.0.0.1:{hub.port}", tokenFile))
    # Prometheus gets in with the viewer token from the file
    await server.waitFor('up{job="statushub"}', lambda v: v == 1)

    clients = [await connectFeed(hub.wsUrl, token=VIEWER) for _ in range(3)]
    try:
        assert await server.waitFor("statushub_feed_clients", lambda v: v == 3) == 3
        await server.waitFor("statushub_engine_up", lambda v: v == 1)
        before = await server.value("statushub_status_messages_total")
        assert before is not None

        assert await api(hub, "POST", "/api/deployment", topology(nodes=2)) == 202
        await server.waitFor("statushub_status_messages_total", lambda v: v > before)
        await server.waitFor('statushub_deployments{status="deployed"}', lambda v: v == 1)
        await server.waitFor('sum(statushub_nodes{status="running"})', lambda v: v == 2)
        await server.waitFor('statushub_deploys_total{outcome="succeeded"}', lambda v: v == 1)
        await server.waitFor('statushub_engine_calls_total{operation="create"}',
                             lambda v: v == 2)
        await server.waitFor("statushub_poll_duration_seconds_count", lambda v: v and v > 0)

        # every query of the dashboard is valid PromQL with data behind it
        # while deployed (WAMP's only with WAMP configured)
        for title, expr in dashboardQueries():
            if "wamp" in expr:
                await server.query(expr)
                continue
            # a rate needs two scrapes of a series
            await waitUntil(lambda: server.query(expr), timeout=10,
                            what=f"{title}: data for {expr}")

        assert await api(hub, "DELETE", "/api/deployment") == 202
        await server.waitFor('statushub_teardowns_total{outcome="succeeded"}', lambda v: v == 1)
        await server.waitFor('statushub_deployments{status="deployed"}', lambda v: v == 0)

        # the engine goes away, and comes back
        await deferToThread(docker.stop)
        await server.waitFor("statushub_engine_up", lambda v: v == 0, timeout=60)
        await deferToThread(docker.start)
        await server.waitFor("statushub_engine_up", lambda v: v == 1, timeout=60)

        # the shipped alert rules load and evaluate without error
        async def rulesEvaluated() -> list[dict]:
            groups = (await server.getJSON("/api/v1/rules"))["data"]["groups"]
            rules = [rule for group in groups for rule in group["rules"]]
            done = rules and all(r["lastEvaluation"] > "2000" for r in rules)
            return rules if done else []

        rules = await waitUntil(rulesEvaluated, timeout=30, what="the alert rules evaluated")
        assert all(rule["health"] == "ok" for rule in rules), rules
    finally:
        for client in clients:
            await client.close()


class StalledClientProtocol(WebSocketClientProtocol):
    """
    Completes the handshake, then stops reading from its socket.
    """

    def onOpen(self) -> None:
        self.transport.pauseProducing()
        self.factory.opened.callback(self)


@pytest_twisted.ensureDeferred
async def test_prometheus_sees_a_slow_client_dropped(prometheus, tmp_path: Path) -> None:
    """
    The hub's service tree in the test's reactor, so that the test can
    broadcast large messages until a client that stopped reading is dropped.
    """
    options = Options()
    options.parseOptions(["--listen", "tcp:0:interface=127.0.0.1"])
    for section, key, value in [
        ("server", "token", TOKEN),
        ("feed", "max_send_buffer", 256 * 1024),
        # no engine: this test is about the feed
        ("docker", "host", f"unix://{tmp_path}/no-engine.sock"),
        ("events", "enabled", False),
    ]:
        options.config.override(section, key, value)
    service = makeService(options, reactor)
    hub = next(child._hub for child in service if isinstance(child, KeepAlive))
    site = next(c for c in service if isinstance(c, StreamServerEndpointService))
    service.privilegedStartService()
    service.startService()
    stalled = None
    try:
        port = (await site._waitingForPort).getHost().port
        wsUrl = f"ws://127.0.0.1:{port}/ws/status"
        tokenFile = tmp_path / "statushub.token"
        tokenFile.write_text(TOKEN)
        server = prometheus(scrapeConfig(f"127.0.0.1:{port}", tokenFile))

        reader = await connectFeed(wsUrl, token=TOKEN)
        factory = WebSocketClientFactory(wsUrl, headers={"Authorization": f"Bearer {TOKEN}"})
        factory.protocol = StalledClientProtocol
        factory.opened = Deferred()
        await TCP4ClientEndpoint(reactor, "127.0.0.1", port).connect(factory)
        stalled = await factory.opened
        await server.waitFor("statushub_feed_clients", lambda v: v == 2)
        assert await server.value(
            'statushub_feed_clients_dropped_total{reason="slow"}') == 0

        pad = "x" * 65536
        sent = 0
        while len(hub) == 2:
            assert sent < 2000, "the stalled client was never dropped"
            hub.broadcast({"type": "status_update", "n": sent, "pad": pad})
            sent += 1
            await waitUntil(lambda: len(reader.messages) == 1 + sent, timeout=30)

        await server.waitFor('statushub_feed_clients_dropped_total{reason="slow"}',
                             lambda v: v == 1)
        await server.waitFor("statushub_feed_clients", lambda v: v == 1)
        await reader.close()
    finally:
        if stalled is not None:
            stalled.transport.abortConnection()
        for client in hub:
            client.dropConnection(abort=True)
        await service.stopService()
