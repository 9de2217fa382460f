"""
The cluster's Redis, as the reactor sees it: every command runs in a small
thread pool of its own (redis-py blocks), its result handed back as a
Deferred; the key names every part shares; and whether Redis answers.
"""

from __future__ import annotations

import secrets
import socket
import os
from dataclasses import dataclass
from typing import Any, Callable, Optional, TypeVar

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.threadpool import ThreadPool

from statushub.cluster import scripts

T = TypeVar("T")

#: what C{/healthz} says under C{"cluster"} while Redis does not answer
UNREACHABLE = "unreachable"

# the picture of no deployment is filed under this (never a deployment name),
# as in the SQLite history
NO_DEPLOYMENT = ""


def deploymentKey(deployment: Optional[str]) -> str:
    return NO_DEPLOYMENT if deployment is None else deployment


def deploymentName(key: str) -> Optional[str]:
    return None if key == NO_DEPLOYMENT else key


def newHubId() -> str:
    """
    A name for this hub process, unique in the cluster: the host and pid say
    which it is in a log, the random part that it is not an earlier one.
    """
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


@dataclass(frozen=True)
class Keys:
    """
    Where everything lives in Redis, under one prefix per cluster (the
    owner's): hubs with the same C{redis} and owner are one hub.
    """

    prefix: str

    @property
    def lease(self) -> str:
        """The leader's lease: C{"HUB TERM"}, expiring."""
        return f"{self.prefix}:lease"

    @property
    def term(self) -> str:
        """The counter every new leadership takes its term from."""
        return f"{self.prefix}:term"

    @property
    def epoch(self) -> str:
        """The numbering's epoch, set once when the cluster's data is new."""
        return f"{self.prefix}:epoch"

    @property
    def last(self) -> str:
        """A hash: deployment key to its last seq (outlives pruning)."""
        return f"{self.prefix}:last"

    @property
    def current(self) -> str:
        """A hash: deployment key to its current message (current ones only)."""
        return f"{self.prefix}:current"

    @property
    def order(self) -> str:
        """A stream of (deployment key, seq) in writing order: what to prune."""
        return f"{self.prefix}:order"

    @property
    def feed(self) -> str:
        """The channel every written message is published on."""
        return f"{self.prefix}:feed"

    def history(self, deployment: Optional[str]) -> str:
        """
        The stream of a deployment's messages (entry id C{SEQ-0}).
        """
        return f"{self.prefix}:history:{deploymentKey(deployment)}"

    def requests(self, hubId: str) -> str:
        """
        The channel on which hub C{hubId} hears change requests for it.
        """
        return f"{self.prefix}:requests:{hubId}"

    def request(self, requestId: str) -> str:
        return f"{self.prefix}:request:{requestId}"

    def replies(self, hubId: str) -> str:
        return f"{self.prefix}:replies:{hubId}"

    def reply(self, requestId: str) -> str:
        return f"{self.prefix}:reply:{requestId}"


class RedisConnection:
    """
    A redis-py client used from a thread pool of its own; L{call} runs a
    function of the client there and fires with its result in the reactor
    thread.

    @param url: C{redis://HOST:PORT/DB}.
    @param timeout: seconds any one command (and a connect) may take before
        it fails: well under the lease, so a renewal that hangs is known to
        have failed in time.
    @ivar reachable: whether the last command (or subscription) reached Redis.
    """

    log = Logger()

    def __init__(
        self,
        url: str,
        reactor: Any,
        timeout: float = 1.0,
        threads: int = 4,
        prefix: str = "statushub",
    ) -> None:
        self.url = url
        self._reactor = reactor
        self.timeout = timeout
        self.keys = Keys(prefix)
        self.client = self.newClient()
        self._pool = ThreadPool(minthreads=1, maxthreads=threads, name="statushub-redis")
        self._scripts = {
            name: self.client.register_script(text) for name, text in scripts.ALL.items()
        }
        self.reachable: Optional[bool] = None

    def newClient(self, timeout: Optional[float] = None) -> redis.Redis:
        """
        A new client on the same server (the subscription has its own: its
        reads block for as long as nothing is published).
        """
        return redis.Redis.from_url(
            self.url,
            decode_responses=True,
            socket_timeout=self.timeout if timeout is None else timeout,
            socket_connect_timeout=self.timeout,
            # a dead connection found before a command, not by it
            health_check_interval=30,
            # no retries of its own: a command that fails is known to have
            # failed within the timeout, and the parts retry as they need
            # (the lease's next try, the writer's next write)
            retry=Retry(NoBackoff(), 0),
        )

    # -- life cycle ----------------------------------------------------

    def start(self) -> None:
        """
        Start the thread pool (when the service starts: twistd may fork
        before, and threads do not survive that).
        """
        if not self._pool.started:
            self._pool.start()

    def stop(self) -> None:
        """
        Let the commands under way end, stop the threads, close the sockets.
        """
        if self._pool.started:
            self._pool.stop()
        self.client.close()

    # -- commands ------------------------------------------------------

    def call(self, function: Callable[..., T], *args: Any) -> "Deferred[T]":
        """
        Run C{function(client, *args)} in the pool; fire with its result, or
        fail with its exception (a C{redis.RedisError} when Redis cannot be
        reached), in the reactor thread.
        """
        d = deferToThreadPool(self._reactor, self._pool, function, self.client, *args)
        d.addCallbacks(self._succeeded, self._failed)
        return d

    def script(self, name: str, keys: list[str], args: list[Any]) -> "Deferred[Any]":
        """
        Run one of L{scripts.ALL} (EVALSHA, loaded when missing) in the pool.
        """
        script = self._scripts[name]
        return self.call(lambda client: script(keys=keys, args=args, client=client))

    def _succeeded(self, result: T) -> T:
        self.reached(True)
        return result

    def _failed(self, failure: Any) -> Any:
        if failure.check(redis.ConnectionError, redis.TimeoutError):
            self.reached(False)
        return failure

    # -- reachability --------------------------------------------------

    def reached(self, reachable: bool) -> None:
        """
        Note whether Redis answered (a command, or the subscription); log
        when that changes.  Reactor thread only.
        """
        if reachable == self.reachable:
            return
        if reachable:
            self.log.info("cluster: Redis at {url} answers", url=self.url)
        else:
            self.log.warn("cluster: Redis at {url} does not answer", url=self.url)
        self.reachable = reachable
