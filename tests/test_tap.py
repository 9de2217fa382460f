"""
The service tree C{makeService} builds, on the real reactor: the order its
parts start and stop in, and a history that is written to the end when the
hub stops.  (The hub as a process, started by twistd: test_hub_process.py.)
"""

from __future__ import annotations

from pathlib import Path

import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import maybeDeferred

from statushub.deploy.service import Orchestrator
from statushub.history.service import HistoryService
from statushub.history.store import openDatabase
from statushub.hub.freezer import ConnectionFreezer
from statushub.hub.keepalive import KeepAlive
from statushub.metrics import GCPauseMetrics
from statushub.insight.service import InsightService
from statushub.status import NodeStatus, Picture
from statushub.tap import AnnouncingEndpointService, Options, makeService


def options(tmp_path: Path) -> Options:
    parsed = Options()
    parsed.parseOptions(["--listen", "tcp:0:interface=127.0.0.1"])
    parsed.config.override("history", "path", str(tmp_path / "h.db"))
    # no engine: the hub serves and says so
    parsed.config.override("engine", "url", f"unix://{tmp_path}/no-engine.sock")
    return parsed


def test_treeInStartOrder(tmp_path: Path) -> None:
    service = makeService(options(tmp_path), reactor)
    kinds = [type(child) for child in service]
    assert kinds == [
        HistoryService, Orchestrator, InsightService, KeepAlive, ConnectionFreezer,
        GCPauseMetrics, AnnouncingEndpointService,
    ]


@pytest_twisted.ensureDeferred
async def test_stopsInTurnAndTheHistoryLast(tmp_path: Path) -> None:
    """
    Each child stops once the one started after it has stopped: the port
    first, the insight room's streams before the engine they read from, the
    history last, with every message the board emitted written.
    """
    service = makeService(options(tmp_path), reactor)
    steps: list[str] = []
    for child in service:
        original = child.stopService

        def stop(child=child, original=original):
            name = type(child).__name__
            steps.append(f"stop {name}")
            return maybeDeferred(original).addBoth(
                lambda result: (steps.append(f"stopped {name}"), result)[1]
            )

        child.stopService = stop
    hub = next(child for child in service if isinstance(child, KeepAlive))._hub
    board = hub._source
    service.privilegedStartService()
    service.startService()
    for i in range(300):
        board.update(Picture(
            deployStatus="deployed", deployment="alpha",
            nodeStatuses=(NodeStatus("web", "c1", "running" if i % 2 else "exited"),),
        ))
    await service.stopService()
    # one after another: each starts stopping once the one before is done
    order = [
        "AnnouncingEndpointService", "GCPauseMetrics", "ConnectionFreezer", "KeepAlive",
        "InsightService", "Orchestrator", "HistoryService",
    ]
    assert steps == [step for name in order for step in (f"stop {name}", f"stopped {name}")]
    connection, opened = openDatabase(str(tmp_path / "h.db"))
    try:
        assert opened.lastByName()["alpha"] == 300
        kept = connection.execute(
            "SELECT count(*) FROM messages WHERE deployment = 'alpha'"
        ).fetchone()[0]
        assert kept == 300
    finally:
        connection.close()


def test_withClusterRedisTheTreeIsAClusters(tmp_path: Path) -> None:
    """
    One place chooses: with C{[cluster] redis} the history, the numbering
    and the orchestrator are the cluster's (the orchestrator built each
    term, while this hub leads); the feed and the port are the same.
    Every hub of it, leader or not, reads logs and resource use from the
    engine itself, where the pictures it shows say each node runs.
    """
    from statushub.cluster.mirror import Mirror
    from statushub.cluster.service import ClusterService
    from statushub.insight.locator import SourceLocator

    parsed = options(tmp_path)
    parsed.config.override("cluster", "redis", "redis://127.0.0.1:1/0")
    service = makeService(parsed, reactor)
    kinds = [type(child) for child in service]
    assert kinds == [
        ClusterService, InsightService, KeepAlive, ConnectionFreezer, GCPauseMetrics,
        AnnouncingEndpointService,
    ]
    hub = next(child for child in service if isinstance(child, KeepAlive))._hub
    assert isinstance(hub._source, Mirror)
    insight = next(child for child in service if isinstance(child, InsightService))
    assert isinstance(insight.logHub.locator, SourceLocator)
    assert insight.logHub.locator._source is hub._source
    assert insight.logHub in hub._source._sinks  # a gone container ends its log
    assert not (tmp_path / "h.db").exists()  # no SQLite
