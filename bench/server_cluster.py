"""
One hub of a cluster under test (issue 21): the real service tree
(statushub.tap's makeService with [cluster] redis), on an ephemeral loopback
port.  BROADCAST on the leader is a change of the picture of deployment
"bench" on the leader's board: numbered there, written to Redis by the fenced
script, shown to this hub's clients once Redis confirmed it and to the other
hubs' from the subscription: the whole path.  On a follower BROADCAST is an
error; COUNTERS says whether the hub leads and the last seq of "bench".

    python bench/server_cluster.py --redis redis://127.0.0.1:PORT/0 [--lease 5]
"""

from __future__ import annotations

import argparse
import os
import tempfile

from twisted.application.internet import StreamServerEndpointService
from twisted.internet import reactor

from common import Controlled, raiseFileLimit
from server_hub import findHub
from twisted_control import serveControl

from statushub.cluster.service import ClusterService
from statushub.status import Picture
from statushub.tap import Options, makeService

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", default=os.path.join(ROOT, "etc", "statushub.toml"))
    parser.add_argument("--redis", required=True)
    parser.add_argument("--lease", type=float, default=5.0)
    args = parser.parse_args()

    raiseFileLimit()
    options = Options()
    options.parseOptions(["--config", args.config, "--listen", "tcp:0:interface=127.0.0.1"])
    options.config.override("cluster", "redis", args.redis)
    options.config.override("cluster", "lease", args.lease)
    # no engine: the leader's orchestrator finds none, and says so once
    scratch = tempfile.TemporaryDirectory(prefix="statushub-bench-")
    options.config.override("engine", "url", f"unix://{scratch.name}/none.sock")
    service = makeService(options, reactor)
    hub = findHub(service)
    cluster = next(s for s in service if isinstance(s, ClusterService))

    def broadcast(message: dict) -> None:
        term = cluster.leaderOnly.current
        if term is None:
            raise RuntimeError("this hub does not lead")
        picture = Picture.fromMessage(message)
        # numbered by the board: a seq ahead of it is reached first (the
        # harness starts far from the small seqs of the idle picture)
        while term.board.current("bench")["seq"] < message["seq"] - 1:
            term.board.update(picture.evolve(error=f"ahead {term.board.current('bench')['seq']}"))
        term.board.update(picture.evolve(error=f"bench {message['seq']}"))
        given = term.board.current("bench")["seq"]
        if given != message["seq"]:
            raise RuntimeError(f"numbered {given}, not {message['seq']}")

    def counters() -> dict:
        return {
            "leader": cluster.leadership.isLeader and cluster.leaderOnly.current is not None,
            "seq": cluster.mirror.last("bench"),
        }

    site = next(s for s in service if isinstance(s, StreamServerEndpointService))
    service.privilegedStartService()
    service.startService()
    reactor.addSystemEventTrigger("before", "shutdown", service.stopService)

    def listening(port):
        serveControl(
            Controlled(broadcast=broadcast, clients=lambda: len(hub), counters=counters),
            port.getHost().port,
        )
        return port

    site._waitingForPort.addCallback(listening)
    reactor.run()


if __name__ == "__main__":
    main()
