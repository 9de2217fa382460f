"""
What looks at single containers told a deployment (their restart count,
their last check's output, whether the OOM killer ended them), and which of
its containers that ended have been looked at since.
"""

from __future__ import annotations

from typing import Mapping, Optional, Sequence

from statushub.engine import ContainerDetail, ContainerState

#: the statuses of a container whose process has ended
ENDED = ("exited", "dead")


class ContainerDetails:
    """
    @ivar known: each container's detail, as its last inspection told it.
    """

    def __init__(self) -> None:
        self.known: dict[str, ContainerDetail] = {}
        # containers that ended, and were looked at (or asked to be) since
        self._deathsLooked: set[str] = set()

    def clear(self) -> None:
        self.known.clear()
        self._deathsLooked.clear()

    def forget(self, containerId: str) -> None:
        self.known.pop(containerId, None)
        self._deathsLooked.discard(containerId)

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
