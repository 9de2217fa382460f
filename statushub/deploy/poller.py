"""
The health poller (the seed's C{StartHealthPolling}): a guarded
L{LoopingCall} whose polls never overlap.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable, Optional

from twisted.internet.defer import Deferred, ensureDeferred, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger


class HealthPoller:
    """
    Call C{poll} every C{interval} seconds while started, and on demand
    (L{pollSoon}, used when an engine event says something changed).

    A failing poll is logged and the loop goes on (a L{LoopingCall} whose
    call fails stops for good).  Polls never overlap: the loop waits for a
    poll to finish before it schedules the next, and an on-demand poll asked
    for during a running one is run once right after it.
    """

    log = Logger()

    def __init__(
        self,
        poll: Callable[[], Awaitable[Any]],
        clock: IReactorTime,
        interval: float,
        observeDuration: Optional[Callable[[float], None]] = None,
    ) -> None:
        self._poll = poll
        # told how long (seconds, on C{clock}) each poll took
        self._observeDuration = observeDuration
        self._clock = clock
        self.interval = interval
        self._loop: Optional[LoopingCall] = None
        self._running: Optional[Deferred] = None
        self._again = False
        self._soon: Optional[IDelayedCall] = None
        self.polls = 0

    @property
    def started(self) -> bool:
        return self._loop is not None and self._loop.running

    def start(self, now: bool = True) -> None:
        """
        Poll now (unless C{now} is false: the caller has just looked), then
        every C{interval} seconds.
        """
        if self.started:
            return
        self._loop = LoopingCall(self._tick)
        self._loop.clock = self._clock
        self._loop.start(self.interval, now=now)

    def stop(self) -> "Deferred[None]":
        """
        Stop polling; fire once no poll is running any more.
        """
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = None
        self._again = False
        if self._soon is not None and self._soon.active():
            self._soon.cancel()
        self._soon = None
        if self._running is None:
            return succeed(None)
        waiter: Deferred[None] = Deferred()
        self._running.addBoth(lambda result: (waiter.callback(None), result)[1])
        return waiter

    def pollSoon(self, delay: float = 0.0) -> None:
        """
        Poll in C{delay} seconds (sooner than the loop would), if started.
        """
        if not self.started:
            return
        if self._soon is not None and self._soon.active():
            return
        self._soon = self._clock.callLater(delay, self._onDemand)

    def _onDemand(self) -> None:
        self._soon = None
        if self._running is not None:
            self._again = True
            return
        self._tick()

    def _tick(self) -> "Deferred[None]":
        if self._running is not None:
            # the loop never gets here (it waits for us); an on-demand poll
            # may, and is folded into the running one's follow-up
            self._again = True
            return self._running
        self.polls += 1
        running = ensureDeferred(self._guarded())
        self._running = running

        def finished(_: Any) -> None:
            self._running = None
            if self._again and self.started:
                self._again = False
                self._tick()

        running.addBoth(finished)
        return running

    async def _guarded(self) -> None:
        started = self._clock.seconds()
        try:
            await self._poll()
        except Exception:
            self.log.failure("health poll failed; polling goes on")
        if self._observeDuration is not None:
            self._observeDuration(self._clock.seconds() - started)
