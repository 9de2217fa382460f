"""
Leadership: who may act on the engine and number messages now.

L{SoleLeadership}: one hub alone, always the leader (term 1).

L{RedisLeadership}: a lease in Redis.  The lease key names the holder and
its term (C{"HUB TERM"}); the term, the fencing token every write is checked
against, comes from an C{INCR} when a hub takes the lease.  The leader
renews every C{lease/3}.  It counts its lease from the moment it sent the
renewal (Redis starts counting later, so Redis's lease ends after ours),
and steps down when it has not renewed by C{lease - margin} on its own
clock: it has stopped acting before any other hub can take the key over.
A follower tries to take the lease every C{retry} seconds, so a lease that
lapses finds a new holder within C{lease + retry}.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Protocol

from twisted.application.service import Service
from twisted.internet.defer import Deferred, ensureDeferred, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from zope.interface import implementer

from statushub.interfaces import IHealthCheck, ILeadership

Observer = Callable[[bool], None]


class _Observed:
    """
    The observers of an L{ILeadership}.
    """

    def __init__(self) -> None:
        self._observers: list[Observer] = []

    def addObserver(self, observer: Observer) -> None:
        self._observers.append(observer)

    def removeObserver(self, observer: Observer) -> None:
        self._observers.remove(observer)

    def _tell(self, leading: bool) -> None:
        for observer in list(self._observers):
            try:
                observer(leading)
            except Exception:
                Logger().failure("a leadership observer failed")


@implementer(ILeadership)
class SoleLeadership(_Observed):
    """
    One hub alone: it leads from the start, for good, in term 1.
    """

    isLeader = True
    term = 1


class LeaseStore(Protocol):
    """
    What the lease needs of Redis (L{RedisLeaseStore}; a stand-in in unit
    tests).
    """

    def acquire(self, hubId: str, term: int, leaseMs: int) -> "Deferred[tuple[int, Any]]":
        """
        Take or renew the lease: fire with C{(term, True)} when newly taken,
        C{(term, False)} when renewed, C{(0, holder)} when another hub
        holds it; fail when Redis cannot be asked.
        """

    def release(self, hubId: str, term: int) -> "Deferred[Any]":
        """
        Give the lease up if it is still C{hubId}'s in C{term}.
        """


class RedisLeaseStore:
    """
    L{LeaseStore} on a L{statushub.cluster.connection.RedisConnection}.

    @param newEpoch: makes the epoch a new cluster's data starts with.
    """

    def __init__(self, connection: Any, newEpoch: Callable[[], str]) -> None:
        self._connection = connection
        self._keys = connection.keys
        self._newEpoch = newEpoch

    def acquire(self, hubId: str, term: int, leaseMs: int) -> "Deferred[tuple[int, Any]]":
        keys = self._keys
        d = self._connection.script(
            "acquire", [keys.lease, keys.term, keys.epoch],
            [hubId, term, leaseMs, self._newEpoch()],
        )
        return d.addCallback(lambda reply: (int(reply[0]), reply[1] == 1 if reply[0] else reply[1]))

    def release(self, hubId: str, term: int) -> "Deferred[Any]":
        return self._connection.script("release", [self._keys.lease], [f"{hubId} {term}"])


@implementer(ILeadership, IHealthCheck)
class RedisLeadership(_Observed, Service):
    """
    The lease, as a service: started, it tries to take the lease; stopped,
    it gives it up (another hub takes over at once, not a lease later).

    @param lease: seconds a lease lasts ([cluster] lease).
    @param margin: seconds before the end of its lease (on its own clock)
        at which a leader that could not renew stops; default a fifth of
        the lease.
    @param retry: seconds between a follower's tries; default the smaller
        of half a second and a quarter of the lease.
    @ivar holder: what the last try found in the lease key when another hub
        held it (C{"HUB TERM"}), for the log and /healthz.
    """

    name = "cluster"
    log = Logger()

    def __init__(
        self,
        store: LeaseStore,
        clock: IReactorTime,
        hubId: str,
        lease: float = 5.0,
        margin: Optional[float] = None,
        retry: Optional[float] = None,
    ) -> None:
        _Observed.__init__(self)
        self._store = store
        self._clock = clock
        self.hubId = hubId
        self.lease = lease
        self.margin = lease / 5 if margin is None else margin
        self.retry = min(0.5, lease / 4) if retry is None else retry
        self.term = 0
        self._leading = False
        self._validUntil = 0.0
        self._next: Optional[IDelayedCall] = None
        self._expiry: Optional[IDelayedCall] = None
        self._trying: Optional[Deferred[None]] = None
        self.reachable: Optional[bool] = None
        self.holder: Any = None

    @property
    def isLeader(self) -> bool:
        # read against the clock, not only the flag: a process that was
        # paused past its lease knows at once, before its timers run
        if self._leading and self._clock.seconds() >= self._validUntil:
            if self._expiry is not None and self._expiry.active():
                self._expiry.cancel()
            # observers are told from a call of their own, not from a reader
            self._expiry = self._clock.callLater(0, self._expire)
            return False
        return self._leading

    def health(self) -> str:
        if self.reachable is False:
            return "unreachable"
        return "leader" if self.isLeader else "follower"

    # -- life cycle ----------------------------------------------------

    def startService(self) -> None:
        super().startService()
        self._schedule(0)

    def stopService(self) -> "Deferred[Any]":
        super().stopService()
        for call in (self._next, self._expiry):
            if call is not None and call.active():
                call.cancel()
        self._next = self._expiry = None
        if not self._leading:
            return succeed(None)
        term = self.term
        self._stop("the hub stops")
        # another hub takes over now, not when the lease would have ended
        d = self._store.release(self.hubId, term)
        return d.addErrback(lambda f: self.log.info(
            "cluster: could not give the lease up ({error}); it ends by itself",
            error=f.getErrorMessage(),
        ))

    def _schedule(self, delay: float) -> None:
        if self.running:
            self._next = self._clock.callLater(delay, self.tryNow)

    # -- taking and renewing -------------------------------------------

    def tryNow(self) -> "Deferred[None]":
        """
        Take or renew the lease now; the next try is scheduled when this one
        ends.  Never fails.
        """
        if self._next is not None and self._next.active():
            self._next.cancel()
        self._next = None
        if self._trying is None:
            self._trying = ensureDeferred(self._try())
        return self._trying

    async def _try(self) -> None:
        sent = self._clock.seconds()
        held = self.term if self._leading else 0
        try:
            term, answer = await self._store.acquire(self.hubId, held, int(self.lease * 1000))
        except Exception as e:
            self._trying = None
            if self.reachable is not False:
                self.log.warn("cluster: cannot reach Redis for the lease: {error}", error=e)
            self.reachable = False
            # a leader keeps acting until its own lease ends (the expiry call)
            self._schedule(self.lease / 3 if self._leading else self.retry)
            return
        self._trying = None
        self.reachable = True
        if not term:
            self.holder = answer
            if self._leading:
                self.stepDown(f"the lease is held by {answer}")
            self._schedule(self.retry)
            return
        if answer is True:
            if self._leading:
                # a new term where we thought we held the old one: it had lapsed
                self.stepDown("the lease had lapsed")
        elif not self._leading or term != self.term:
            # a renewal answered after this hub stepped down: that leadership
            # is over; the next try takes the lease anew, in a new term
            self._schedule(0)
            return
        self.holder = f"{self.hubId} {term}"
        self._validUntil = sent + self.lease - self.margin
        if self._expiry is not None and self._expiry.active():
            self._expiry.cancel()
        self._expiry = self._clock.callLater(
            max(0.0, self._validUntil - self._clock.seconds()), self._expire
        )
        if not self._leading:
            self.term = term
            self._leading = True
            self.log.info("cluster: this hub leads (term {term})", term=term)
            self._tell(True)
        self._schedule(self.lease / 3)

    def _expire(self) -> None:
        self._expiry = None
        if self._leading:
            self.stepDown("the lease ran out before it was renewed")

    def stepDown(self, why: str) -> None:
        """
        Stop leading at once (a refused write, a lapsed lease); tries go on,
        as a follower's.
        """
        if not self._leading:
            return
        self._stop(why)
        if self._expiry is not None and self._expiry.active():
            self._expiry.cancel()
        self._expiry = None

    def _stop(self, why: str) -> None:
        self._leading = False
        self.log.warn("cluster: this hub no longer leads (term {term}): {why}",
                      term=self.term, why=why)
        self._tell(False)
