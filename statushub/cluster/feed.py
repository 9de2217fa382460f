"""
The subscription every hub of a cluster keeps: every message written (to
its mirror), the change requests handed to it (when it leads), and the
answers to the requests it handed on.

One thread of its own blocks on the subscription (redis-py); what it hears
goes to the reactor thread.  Pub/sub is at-most-once: after every
(re)subscription the mirror is levelled with a full read of Redis, and a
gap between two messages is filled from the history (L{Mirror}).  While
Redis is away the thread tries again every C{retry} seconds; the hub serves
what its mirror holds meanwhile.
"""

from __future__ import annotations

import json
import threading
from typing import Any, Callable, Optional

import redis
from twisted.application.service import Service
from twisted.logger import Logger

from statushub.cluster.history import readState
from statushub.cluster.mirror import ClusterState, Mirror


class ClusterFeed(Service):
    """
    @param connection: a L{statushub.cluster.connection.RedisConnection}.
    @param onRequest: told the id of every change request handed to this
        hub (reactor thread).
    @param onReply: told every answer (a dict) to a request this hub handed
        on (reactor thread).
    @param retry: seconds between tries while Redis does not answer.
    @ivar synced: how many full reads have levelled the mirror.
    """

    log = Logger()

    def __init__(
        self,
        connection: Any,
        hubId: str,
        mirror: Mirror,
        reactor: Any,
        onRequest: Callable[[str], None] = lambda requestId: None,
        onReply: Callable[[dict], None] = lambda reply: None,
        retry: float = 0.5,
    ) -> None:
        self._connection = connection
        self._reactor = reactor
        self._mirror = mirror
        mirror.outOfStep = self.sync
        self.onRequest = onRequest
        self.onReply = onReply
        self._retry = retry
        keys = connection.keys
        self._feedChannel = keys.feed
        self._channels = {
            keys.feed: self._message,
            keys.requests(hubId): self._request,
            keys.replies(hubId): self._reply,
        }
        self._stopping = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._syncing = False
        self._resync = False
        self.synced = 0

    def startService(self) -> None:
        super().startService()
        self._stopping.clear()
        self._thread = threading.Thread(
            target=self._listen, name="statushub-cluster-feed", daemon=True
        )
        self._thread.start()

    def stopService(self) -> None:
        super().stopService()
        # the thread sees it within a second (its read times out that often)
        self._stopping.set()
        self._thread = None

    # -- the thread ----------------------------------------------------

    def _listen(self) -> None:
        while not self._stopping.is_set():
            client = self._connection.newClient(timeout=max(5.0, self._connection.timeout))
            pubsub = client.pubsub()
            try:
                pubsub.subscribe(*self._channels)
                while not self._stopping.is_set():
                    event = pubsub.get_message(timeout=1.0)
                    if event is None:
                        continue
                    if event["type"] == "subscribe":
                        # (again, if redis-py reconnected by itself): from
                        # now on nothing published is missed; what was
                        # before, the full read brings
                        if event["channel"] == self._feedChannel:
                            self._reactor.callFromThread(self._subscribed)
                    elif event["type"] == "message":
                        handle = self._channels.get(event["channel"])
                        if handle is not None:
                            handle(event["data"])
            except (redis.RedisError, OSError) as e:
                self._reactor.callFromThread(self._lost, e)
                self._stopping.wait(self._retry)
            finally:
                try:
                    pubsub.close()
                    client.close()
                except Exception:
                    pass

    # (these three run in the thread: they parse, the reactor applies)

    def _message(self, data: str) -> None:
        try:
            message = json.loads(data)
        except ValueError:
            self._reactor.callFromThread(
                self.log.error, "cluster: not a message on the feed: {data!r}", data=data[:200]
            )
            return
        self._reactor.callFromThread(self._mirror.receive, message)

    def _request(self, data: str) -> None:
        self._reactor.callFromThread(self.onRequest, data)

    def _reply(self, data: str) -> None:
        try:
            reply = json.loads(data)
        except ValueError:
            return
        self._reactor.callFromThread(self.onReply, reply)

    # -- the reactor thread --------------------------------------------

    def _subscribed(self) -> None:
        self._connection.reached(True)
        self.sync()

    def _lost(self, error: Exception) -> None:
        if self._connection.reachable is not False:
            self.log.warn("cluster: the subscription to Redis broke: {error}", error=error)
        self._connection.reached(False)

    def sync(self) -> None:
        """
        Level the mirror with a full read of Redis (one at a time; one more
        when asked meanwhile).
        """
        if self._syncing:
            self._resync = True
            return
        self._syncing = True

        def read(state: ClusterState) -> None:
            self._mirror.sync(state)
            self.synced += 1

        def failed(failure: Any) -> None:
            self.log.info("cluster: cannot read the cluster's state: {error}",
                          error=failure.getErrorMessage())

        def done(_: Any) -> None:
            self._syncing = False
            if self._resync:
                self._resync = False
                self.sync()

        readState(self._connection).addCallbacks(read, failed).addBoth(done)
