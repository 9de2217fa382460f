"""
The limits that keep a shared hub serving: the accept backlog, protected
mode and the most feed clients (the request limits: test_request_limits.py).
Unit tests on a fake clock and transport; the rest on real hubs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import pytest_twisted
import treq
from twisted.web.resource import Resource
from twisted.web.test.requesthelper import DummyRequest

from statushub.web.clientlimit import ClientLimit
from tests.fixtures.hubprocess import REPO
from tests.waiting import waitUntil
from tests.wsclient import connectFeed

# ---- the client limit (unit) -----------------------------------------------


class Recording(Resource):
    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.rendered = 0

    def render(self, request: DummyRequest) -> bytes:
        self.rendered += 1
        return b"upgraded"


def test_the_limit_answers_503_without_touching_the_websocket_resource() -> None:
    clients = [object()] * 3
    websocket = Recording()
    limit = ClientLimit(websocket, clients, 3)
    request = DummyRequest([b""])
    body = limit.render(request)
    assert request.responseCode == 503
    assert request.responseHeaders.getRawHeaders(b"retry-after") == [b"5"]
    assert "3 clients" in json.loads(body)["error"]
    assert websocket.rendered == 0
    # one leaves: the next upgrade goes through
    clients.pop()
    assert limit.render(DummyRequest([b""])) == b"upgraded"
    assert websocket.rendered == 1


# ---- on real hubs ---------------------------------------------------------


def listenBacklog(port: int) -> int:
    """
    The accept backlog of the socket listening on C{port}: C{ss} shows it in
    the Send-Q column of a listening socket.
    """
    result = subprocess.run(
        ["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True, check=True
    )
    [line] = result.stdout.splitlines()
    state, recvQ, sendQ, *rest = line.split()
    assert state == "LISTEN"
    return int(sendQ)


def test_the_bound_socket_has_the_backlog(hub_process) -> None:
    assert listenBacklog(hub_process().port) == 1024


def test_a_backlog_named_in_the_listen_option_is_kept(hub_process) -> None:
    hub = hub_process(listen="tcp:{port}:interface=127.0.0.1:backlog=64")
    assert listenBacklog(hub.port) == 64


def runTwistd(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "from twisted.scripts.twistd import run; run()",
         "-n", "--pidfile=", "statushub", *args],
        cwd=tmp_path,
        env={**{k: v for k, v in os.environ.items() if k != "STATUSHUB_TOKEN"},
             "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_protected_mode_stops_twistd_before_it_listens(tmp_path: Path) -> None:
    result = runTwistd(tmp_path, "--listen", "tcp:0:interface=0.0.0.0")
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "protected mode" in output
    assert "[server] token" in output
    assert "[server] allow_anonymous_remote = true" in output
    assert "serving on" not in output


# No engine behind these hubs: they listen on every address, so nothing they
# could be asked to do may reach a real engine.
NO_ENGINE = '[docker]\nhost = "unix:///nonexistent/docker.sock"\n'


@pytest_twisted.ensureDeferred
async def test_with_a_token_the_hub_serves_other_hosts(hub_process) -> None:
    hub = hub_process(
        config='[server]\ntoken = "s3cret-s3cret-s3cret"\n' + NO_ENGINE,
        listen="tcp:{port}:interface=0.0.0.0",
    )
    url = f"http://127.0.0.1:{hub.port}/api/status"
    assert (await treq.get(url)).code == 401
    authorised = await treq.get(url, headers={"Authorization": "Bearer s3cret-s3cret-s3cret"})
    assert authorised.code == 200


@pytest_twisted.ensureDeferred
async def test_with_the_opt_out_the_hub_serves_other_hosts_anonymously(hub_process) -> None:
    hub = hub_process(
        config="[server]\nallow_anonymous_remote = true\n" + NO_ENGINE,
        listen="tcp:{port}:interface=0.0.0.0",
    )
    assert (await treq.get(f"http://127.0.0.1:{hub.port}/api/status")).code == 200


UPGRADE = {
    "Connection": "Upgrade",
    "Upgrade": "websocket",
    "Sec-WebSocket-Version": "13",
    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
}


@pytest_twisted.ensureDeferred
async def test_an_upgrade_over_max_clients_gets_503_and_the_others_carry_on(
    hub_process,
) -> None:
    hub = hub_process(config="[feed]\nmax_clients = 3\n")
    admitted = [await connectFeed(hub.wsUrl) for _ in range(3)]
    for client in admitted:
        await client.waitFor(lambda m: m["type"] == "status_update")

    with pytest.raises(ConnectionError, match="503"):
        await connectFeed(hub.wsUrl)
    refused = await treq.get(hub.url + "/ws/status", headers=UPGRADE)
    assert refused.code == 503
    assert refused.headers.getRawHeaders("retry-after") == ["5"]
    assert "3 clients" in (await refused.json())["error"]

    # the three are still served: each asks for the picture and gets it
    for client in admitted:
        client.send(b'{"type": "get_status"}')
        await waitUntil(lambda: len(client.messages) == 2, what="the picture again")
        assert not client.closed
    health = await (await treq.get(hub.url + "/healthz")).json()
    assert health["clients"] == 3

    # a place that frees up is taken by the next client
    await admitted.pop().close()
    await waitUntil(
        lambda: treq.get(hub.url + "/healthz").addCallback(treq.json_content)
        .addCallback(lambda body: body["clients"] == 2),
        what="the hub to count the client that left",
    )
    admitted.append(await connectFeed(hub.wsUrl))
    for client in admitted:
        await client.close()
