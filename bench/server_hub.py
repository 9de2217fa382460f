"""
The statushub hub under test: the real service tree (statushub.tap's
makeService: the twisted.web site serving /ws/status, the hub factory,
keep-alive), configured from etc/statushub.toml but listening on an ephemeral
loopback port.  A broadcast goes through the real path,
StatusHubFactory.broadcast(message).

    python bench/server_hub.py [--config etc/statushub.toml] [--metrics on|off]
                               [--history on|off] [--busy-logs N]

With the history on (the default, as in a real hub) each broadcast message
is first handed to the history (a database in a temporary directory), as
the status board does, then broadcast.

With --busy-logs N (the C{hub-logs} server) the hub also serves N followers
of a node printing 1,000 lines a second (bench/busylogs.py) all along.
"""

from __future__ import annotations

import argparse
import os
import tempfile

from twisted.application.internet import StreamServerEndpointService
from twisted.internet import reactor

from common import Controlled, raiseFileLimit
from twisted_control import serveControl

from statushub.history.service import HistoryService
from statushub.hub import StatusHubFactory
from statushub.hub.keepalive import KeepAlive
from statushub.tap import Options, makeService

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def findHub(service) -> StatusHubFactory:
    for child in service:
        if isinstance(child, KeepAlive):
            return child._hub
    raise RuntimeError("no KeepAlive in the service tree: cannot find the hub")


def pollCount(service) -> int:
    """
    Polls the deployment manager has made so far (0 without an orchestrator).
    """
    for child in service:
        manager = getattr(child, "manager", None)
        poller = getattr(manager, "poller", None)
        if poller is not None:
            return poller.polls
    return 0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", default=os.path.join(ROOT, "etc", "statushub.toml"))
    parser.add_argument("--metrics", choices=("on", "off"), default="on",
                        help="count Prometheus metrics ([metrics] enabled)")
    parser.add_argument("--history", choices=("on", "off"), default="on",
                        help="keep every message in SQLite ([history] enabled)")
    parser.add_argument("--busy-logs", type=int, default=0, metavar="N",
                        help="N followers of a node printing 1,000 lines a second")
    args = parser.parse_args()

    raiseFileLimit()
    busy = None
    if args.busy_logs:
        from busylogs import BusyLogs

        busy = BusyLogs(args.busy_logs)
    options = Options()
    options.parseOptions(["--config", args.config, "--listen", "tcp:0:interface=127.0.0.1"])
    options.config.override("metrics", "enabled", args.metrics == "on")
    options.config.override("history", "enabled", args.history == "on")
    scratch = tempfile.TemporaryDirectory(prefix="statushub-bench-")
    options.config.override("history", "path", os.path.join(scratch.name, "history.db"))
    if busy is not None:
        busy.configure(options)
    service = makeService(options, reactor)
    hub = findHub(service)
    history = next((s.store for s in service if isinstance(s, HistoryService)), None)

    def broadcast(message: dict) -> None:
        # the board's order: the history first, then the clients
        if history is not None:
            history.append(message)
        hub.broadcast(message)

    site = next(s for s in service if isinstance(s, StreamServerEndpointService))

    service.privilegedStartService()
    service.startService()
    reactor.addSystemEventTrigger("before", "shutdown", service.stopService)

    def listening(port):
        def ready(ignored=None):
            serveControl(
                Controlled(
                    broadcast=broadcast,
                    clients=lambda: len(hub),
                    counters=lambda: {"polls": pollCount(service)},
                ),
                port.getHost().port,
            )

        if busy is None:
            ready()
        else:
            # READY once every log follower follows
            busy.start(service, reactor, port.getHost().port).addCallbacks(
                ready, lambda failure: (failure.printTraceback(), reactor.stop()))
        return port

    site._waitingForPort.addCallback(listening)
    try:
        reactor.run()
    finally:
        if busy is not None:
            busy.stop()


if __name__ == "__main__":
    main()
