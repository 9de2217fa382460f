"""
Keeping the feed's connections out of the cyclic garbage collector's way.

A full (generation 2) collection walks every object Python tracks that is
not frozen, and the reactor waits meanwhile: with 10,000 feed clients that
was 100-180 ms, and a status message that arrived then waited that long
for every client (issue 22).  The connections live as long as their
clients, and when a client leaves they are freed by reference counting
(L{StatusProtocol} breaks the cycles Autobahn and twisted.web would leave),
so a full collection has nothing to find among them: walking them is all
it does.  L{ConnectionFreezer} moves them out of its sight with
C{gc.freeze()}, in batches: after every C{batch} new clients, one full
collection over what is not frozen yet (that batch and whatever else came
since: milliseconds), then a freeze.  Start-up's objects are the first batch.

The cyclic GC never looks at frozen objects again, so a reference cycle
among them that becomes garbage later is never freed.  Feed connections
leave none; but whatever else happened to be alive at a freeze (an HTTP
request under way, a deploy) might.  So once as many clients have opened
since the last thaw as C{thawAfter} times those connected (the clients have
been replaced several times over), the freezer thaws instead: unfreeze, one
full collection over everything, freeze again.  That is one long pause per
so many reconnects; without the freezer Python makes one about every
quarter of that.
"""

from __future__ import annotations

import gc
from time import perf_counter
from typing import Any, Callable, Optional

from twisted.application.service import Service
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger


class ConnectionFreezer(Service):
    """
    Freezes the objects of every C{batch} new feed clients, and thaws
    everything once the clients have turned over C{thawAfter} times.

    @param clock: schedules each step for the reactor's next turn, outside
        the handshake that crossed the mark.
    @param clients: how many clients are connected now.
    @param batch: new clients per freeze; a freeze's collection walks
        about that many clients' objects.
    @param thawAfter: clients opened since the last thaw, in multiples of
        those connected (at least C{batch}), that make the next step a thaw.
    @param collector: C{gc}, or a stand-in with its C{collect}, C{freeze}
        and C{unfreeze}.

    @ivar freezes: batches frozen (start-up's included).
    @ivar thaws: thaws done.
    @ivar lastStep: seconds the last freeze or thaw held the reactor.
    """

    log = Logger()

    def __init__(
        self,
        clock: IReactorTime,
        clients: Callable[[], int],
        batch: int = 500,
        thawAfter: float = 4.0,
        collector: Any = gc,
    ) -> None:
        if batch < 1 or thawAfter <= 0:
            raise ValueError("batch must be at least 1 and thawAfter above 0")
        self._clock = clock
        self._clients = clients
        self.batch = batch
        self.thawAfter = thawAfter
        self._gc = collector
        self._step: Optional[IDelayedCall] = None
        # clients opened since the last freeze, and since the last thaw
        self._sinceFreeze = 0
        self._sinceThaw = 0
        self.freezes = 0
        self.thaws = 0
        self.lastStep = 0.0

    def startService(self) -> None:
        super().startService()
        # start-up's objects: frozen once the reactor runs, as a batch
        self._schedule()

    def stopService(self) -> None:
        super().stopService()
        if self._step is not None and self._step.active():
            self._step.cancel()
        self._step = None

    def opened(self) -> None:
        """
        A client completed its handshake.
        """
        self._sinceFreeze += 1
        self._sinceThaw += 1
        if self._sinceFreeze >= self.batch:
            self._schedule()

    def _schedule(self) -> None:
        if self.running and self._step is None:
            self._step = self._clock.callLater(0, self.step)

    def step(self) -> None:
        """
        Freeze what came since the last freeze, or, when the clients have
        turned over often enough, thaw and freeze everything again.
        """
        self._step = None
        started = perf_counter()
        if self._sinceThaw >= self.thawAfter * max(self._clients(), self.batch):
            self._gc.unfreeze()
            self._gc.collect()
            self._gc.freeze()
            self._sinceThaw = 0
            self.thaws += 1
            self.lastStep = perf_counter() - started
            self.log.info(
                "thawed the feed's frozen objects for a full collection: "
                "{clients} clients, {ms:.0f} ms",
                clients=self._clients(),
                ms=self.lastStep * 1000,
            )
        else:
            self._gc.collect()
            self._gc.freeze()
            self.freezes += 1
            self.lastStep = perf_counter() - started
        self._sinceFreeze = 0
