"""
The reference for the polling-cost benchmark: the naive poll, one inspect per
container, each on Twisted's thread pool as the hub's engine calls are, the
result put on a StatusBoard as the hub does.  Same control channel as the
servers (STATS for CPU, COUNTERS for polls done).

    python bench/naive_poller.py --docker-host unix:///... --deployment NAME
"""

from __future__ import annotations

import argparse

import docker
from twisted.internet import reactor
from twisted.internet.defer import ensureDeferred
from twisted.internet.task import LoopingCall
from twisted.internet.threads import deferToThread

from common import Controlled
from twisted_control import serveControl

from statushub.engine import DEPLOYMENT_LABEL, NODE_LABEL
from statushub.status import NodeStatus, Picture, StatusBoard


class NaivePoller:
    def __init__(self, host: str, deployment: str) -> None:
        self.api = docker.APIClient(base_url=host)
        self.deployment = deployment
        self.board = StatusBoard(reactor)
        self.polls = 0
        self.ids: list[tuple[str, str]] = []

    def find(self) -> None:
        # once, at start: which containers to inspect from then on
        rows = self.api.containers(
            all=True, filters={"label": f"{DEPLOYMENT_LABEL}={self.deployment}"}
        )
        self.ids = [(row["Labels"].get(NODE_LABEL, row["Id"][:12]), row["Id"]) for row in rows]

    async def poll(self) -> None:
        nodes = []
        for nodeId, containerId in self.ids:
            info = await deferToThread(self.api.inspect_container, containerId)
            state = info["State"]
            health = (state.get("Health") or {}).get("Status")
            nodes.append(NodeStatus(nodeId, containerId, state["Status"],
                                    health if health in ("starting", "healthy", "unhealthy")
                                    else None))
        self.board.update(Picture(deployStatus="deployed", nodeStatuses=tuple(nodes),
                                  deployment=self.deployment, engine="reachable"))
        self.polls += 1

    def tick(self):
        # guarded: a LoopingCall whose call fails stops for good
        return ensureDeferred(self.poll()).addErrback(lambda f: print(f, flush=True))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--docker-host", required=True)
    parser.add_argument("--deployment", required=True)
    parser.add_argument("--interval", type=float, default=1.0)
    args = parser.parse_args()
    poller = NaivePoller(args.docker_host, args.deployment)
    poller.find()
    LoopingCall(poller.tick).start(args.interval, now=True)
    serveControl(
        Controlled(broadcast=lambda message: None, clients=lambda: len(poller.ids),
                   counters=lambda: {"polls": poller.polls}),
        0,
    )
    reactor.run()


if __name__ == "__main__":
    main()
