"""
Reading the engine's open streams, each in a thread of a bounded pool.

A log or stats stream blocks on every read and lives as long as someone
watches, so it cannot share the engine's call pool: each gets a thread of
its own, from a pool whose size bounds how many streams the hub keeps open
at once.  Past that bound a new stream is refused (L{Unavailable}), never
queued behind the others.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Optional

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorFromThreads
from twisted.logger import Logger
from twisted.python.threadpool import ThreadPool
from zope.interface import Interface, implementer

from statushub.errors import Unavailable

#: how many engine streams (logs and stats together) may be open at once
DEFAULT_MAX_STREAMS = 200


class IStreamPump(Interface):
    """
    Reads an open engine stream (an L{statushub.interfaces.ILogStream} or
    L{statushub.interfaces.IStatsStream}) to its end.
    """

    def pump(stream: Any, onItem: Callable[[Any], None], onEnd: Callable[[], None]) -> None:
        """
        Read C{stream} until its C{next} returns L{None}; call C{onItem}
        with each item (from the reading thread: it must be safe there), and
        C{onEnd} once in the reactor thread when it has ended.

        @raise statushub.errors.Unavailable: too many streams are open.
        """


@implementer(IStreamPump)
class StreamThreads:
    """
    A thread of its own for each stream, from a pool of at most C{maximum}.

    @ivar running: the streams being read now.
    """

    log = Logger()

    def __init__(self, reactor: IReactorFromThreads, maximum: int = DEFAULT_MAX_STREAMS) -> None:
        self._reactor = reactor
        self.maximum = maximum
        self.running = 0
        self._pool: Optional[ThreadPool] = None

    def pump(self, stream: Any, onItem: Callable[[Any], None], onEnd: Callable[[], None]) -> None:
        if self.running >= self.maximum:
            raise Unavailable(
                f"the hub reads {self.maximum} engine streams already "
                "([logs] max_streams); try again when fewer are watched"
            )
        if self._pool is None:
            # started on first use, not at construction: twistd may fork
            # (daemonize) between building the service and running it
            self._pool = ThreadPool(minthreads=0, maxthreads=self.maximum, name="statushub-insight")
            self._pool.start()
        self.running += 1
        self._pool.callInThread(self._read, stream, onItem, onEnd)

    def _read(self, stream: Any, onItem: Callable[[Any], None], onEnd: Callable[[], None]) -> None:
        try:
            while (item := stream.next()) is not None:
                onItem(item)
        except Exception:
            # a broken stream ends like a closed one; say why
            self.log.failure("reading an engine stream failed")
        finally:
            self._reactor.callFromThread(self._ended, stream, onEnd)

    def _ended(self, stream: Any, onEnd: Callable[[], None]) -> None:
        self.running -= 1
        stream.close()
        onEnd()

    def stop(self) -> "Deferred[None]":
        """
        End the pool once its threads have returned (close every stream
        first); fire when they have.  The joining happens in a thread of
        its own, never in the reactor's.
        """
        pool, self._pool = self._pool, None
        if pool is None:
            return succeed(None)
        done: Deferred[None] = Deferred()

        def join() -> None:
            pool.stop()
            self._reactor.callFromThread(done.callback, None)

        threading.Thread(target=join, name="statushub-insight-stop", daemon=True).start()
        return done
