"""
The leader's only way into Redis: every message its board makes is written
by one fenced script (L{statushub.cluster.scripts.WRITE}), in order, and
reaches this hub's own clients once Redis has confirmed it, the other hubs'
from the subscription.

A writer belongs to one leadership (a term).  When Redis refuses a write
(the lease is no longer this hub's in that term, the epoch changed, or a
seq does not follow the stored one) the writer stops for good and the hub
steps down: a leader that was paused past its lease and wakes up writes
nothing, so no C{(epoch, seq)} ever names two different messages.  While
Redis cannot be reached the messages wait and the write is retried; the
lease decides whether this hub still leads.
"""

from __future__ import annotations

import json
from calendar import timegm
from time import strptime
from typing import Any, Callable

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python import threadable
from zope.interface import implementer

from statushub.interfaces import IStatusSink

#: messages written by one script call at most
MAX_BATCH = 100

# what a message is to the script: see scripts.WRITE
MESSAGE, ENDED = "", "e"


def encode(message: dict) -> str:
    """
    A message's JSON text, as the history and the feed carry it.
    """
    return json.dumps(message, separators=(",", ":"))


def stampedAt(message: dict, default: float) -> float:
    """
    The POSIX seconds of a message's C{timestamp} (C{...T08:00:00.123Z}).
    """
    try:
        stamp = message["timestamp"]
        whole, _, fraction = stamp.rstrip("Z").partition(".")
        return timegm(strptime(whole, "%Y-%m-%dT%H:%M:%S")) + float("0." + (fraction or "0"))
    except (KeyError, TypeError, ValueError, AttributeError):
        return default


@implementer(IStatusSink)
class FencedWriter:
    """
    The sink of the leader's board, for one term.

    @param connection: a L{statushub.cluster.connection.RedisConnection}.
    @param hubId: this hub, as the lease names it.
    @param term: the leadership this writer writes for.
    @param epoch: the numbering the board stamps messages with.
    @param deliver: told every written message, for this hub's own mirror.
    @param refused: told why, once, when Redis refuses a write.
    @param keepDays: C{[history] keep_days}.
    @param maxMessages: C{[history] max_messages}.
    @param retry: seconds between tries while Redis does not answer.
    """

    log = Logger()

    def __init__(
        self,
        connection: Any,
        hubId: str,
        term: int,
        epoch: str,
        deliver: Callable[[dict], None],
        refused: Callable[[str], None],
        clock: IReactorTime,
        keepDays: float = 7.0,
        maxMessages: int = 100_000,
        retry: float = 0.5,
    ) -> None:
        self._connection = connection
        self._keys = connection.keys
        self.hubId = hubId
        self.term = term
        self.epoch = epoch
        self._deliver = deliver
        self._refused = refused
        self._clock = clock
        self._keepMs = int(keepDays * 86400 * 1000)
        self._maxMessages = maxMessages
        self._retry = retry
        self._queue: list[tuple[dict, str]] = []
        self._writing = False
        self._retrying: Any = None
        self.stopped = False
        self.written = 0

    def stop(self) -> None:
        """
        Write nothing more (the leadership ended); what waits is dropped:
        it was never stored, so its seq was never used.
        """
        self.stopped = True
        self._queue.clear()
        if self._retrying is not None and self._retrying.active():
            self._retrying.cancel()

    # -- IStatusSink ---------------------------------------------------

    def broadcast(self, message: dict) -> None:
        if not threadable.isInIOThread():
            self._clock.callFromThread(self.broadcast, message)  # type: ignore[attr-defined]
            return
        if self.stopped:
            return
        name = message.get("deployment")
        ended = name is not None and message.get("deployStatus") == "idle"
        self._queue.append((message, ENDED if ended else MESSAGE))
        self._write()

    # -- writing -------------------------------------------------------

    def _write(self) -> None:
        if self._writing or self.stopped or not self._queue:
            return
        batch = self._queue[:MAX_BATCH]
        keys = self._keys
        args: list[Any] = [
            keys.prefix, self.hubId, self.term, self.epoch, self._maxMessages,
            self._keepMs, keys.feed,
        ]
        now = self._clock.seconds()
        for message, flag in batch:
            name = message.get("deployment")
            args += ["" if name is None else name, message["seq"], encode(message),
                     repr(stampedAt(message, now)), flag]
        self._writing = True
        d = self._connection.script(
            "write", [keys.lease, keys.epoch, keys.last, keys.current, keys.order], args
        )
        d.addCallbacks(self._written, self._failed, (batch,), errbackArgs=(batch,))

    def _written(self, reply: list[Any], batch: list[tuple[dict, str]]) -> None:
        self._writing = False
        if self.stopped:
            return
        outcome = reply[0]
        count = len(batch) if outcome == "ok" else int(reply[3]) if outcome == "seq" else 0
        del self._queue[:count]
        self.written += count
        for message, flag in batch[:count]:
            self._deliver(message)
        if outcome == "ok":
            self._write()
            return
        if outcome == "fenced":
            why = f"Redis refused the write: the lease is {reply[1] or 'free'}, not term {self.term}'s"
        elif outcome == "epoch":
            why = f"Redis refused the write: the epoch is {reply[1] or 'gone'}, not {self.epoch}"
        else:
            why = (f"Redis refused the write: seq of {reply[1] or 'no deployment'} "
                   f"does not follow the stored {reply[2]}")
        self.log.warn("cluster: {why}; this hub writes nothing more", why=why)
        self.stop()
        self._refused(why)

    def _failed(self, failure: Any, batch: list[tuple[dict, str]]) -> None:
        self._writing = False
        if self.stopped:
            return
        self.log.warn(
            "cluster: cannot write {count} message(s) to Redis ({error}); trying again",
            count=len(self._queue), error=failure.getErrorMessage(),
        )
        self._retrying = self._clock.callLater(self._retry, self._write)
