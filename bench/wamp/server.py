"""
The hub under test for the WAMP path: the real service tree (statushub.tap's
makeService) with the WAMP sink joined on a router, listening on an ephemeral
loopback port.  A broadcast goes to both sinks as the status board would
send it: the WebSocket hub, then the WAMP publisher.

    python bench/wamp/server.py --wamp-url ws://127.0.0.1:PORT/ws
    (STATUSHUB_WAMP_TICKET in the environment)

Speaks the control protocol of bench/common.py; C{clients} counts the
hub's /ws/status clients.
"""

from __future__ import annotations

import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
BENCH = os.path.dirname(HERE)
ROOT = os.path.dirname(BENCH)
sys.path.insert(0, BENCH)
sys.path.insert(0, ROOT)

from twisted.application.internet import StreamServerEndpointService  # noqa: E402
from twisted.internet import reactor  # noqa: E402

from common import Controlled, raiseFileLimit  # noqa: E402
from server_hub import findHub  # noqa: E402
from statushub.tap import Options, makeService  # noqa: E402
from twisted_control import serveControl  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", default=os.path.join(ROOT, "etc", "statushub.toml"))
    parser.add_argument("--wamp-url", required=True)
    args = parser.parse_args()

    raiseFileLimit()
    options = Options()
    options.parseOptions(
        [
            "--config", args.config,
            "--listen", "tcp:0:interface=127.0.0.1",
            "--wamp-url", args.wamp_url,
            "--wamp-realm", "statushub",
        ]
    )
    service = makeService(options, reactor)
    hub = findHub(service)
    wamp = service.getServiceNamed("wamp")
    site = next(s for s in service if isinstance(s, StreamServerEndpointService))

    def broadcast(message: dict) -> None:
        hub.broadcast(message)
        wamp.broadcast(message)

    service.privilegedStartService()
    service.startService()
    reactor.addSystemEventTrigger("before", "shutdown", service.stopService)

    def listening(port):
        serveControl(Controlled(broadcast=broadcast, clients=lambda: len(hub)),
                     port.getHost().port)
        return port

    site._waitingForPort.addCallback(listening)
    reactor.run()


if __name__ == "__main__":
    main()
