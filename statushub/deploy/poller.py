"""
The health poller (the seed's C{StartHealthPolling}): a L{TimerService}
whose polls are guarded and never overlap.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable, Optional

from twisted.application.internet import TimerService
from twisted.internet.defer import Deferred, ensureDeferred, gatherResults, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger


class HealthPoller(TimerService):
    """
    While the service runs, call C{poll} every C{interval} seconds (from the
    start) when C{active()} says there is something to poll, and on demand
    (L{pollSoon}, used when an engine event says something changed;
    L{pollNow}).

    A failing poll is logged and the loop goes on (a L{LoopingCall} whose
    call fails stops for good).  Polls never overlap: the loop waits for a
    poll to finish before it schedules the next, and an on-demand poll asked
    for during a running one is run once right after it.

    @param observeDuration: told how long (seconds, on C{clock}) each poll
        took.
    @param active: whether there is anything to poll now; a tick when there
        is not costs nothing and is not counted.
    @ivar polls: the polls made so far.
    """

    log = Logger()

    def __init__(
        self,
        poll: Callable[[], Awaitable[Any]],
        clock: IReactorTime,
        interval: float,
        observeDuration: Optional[Callable[[float], None]] = None,
        active: Callable[[], bool] = lambda: True,
    ) -> None:
        super().__init__(interval, self._tick)
        self.clock = clock
        self._poll = poll
        self._observeDuration = observeDuration
        self._active = active
        self._on = False
        self._running: Optional[Deferred[None]] = None
        self._again = False
        self._soon: Optional[IDelayedCall] = None
        self.polls = 0

    @property
    def interval(self) -> float:
        return self.step

    def startService(self) -> None:
        self._on = True
        super().startService()

    def stopService(self) -> "Deferred[None]":
        """
        Stop polling; fire once no poll is running any more.
        """
        self._on = False
        self._again = False
        if self._soon is not None and self._soon.active():
            self._soon.cancel()
        self._soon = None
        waits = [super().stopService()]
        if self._running is not None:
            pollDone: Deferred[None] = Deferred()
            self._running.addBoth(lambda result: (pollDone.callback(None), result)[1])
            waits.append(pollDone)
        return gatherResults(waits).addCallback(lambda _: None)

    def pollNow(self) -> "Deferred[None]":
        """
        Poll at once (or, when a poll is running, right after it).
        """
        if not self._on:
            return succeed(None)
        return self._tick()

    def pollSoon(self, delay: float = 0.0) -> None:
        """
        Poll in C{delay} seconds (sooner than the loop would), if running
        and active.
        """
        if not self._on or not self._active():
            return
        if self._soon is not None and self._soon.active():
            return
        self._soon = self.clock.callLater(delay, self._onDemand)

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
        if not self._active():
            return succeed(None)
        self.polls += 1
        running = ensureDeferred(self._guarded())
        self._running = running

        def finished(_: Any) -> None:
            self._running = None
            if self._again and self._on:
                self._again = False
                self._tick()

        running.addBoth(finished)
        return running

    async def _guarded(self) -> None:
        started = self.clock.seconds()
        try:
            await self._poll()
        except Exception:
            self.log.failure("health poll failed; polling goes on")
        if self._observeDuration is not None:
            self._observeDuration(self.clock.seconds() - started)
