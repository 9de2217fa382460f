"""
Server pings for every feed client, on one timer for all of them.
"""

from __future__ import annotations

from typing import Optional

from twisted.application.service import Service
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from statushub.hub.factory import StatusHubFactory


class KeepAlive(Service):
    """
    Every C{interval} seconds, ping every client; C{timeout} seconds after
    each round, drop those whose oldest ping is still unanswered by then.
    Autobahn could do this per connection, but that is one timer per client;
    here it is one per round.
    """

    log = Logger()

    def __init__(
        self,
        hub: StatusHubFactory,
        clock: IReactorTime,
        interval: float,
        timeout: float,
    ) -> None:
        self._hub = hub
        self._clock = clock
        self.interval = interval
        self.timeout = timeout
        self._loop: Optional[LoopingCall] = None
        # one pending reap per round still inside its timeout
        self._reaps: list[IDelayedCall] = []

    def startService(self) -> None:
        super().startService()
        self._loop = LoopingCall(self.pingRound)
        self._loop.clock = self._clock
        # pingRound never raises (see there), so the loop cannot stop on a
        # failure; log one anyway rather than swallow it.
        self._loop.start(self.interval, now=False).addErrback(
            lambda f: self.log.failure("keep-alive loop stopped", f)
        )

    def stopService(self) -> None:
        super().stopService()
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        for reap in self._reaps:
            if reap.active():
                reap.cancel()
        self._reaps = []

    def pingRound(self) -> None:
        now = self._clock.seconds()
        for client in self._hub:
            try:
                if client.pingSentAt is None:
                    client.pingSentAt = now
                self._hub.sendPing(client)
            except Exception:
                self.log.failure("cannot ping {peer}", peer=client.peer)
                self._hub.unregister(client)
        self._reaps = [reap for reap in self._reaps if reap.active()]
        self._reaps.append(self._clock.callLater(self.timeout, self.dropUnanswered))

    def dropUnanswered(self) -> None:
        deadline = self._clock.seconds() - self.timeout
        for client in self._hub:
            sentAt = client.pingSentAt
            if sentAt is not None and sentAt <= deadline:
                self._hub.dropUnresponsive(client, self.timeout)
