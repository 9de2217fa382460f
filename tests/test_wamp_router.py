"""
The WAMP sink against a real Crossbar.io router on the committed node config,
with real Autobahn JS (Node) clients.
"""

from __future__ import annotations

import re
from contextlib import asynccontextmanager
import subprocess
from pathlib import Path
from typing import Any, AsyncIterator

import pytest
import pytest_twisted
from twisted.internet import reactor

from statushub.status import NodeStatus, StatusBoard
from statushub.wamp import WampStatusSink
from tests.fixtures.crossbar import REPO, LineReader
from tests.waiting import waitUntil

ROUTER_WORKER = re.compile(r"\[Router\s+(\d+)")

pytestmark = pytest.mark.wamp


def isKind(kind: str) -> Any:
    return lambda event: event["kind"] == kind


def sinkFor(router: Any, board: StatusBoard, **kwargs: Any) -> WampStatusSink:
    sink = WampStatusSink(
        reactor,
        board,
        router.hubUrl,
        "statushub",
        ticket=kwargs.pop("ticket", router.ticket),
        retryPolicy=lambda attempt: 0.2,
        **kwargs,
    )
    board.addSink(sink)
    return sink


@asynccontextmanager
async def joinedSink(router: Any, board: StatusBoard) -> AsyncIterator[WampStatusSink]:
    """
    A sink on C{router}, joined; stopped on the way out, whatever happened.
    """
    sink = sinkFor(router, board)
    sink.startService()
    try:
        await waitUntil(lambda: sink.health() == "joined", 20, what="hub joined")
        yield sink
    finally:
        await sink.stopService()


@pytest_twisted.ensureDeferred
async def test_autobahn_js_client_gets_status_and_every_change(
    crossbar_router: Any, wamp_client: Any
) -> None:
    router = crossbar_router()
    board = StatusBoard(reactor)
    async with joinedSink(router, board):
        board.change(deployStatus="deploying", deployment="demo")

        client = wamp_client(router.url)
        got = await client.waitFor(isKind("get_status"))
        assert got["message"] == board.current("demo")
        assert got["message"]["deployStatus"] == "deploying"

        board.change(
            "demo",
            deployStatus="deployed",
            nodeStatuses=(NodeStatus("web", "c1", "running", "healthy"),),
        )
        event = await client.waitFor(
            lambda e: e["kind"] == "status"
            and e["message"]["seq"] == board.current("demo")["seq"]
        )
        # the same JSON object as the feed, as the single positional argument
        assert event["message"] == board.current("demo")
        assert event["message"]["nodeStatuses"] == [
            {"nodeId": "web", "containerId": "c1", "status": "running", "health": "healthy"}
        ]


@pytest_twisted.ensureDeferred
async def test_each_deployment_on_its_own_topic(
    crossbar_router: Any, wamp_client: Any
) -> None:
    """
    With several deployments, a client of one deployment's topic gets only
    its messages; get_status without a name is refused, naming them;
    list_deployments answers every picture.
    """
    router = crossbar_router()
    board = StatusBoard(reactor)
    async with joinedSink(router, board):
        board.change("web-1", deployStatus="deployed")
        board.change("db", deployStatus="deploying")
        one = wamp_client(router.url, deployment="web-1")
        everything = wamp_client(router.url)
        got = await one.waitFor(isKind("get_status"))
        assert got["message"] == board.current("web-1")
        refused = await everything.waitFor(isKind("get_status_refused"))
        assert refused["error"] == "io.statushub.error.several_deployments"
        assert refused["deployments"] == ["db", "web-1"]
        listed = await everything.waitFor(isKind("list_deployments"))
        assert listed["messages"] == [board.current("db"), board.current("web-1")]
        await one.waitFor(isKind("list_deployments"))  # subscribed by then

        board.change("db", deployStatus="deployed")
        board.change("web-1", deployStatus="tearing_down")
        await everything.waitFor(
            lambda e: e["kind"] == "status" and e["message"]["deployStatus"] == "tearing_down")
        await one.waitFor(
            lambda e: e["kind"] == "status" and e["message"]["deployStatus"] == "tearing_down")
        assert {m["deployment"] for m in one.statuses()} == {"web-1"}
        assert {m["deployment"] for m in everything.statuses()} >= {"db", "web-1"}


@pytest_twisted.ensureDeferred
async def test_client_role_cannot_publish_status_nor_register_get_status(
    crossbar_router: Any, wamp_client: Any
) -> None:
    router = crossbar_router()
    board = StatusBoard(reactor)
    async with joinedSink(router, board):
        follower = wamp_client(router.url)
        await follower.waitFor(isKind("get_status"))

        intruder = wamp_client(router.url, "publish")
        refused = await intruder.waitFor(
            lambda e: e["kind"] in ("publish_refused", "published")
        )
        assert refused == {"kind": "publish_refused", "error": "wamp.error.not_authorized"}
        hijack = await intruder.waitFor(
            lambda e: e["kind"] in ("register_refused", "registered")
        )
        assert hijack == {"kind": "register_refused", "error": "wamp.error.not_authorized"}
        # and nothing reached the subscriber
        board.change(deployStatus="deploying")
        await follower.waitFor(
            lambda e: e["kind"] == "status" and e["message"]["deployStatus"] == "deploying"
        )
        assert all(m["seq"] != 999999 for m in follower.statuses())


