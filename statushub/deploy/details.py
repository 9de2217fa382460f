"""
What looks at single containers told a deployment (their restart count,
their last check's output, whether the OOM killer ended them), and which of
its containers that ended have been looked at since.
"""

from __future__ import annotations

from typing import Callable, Mapping, Optional, Sequence

from twisted.internet.interfaces import IDelayedCall, IReactorTime

from statushub.engine import ContainerDetail, ContainerState

#: the statuses of a container whose process has ended
ENDED = ("exited", "dead")
#: the exit code of a process ended by SIGKILL: the OOM killer's, or another's
KILLED = 137
#: how many more looks a SIGKILLed container without the OOM killer's mark
#: gets, RELOOK_DELAY seconds apart: the engine may set the mark a moment
#: after the death, and need not tell of it by an event
RELOOKS = 3
RELOOK_DELAY = 1.0


class ContainerDetails:
    """
    @ivar known: each container's detail, as its last inspection told it.
    """

    def __init__(self, clock: IReactorTime, look: Callable[[str], None]) -> None:
        self._clock = clock
        self._look = look
        self.known: dict[str, ContainerDetail] = {}
        # containers that ended, and were looked at (or asked to be) since
        self._deathsLooked: set[str] = set()
        # how many more looks each SIGKILLed one without a mark has had,
        # and the next one, timed
        self._relooks: dict[str, int] = {}
        self._relookCalls: dict[str, IDelayedCall] = {}

    def clear(self) -> None:
        self.known.clear()
        self._deathsLooked.clear()
        self._relooks.clear()
        for call in self._relookCalls.values():
            call.cancel()
        self._relookCalls.clear()

    def forget(self, containerId: str) -> None:
        self.known.pop(containerId, None)
        self._deathsLooked.discard(containerId)
        self._relooks.pop(containerId, None)
        call = self._relookCalls.pop(containerId, None)
        if call is not None:
            call.cancel()

    def died(self, containerId: str) -> None:
        """
        Its die event asks for a look at it: nothing more to ask.
        """
        self._deathsLooked.add(containerId)

    def started(self, containerId: str) -> None:
        """
        It runs again: its next death is news.
        """
        self._deathsLooked.discard(containerId)
        self._relooks.pop(containerId, None)
        call = self._relookCalls.pop(containerId, None)
        if call is not None:
            call.cancel()

    def looked(self, containerId: str, detail: ContainerDetail) -> None:
        """
        What a look at it told.  Killed by SIGKILL without the OOM killer's
        mark, it is looked at again on the next polls, L{RELOOKS} times.
        """
        self.known[containerId] = detail
        if detail.exitCode == KILLED and not detail.oomKilled:
            tries = self._relooks.get(containerId, 0)
            if tries < RELOOKS and containerId not in self._relookCalls:
                self._relooks[containerId] = tries + 1
                self._relookCalls[containerId] = self._clock.callLater(
                    RELOOK_DELAY, self._relook, containerId)

    def _relook(self, containerId: str) -> None:
        del self._relookCalls[containerId]
        self._look(containerId)

    def deathsToLookAt(
        self, seen: Optional[Mapping[str, ContainerState]], mapping: Sequence[tuple[str, str]]
    ) -> list[str]:
        """
        The containers of C{mapping} that C{seen} shows ended and that have
        not been looked at since: only a look tells whether the OOM killer
        ended one.  Covers a death no event told of in time (one while the
        deployment was deploying, one found at adoption); each is returned
        once until it runs again.
        """
        if seen is None:
            return []
        wanted = []
        for _, containerId in mapping:
            state = seen.get(containerId)
            if state is None:
                continue
            if state.status not in ENDED:
                self._deathsLooked.discard(containerId)
            elif containerId not in self._deathsLooked:
                self._deathsLooked.add(containerId)
                wanted.append(containerId)
        return wanted
