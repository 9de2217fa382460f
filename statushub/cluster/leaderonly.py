"""
Leader-only work as stock services.

L{LeaderOnly} runs its child (the orchestrator: engine, polling, events,
adoption, and whatever else only one hub may do) only while L{ILeadership}
says this hub leads: built anew for every leadership, from what the cluster
holds then, started once built, stopped the moment the leadership ends.

L{FencedEngine} is the engine as the leader's orchestrator sees it: every
call made once this hub no longer leads fails, so a deploy under way when a
paused leader wakes up creates nothing more (Docker knows no fencing
tokens; the hub checks its own lease, against its clock, before each call).
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable, Optional

from twisted.application.service import IService, MultiService
from twisted.internet.defer import Deferred, ensureDeferred, fail
from twisted.logger import Logger
from zope.interface import directlyProvides, providedBy

from statushub.engine import EngineError
from statushub.interfaces import ILeadership

#: build(term): the service that does the leader's work in that term
Build = Callable[[int], Awaitable[IService]]


class LeaderOnly(MultiService):
    """
    @param build: makes the leader's service for a term (it may read Redis
        first: a new leader goes on from what the cluster holds).
    @ivar current: the service running now, or L{None}.
    """

    log = Logger()

    def __init__(self, leadership: ILeadership, build: Build) -> None:
        super().__init__()
        self._leadership = leadership
        self._build = build
        self.current: Optional[IService] = None
        self._building: Optional[Deferred[None]] = None

    def startService(self) -> None:
        super().startService()
        self._leadership.addObserver(self._changed)
        if self._leadership.isLeader:
            self._changed(True)

    def stopService(self) -> Any:
        self._leadership.removeObserver(self._changed)
        self.current = None
        return super().stopService()

    def _changed(self, leading: bool) -> None:
        if leading:
            self._building = ensureDeferred(self._begin(self._leadership.term))
        else:
            self._end()

    async def _begin(self, term: int) -> None:
        self._end()
        try:
            service = await self._build(term)
        except Exception:
            self.log.failure("cluster: cannot take over as leader (term {term})", term=term)
            if self._leadership.isLeader and self._leadership.term == term:
                stepDown = getattr(self._leadership, "stepDown", None)
                if stepDown is not None:
                    stepDown("the leader's work could not be set up")
            return
        if not (self.running and self._leadership.isLeader and self._leadership.term == term):
            return  # that leadership ended while it was being built
        self.current = service
        service.setServiceParent(self)  # started: we run

    def _end(self) -> None:
        service, self.current = self.current, None
        if service is not None:
            # stopped at once; what it waits for (threads) ends in the background
            d = service.disownServiceParent()
            if isinstance(d, Deferred):
                d.addErrback(lambda f: self.log.failure("cluster: stopping the leader's work", f))


class FencedEngine:
    """
    An L{IContainerEngine} that refuses every call once C{leadership} says
    this hub no longer leads; C{stop} (closing the client) always passes.
    Provides whatever the engine it wraps provides.
    """

    def __init__(self, engine: Any, leadership: ILeadership) -> None:
        self._engine = engine
        self._leadership = leadership
        directlyProvides(self, providedBy(engine))

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._engine, name)
        if name == "stop" or not callable(attribute):
            return attribute

        def fenced(*args: Any, **kwargs: Any) -> Any:
            if not self._leadership.isLeader:
                return fail(EngineError(
                    "this hub no longer leads the cluster: it does not act on the engine"
                ))
            return attribute(*args, **kwargs)

        return fenced
