"""
The history of a cluster, in Redis: a stream per deployment whose entry ids
are C{SEQ-0} (so a page after a seq is one range read), a hash of every
deployment's last seq (it outlives pruning), a hash of the current
messages, and a stream of what was written in which order, from which the
oldest go (C{[history] keep_days}, C{max_messages}, all deployments
together).  Written only by the leader's fenced script
(L{statushub.cluster.writer}); read by every hub.
"""

from __future__ import annotations

import json
from typing import Any, Optional

import redis
from twisted.internet.defer import Deferred
from twisted.python.failure import Failure
from zope.interface import implementer

from statushub.cluster.connection import deploymentKey, deploymentName
from statushub.cluster.mirror import ClusterState, Mirror
from statushub.historypage import HistoryUnavailable, Page
from statushub.interfaces import IHealthCheck, IHistory


def readState(connection: Any) -> "Deferred[ClusterState]":
    """
    Everything the pictures need, in one round trip: the epoch, every
    deployment's last seq, the current messages.
    """
    keys = connection.keys

    def read(client: redis.Redis) -> ClusterState:
        pipe = client.pipeline(transaction=True)
        pipe.get(keys.epoch)
        pipe.hgetall(keys.last)
        pipe.hgetall(keys.current)
        epoch, last, current = pipe.execute()
        return ClusterState(
            epoch or "",
            {deploymentName(k): int(v) for k, v in last.items()},
            {deploymentName(k): json.loads(v) for k, v in current.items()},
        )

    return connection.call(read)


def fetch(connection: Any, deployment: Optional[str], after: int, upto: int) -> "Deferred[list[dict]]":
    """
    The stored messages of C{deployment} with a seq above C{after}, up to
    C{upto}, oldest first (what is pruned is not there).
    """
    stream = connection.keys.history(deployment)

    def read(client: redis.Redis) -> list[dict]:
        entries = client.xrange(stream, f"{after + 1}-0", f"{upto}-0")
        return [json.loads(fields["m"]) for _, fields in entries]

    return connection.call(read)


@implementer(IHistory, IHealthCheck)
class RedisHistory:
    """
    L{IHistory} on the cluster's Redis, as every hub serves it.

    A page never goes past what this hub's mirror has shown (C{last} and
    the messages are cut there): a client that resumes gets the rest live,
    from the mirror, with nothing sent twice at the seam.

    @param mirror: this hub's mirror; L{None}: pages as Redis has them.
    @ivar writer: the leader's L{statushub.cluster.writer.FencedWriter}
        while this hub leads: L{append} hands messages to it.
    """

    name = "history"

    def __init__(self, connection: Any, mirror: Optional[Mirror] = None) -> None:
        self._connection = connection
        self._mirror = mirror
        self.writer: Any = None

    def append(self, message: dict) -> None:
        """
        Keep C{message}: on a cluster only the leader's fenced writer keeps
        anything, so the message goes to it (while this hub leads; a
        follower keeps nothing of its own).
        """
        if self.writer is not None:
            self.writer.broadcast(message)

    def page(
        self, deployment: Optional[str], since: int = 0, limit: int = 1000, after: Any = None
    ) -> "Deferred[Page]":
        keys = self._connection.keys
        d = self._connection.script(
            "page",
            [keys.last, keys.history(deployment)],
            [deploymentKey(deployment), since, limit, "" if after is None else repr(float(after))],
        )

        def answer(reply: list[Any]) -> Page:
            last, first = int(reply[0]), int(reply[1])
            seqs, bodies = reply[2::2], reply[3::2]
            if self._mirror is not None:
                shown = self._mirror.last(deployment)
                if last > shown:
                    bodies = [b for s, b in zip(seqs, bodies) if int(s) <= shown]
                    last = shown
            return Page(first, last, list(bodies))

        def unavailable(failure: Failure) -> Failure:
            if failure.check(redis.RedisError):
                return Failure(HistoryUnavailable("the cluster's Redis does not answer"))
            return failure

        return d.addCallbacks(answer, unavailable)

    def health(self) -> str:
        return "unreachable" if self._connection.reachable is False else "ok"