@pytest_twisted.ensureDeferred
async def test_wrong_ticket_never_joins(crossbar_router: Any) -> None:
    router = crossbar_router()
    board = StatusBoard(reactor)
    sink = sinkFor(router, board, ticket="not-the-ticket")
    sink.startService()
    try:
        # refused joins are counted, so retries slow down instead of spinning
        await waitUntil(lambda: sink._connectsWithoutJoin >= 2, 20, what="two refused joins")
        assert sink.health() == "disconnected"
        assert sink.joins == 0
    finally:
        await sink.stopService()


def test_scaleout_config_passes_crossbar_check(crossbar_router: Any) -> None:
    router = crossbar_router(config="statushub-scaleout.json", start=False)
    checked = router.check()
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "configuration looks good" in checked.stdout


@pytest_twisted.ensureDeferred
async def test_scaleout_clients_go_through_proxy_workers(
    crossbar_router: Any, wamp_client: Any
) -> None:
    # crossbar check does not look at proxy workers: start them to know
    router = crossbar_router(config="statushub-scaleout.json")
    workers = [("Router", "router_one"), ("Router", "router_two")]
    workers += [("Proxy", "proxy_one"), ("Proxy", "proxy_two")]
    for kind, worker in workers:
        # workers' log lines are relayed through the node, and may come after
        # the node's own "boot complete"
        ready = f'worker "{kind} {worker}" configured and ready'
        await waitUntil(
            lambda: any(ready in line for line in router.output.lines), 30, what=ready
        )
    assert router.url != router.hubUrl

    board = StatusBoard(reactor)
    async with joinedSink(router, board):
        clients = [wamp_client(router.url) for _ in range(3)]
        for client in clients:
            got = await client.waitFor(isKind("get_status"))
            assert got["message"] == board.current()
        board.change(deployStatus="deploying", deployment="demo")
        for client in clients:
            event = await client.waitFor(
                lambda e: e["kind"] == "status" and e["message"]["deployment"] == "demo")
            assert event["message"] == board.current("demo")

        intruder = wamp_client(router.url, "publish")
        refused = await intruder.waitFor(
            lambda e: e["kind"] in ("publish_refused", "published")
        )
        assert refused["kind"] == "publish_refused"

        # the proxies spread the clients over both router workers, so the
        # events and get_status crossed the router-to-router link
        # (each line names the worker process: "[Router      28711]")
        attached = [
            ROUTER_WORKER.search(line).group(1)
            for line in router.output.lines
            if "new session attached" in line and 'authrole="client"' in line
        ]
        assert len(attached) == 4 and len(set(attached)) == 2, attached


@pytest_twisted.ensureDeferred
async def test_scaleout_proxies_never_grant_the_hub_role(crossbar_router: Any) -> None:
    # the proxies take anonymous clients only: the ticket works at the
    # router worker's own port, not through them
    router = crossbar_router(config="statushub-scaleout.json")
    board = StatusBoard(reactor)
    sink = WampStatusSink(
        reactor,
        board,
        router.url,
        "statushub",
        ticket=router.ticket,
        retryPolicy=lambda attempt: 0.2,
    )
    sink.startService()
    try:
        await waitUntil(lambda: sink._connectsWithoutJoin >= 1, 20, what="refused join")
        assert sink.joins == 0
    finally:
        await sink.stopService()


@asynccontextmanager
async def nodeExample(router: Any, board: StatusBoard, tmp_path: Path) -> AsyncIterator[LineReader]:
    """
    The hub's sink joined, and C{examples/node/follow.js} following the
    router; yields the example's output.
    """
    example = REPO / "examples" / "node" / "follow.js"
    if not (example.parent / "node_modules" / "autobahn").exists():
        pytest.fail("examples/node/node_modules is missing: run `make node-deps`")
    sink = sinkFor(router, board)
    sink.startService()
    with open(tmp_path / "example.stderr", "w") as stderr:
        process = subprocess.Popen(
            ["node", str(example), router.url],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            bufsize=1,
        )
    try:
        await waitUntil(lambda: sink.health() == "joined", 20, what="hub joined")
        yield LineReader(process, tmp_path / "example.stdout")
    finally:
        process.terminate()
        process.wait(10)
        await sink.stopService()


def printed(output: LineReader, start: str) -> Any:
    return lambda: [line for line in output.lines if line.startswith(start)]


@pytest_twisted.ensureDeferred
async def test_node_example_prints_each_change(crossbar_router: Any, tmp_path: Path) -> None:
    board = StatusBoard(reactor)
    async with nodeExample(crossbar_router(), board, tmp_path) as output:
        await waitUntil(printed(output, "#0 "), 20, what="the current picture printed")
        board.change(
            deployStatus="deploying",
            deployment="demo",
            nodeStatuses=(NodeStatus("web", "c1", "running", "healthy"),),
        )
        [line] = await waitUntil(printed(output, "#1 "), 20, what="the change printed")
        assert line.split()[2:] == ["demo", "deploying", "web=running/healthy"]


@pytest_twisted.ensureDeferred
async def test_node_example_starts_with_every_deployment(
    crossbar_router: Any, tmp_path: Path
) -> None:
    """
    With several deployments, C{get_status} without a name is refused: the
    example asks for the list instead and prints each one.
    """
    board = StatusBoard(reactor)
    for name in ("beta", "alpha"):
        board.change(deployStatus="deployed", deployment=name,
                     nodeStatuses=(NodeStatus("web", "c1", "running"),))
    async with nodeExample(crossbar_router(), board, tmp_path) as output:
        lines = await waitUntil(
            lambda: len(printed(output, "#")()) >= 2 and printed(output, "#")(), 20,
            what="both deployments printed",
        )
        assert [line.split()[2:4] for line in lines] == [["alpha", "deployed"], ["beta", "deployed"]]
