"""
A hub with busy log followers beside its status feed, for the fan-out
benchmark's C{hub-logs} server (C{server_hub.py --busy-logs N}): a private
dockerd (tests/fixtures/docker.py), one node deployed through the hub that
prints 1,000 numbered lines a second (bench/logs.py's talker), and N
followers of its log at /ws/logs, reading in a process of their own
(bench/logclients.py).  The status broadcasts are then measured while the
hub also sends every follower ten log batches a second.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.task import deferLater

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

from logs import talker  # noqa: E402

from tests.fixtures.docker import IMAGE, privateEngine  # noqa: E402

NAME = "benchbusy"


class BusyLogs:
    """
    Start the engine with L{__init__} (blocking, before the reactor runs),
    point the hub's config at it with L{configure}, then L{start} once the
    hub serves; L{stop} ends everything.
    """

    def __init__(self, followers: int, rate: int = 1000) -> None:
        self.followers = followers
        self.rate = rate
        self._engine = privateEngine()
        self.engine = self._engine.__enter__()
        self._clients: subprocess.Popen | None = None

    def configure(self, options: Any) -> None:
        options.config.override("engine", "url", self.engine.host)

    def start(self, service: Any, reactor: Any, port: int) -> "Deferred[None]":
        """
        Deploy the talker through the hub, connect the followers; fire once
        all of them are following.
        """
        return ensureDeferred(self._start(service, reactor, port))

    async def _start(self, service: Any, reactor: Any, port: int) -> None:
        from statushub.deploy.service import Orchestrator
        from statushub.insight.service import InsightService
        from statushub.topology import validateTopology

        orchestrator = next(s for s in service if isinstance(s, Orchestrator))
        insight = next(s for s in service if isinstance(s, InsightService))
        await orchestrator.control.deploy(validateTopology({
            "name": NAME,
            "nodes": [{"id": "talker", "image": IMAGE,
                       "command": ["sh", "-c", talker(self.rate)]}],
        }))
        while not any(n.status == "running" for n in orchestrator.locator.locate(NAME)):
            await deferLater(reactor, 0.2, lambda: None)
        url = f"ws://127.0.0.1:{port}/ws/logs?deployment={NAME}&node=talker&tail=0"
        self._clients = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "logclients.py"), url,
             "--clients", str(self.followers), "--duration", "1e9", "--warmup", "0"],
            stdout=subprocess.DEVNULL, cwd=ROOT,
        )
        while len(insight.logFeed) < self.followers:
            await deferLater(reactor, 0.2, lambda: None)

    def stop(self) -> None:
        if self._clients is not None and self._clients.poll() is None:
            self._clients.kill()
            self._clients.wait()
        self._engine.__exit__(None, None, None)
