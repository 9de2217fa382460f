"""
Following the engine's event stream, so that a change reaches clients well
under the poll interval.  Polling stays as the safety net.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from twisted.application.internet import backoffPolicy
from twisted.application.service import Service
from twisted.internet.defer import CancelledError, Deferred, ensureDeferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import deferLater
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.threadpool import ThreadPool

from statushub.engine import EngineError, EngineEvent
from statushub.interfaces import IContainerEngine, IEventStream

RunInThread = Callable[[Callable[[], Any]], "Deferred[Any]"]

#: seconds to wait before reconnect attempt C{n} (from 0): doubling from half
#: a second up to ten, as Twisted's ClientService would
RECONNECT_POLICY = backoffPolicy(initialDelay=0.5, maxDelay=10.0, factor=2.0, jitter=lambda: 0.0)


class EventFollower(Service):
    """
    While running, read the engine's container events (filtered by
    C{labels}, and by C{actions} when given) and hand each to C{onEvent} in
    the reactor thread.

    Reading blocks, so it happens in a thread of its own (C{runInThread}; by
    default a one-thread pool of the follower's, so it never takes a thread
    the engine's calls need).  When the stream cannot be opened or breaks,
    the follower waits C{retryPolicy(failures)} seconds and reconnects;
    C{onConnected} is called each time the stream is (re)opened, so the
    caller can catch up on whatever happened while it was down.  Stopping
    the service closes the stream.
    """

    log = Logger()

    def __init__(
        self,
        engine: IContainerEngine,
        labels: dict[str, Optional[str]],
        onEvent: Callable[[EngineEvent], Any],
        clock: IReactorTime,
        onConnected: Callable[[], Any] = lambda: None,
        runInThread: Optional[RunInThread] = None,
        actions: tuple[str, ...] = (),
        retryPolicy: Callable[[int], float] = RECONNECT_POLICY,
    ) -> None:
        self._engine = engine
        self._labels = labels
        self._actions = actions
        self._onEvent = onEvent
        self._onConnected = onConnected
        self._clock = clock
        self._retryPolicy = retryPolicy
        self._pool: Optional[ThreadPool] = None
        if runInThread is None:
            self._pool = ThreadPool(minthreads=0, maxthreads=1, name="statushub-events")
            pool = self._pool
            runInThread = lambda f: deferToThreadPool(clock, pool, f)  # noqa: E731
        self._runInThread = runInThread
        self._stream: Optional[IEventStream] = None
        self._waiting: Optional[Deferred] = None
        self._done: Optional[Deferred] = None
        self.connected = False
        self.connections = 0

    def startService(self) -> None:
        if self.running:
            return
        super().startService()
        if self._pool is not None:
            self._pool.start()
        self._done = ensureDeferred(self._follow())

    def stopService(self) -> "Deferred[None]":
        """
        Close the stream and stop reconnecting; fire when the reader is done.
        """
        if not self.running:
            return succeed(None)
        super().stopService()
        if self._stream is not None:
            self._stream.close()
        if self._waiting is not None:
            self._waiting.cancel()
        done = self._done
        assert done is not None

        def stopPool(result: Any) -> Any:
            if self._pool is not None:
                self._pool.stop()
            return None

        return done.addBoth(stopPool)

    async def _pause(self, delay: float) -> None:
        self._waiting = deferLater(self._clock, delay, lambda: None)
        try:
            await self._waiting
        except CancelledError:
            pass
        finally:
            self._waiting = None

    async def _follow(self) -> None:
        failures = 0
        while self.running:
            try:
                stream = await self._engine.events(self._labels, self._actions)
            except Exception as e:
                delay = self._retryPolicy(failures)
                failures += 1
                self.log.warn(
                    "cannot open the engine's event stream ({error}); retrying in {delay} s",
                    error=e if isinstance(e, EngineError) else repr(e),
                    delay=delay,
                )
                await self._pause(delay)
                continue
            if not self.running:
                stream.close()
                break
            self._stream = stream
            self.connected = True
            self.log.info("following the engine's container events")
            self.connections += 1
            failures = 0
            self._call(self._onConnected)
            try:
                while self.running:
                    event = await self._runInThread(stream.next)
                    if event is None:
                        break
                    self._call(self._onEvent, event)
            except Exception:
                self.log.failure("reading the engine's event stream failed")
            finally:
                self._stream = None
                self.connected = False
                stream.close()
            if self.running:
                delay = self._retryPolicy(failures)
                failures += 1
                self.log.info("the engine's event stream ended; reconnecting in {delay} s",
                              delay=delay)
                await self._pause(delay)

    def _call(self, function: Callable[..., Any], *args: Any) -> None:
        try:
            function(*args)
        except Exception:
            # a bad handler must not end the stream
            self.log.failure("handling an engine event failed")
