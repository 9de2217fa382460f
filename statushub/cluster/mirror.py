"""
What every hub of a cluster serves: a mirror of the messages the leader
wrote to Redis, fed with them already stamped, in order.

A L{Mirror} is the hub's L{IStatusSource}: the WebSocket hub, the API, the
metrics and (on the leader) the WAMP publisher read it and are its sinks,
exactly as they are the board's on a hub alone.  Messages come from the
subscription (every hub) and from the leader's own confirmed writes; each
is applied once, in C{seq} order per deployment.  A message that skips a
seq (the subscription is at-most-once) waits while what was missed is read
from Redis's history; a full read after every (re)subscription brings the
mirror level with Redis again (L{sync}).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from zope.interface import implementer

from statushub.interfaces import IStatusSource
from statushub.status import Picture, SinkFanout, isoTimestamp

#: fetch(deployment, after, upto): the stored messages of deployment with a
#: seq above after and at most upto, oldest first
Fetch = Callable[[Optional[str], int, int], "Deferred[list[dict]]"]


@dataclass(frozen=True)
class ClusterState:
    """
    Everything Redis holds about the pictures at one moment.

    @ivar last: deployment name (L{None}: no deployment) to its last seq.
    @ivar current: the current message of every current deployment, and of
        the picture of no deployment.
    """

    epoch: str
    last: dict[Optional[str], int] = field(default_factory=dict)
    current: dict[Optional[str], dict] = field(default_factory=dict)


@implementer(IStatusSource)
class Mirror(SinkFanout):
    """
    The current picture of every deployment, as the cluster wrote it.

    @param fetch: reads what was missed from the history.
    @ivar outOfStep: called when a message of another epoch arrives: the
        cluster's data is new, and a full read (L{sync}) should follow.
    """

    log = Logger()

    def __init__(self, clock: IReactorTime, fetch: Optional[Fetch] = None) -> None:
        self._clock = clock
        self._fetch = fetch
        self.epoch = ""
        super().__init__(Picture().toMessage(0, self._now(), self.epoch))
        self._messages: dict[str, dict] = {}
        # the last message of every deployment that ended: what it shows
        # while not current (one seq, one message, on every hub)
        self._ended: dict[str, dict] = {}
        self._names: list[str] = []
        self._last: dict[Optional[str], int] = {}
        # per deployment with a gap being filled: the messages that came after it
        self._waiting: dict[Optional[str], list[dict]] = {}
        self._seen: list[tuple[Optional[str], int, Deferred[None]]] = []
        self.outOfStep: Callable[[], None] = lambda: None
        # the engine's word in the last picture applied (what a follower
        # knows of the engine: only the leader asks it)
        self.engine = "unknown"

    def _now(self) -> str:
        return isoTimestamp(self._clock.seconds())

    # -- IStatusSource -------------------------------------------------

    def names(self) -> list[str]:
        return list(self._names)

    def current(self, deployment: Optional[str] = None) -> dict:
        if deployment is None:
            return self._idleMessage
        message = self._messages.get(deployment) or self._ended.get(deployment)
        if message is not None:
            return message
        return {
            **self._idleMessage,
            "deployment": deployment,
            "seq": self._last.get(deployment, 0),
            "timestamp": self._now(),
        }

    def last(self, deployment: Optional[str]) -> int:
        """
        The seq of the last message applied about C{deployment}.
        """
        return self._last.get(deployment, 0)

    # -- fed by the cluster --------------------------------------------

    def receive(self, message: dict) -> None:
        """
        One message the leader wrote (reactor thread): applied when it is
        the next of its deployment, dropped when already applied, held while
        a gap before it is filled.
        """
        if message.get("epoch") != self.epoch:
            self.outOfStep()  # another numbering: a full read brings it
            return
        name, seq = message.get("deployment"), message["seq"]
        last = self._last.get(name, 0)
        if seq <= last:
            return
        if name is None:
            # the picture of no deployment may skip a seq, as on one hub
            self._apply(message)
            return
        waiting = self._waiting.get(name)
        if waiting is not None:
            waiting.append(message)
            return
        if seq == last + 1:
            self._apply(message)
            return
        self._fill(name, last, seq - 1, [message])

    def sync(self, state: ClusterState) -> None:
        """
        Level the mirror with a full read of Redis (after every
        (re)subscription; at start): a new epoch replaces everything (sent
        to the sinks as it now is); otherwise every deployment that is
        behind is filled from the history.
        """
        if state.epoch != self.epoch:
            self._replace(state)
            return
        for name, last in sorted(state.last.items(), key=lambda item: item[0] or ""):
            mine = self._last.get(name, 0)
            if last <= mine or name in self._waiting:
                continue
            if name is None:
                current = state.current.get(None)
                if current is not None:
                    self._apply(current)
                continue
            self._fill(name, mine, last, [], state)

    def whenSeen(self, deployment: Optional[str], seq: int) -> "Deferred[None]":
        """
        Fire once the message C{seq} of C{deployment} (or a later one) has
        been applied here: what the cluster wrote, every hub shows.
        """
        d: Deferred[None] = Deferred()
        if self._last.get(deployment, 0) >= seq:
            d.callback(None)
        else:
            self._seen.append((deployment, seq, d))
        return d

    # -- applying ------------------------------------------------------

    def _apply(self, message: dict) -> None:
        name = message.get("deployment")
        self._last[name] = message["seq"]
        self.engine = message.get("engine", self.engine)
        if name is None:
            self._idleMessage = message
            if not self._names:  # shown only while there is no deployment
                self._emit(message)
        else:
            known = name in self._messages
            if message.get("deployStatus") == "idle":
                self._messages.pop(name, None)
                self._ended[name] = message
            else:
                self._messages[name] = message
                self._ended.pop(name, None)
            if known != (name in self._messages):
                self._names = sorted(self._messages)
            self._current = tuple(self._messages[n] for n in self._names)
            self._emit(message)
        if self._seen:
            self._wake(name)

    def _wake(self, name: Optional[str]) -> None:
        last = self._last.get(name, 0)
        ready = [w for w in self._seen if w[0] == name and w[1] <= last]
        if ready:
            self._seen = [w for w in self._seen if w not in ready]
            for _, _, d in ready:
                d.callback(None)

    def _replace(self, state: ClusterState) -> None:
        """
        Take a new numbering: the pictures as Redis has them now.  Every
        deployment that was shown and is no longer current ends, as after a
        teardown, stamped in the new epoch.
        """
        if self.epoch:
            self.log.warn(
                "cluster: the numbering changed (epoch {old} to {new}): the cluster's "
                "data is new",
                old=self.epoch, new=state.epoch,
            )
        gone = [n for n in self._names if n not in state.current]
        self.epoch = state.epoch
        self._waiting.clear()
        self._ended.clear()
        self._last = dict(state.last)
        self._messages = {n: m for n, m in state.current.items() if n is not None}
        self._names = sorted(self._messages)
        self._current = tuple(self._messages[n] for n in self._names)
        idle = state.current.get(None)
        self._idleMessage = (
            idle if idle is not None else Picture().toMessage(0, self._now(), self.epoch)
        )
        if state.current:
            # the engine's word in the newest picture
            newest = max(state.current.values(), key=lambda m: m.get("timestamp", ""))
            self.engine = newest.get("engine", self.engine)
        for name in gone:
            self._emit(self.current(name))
        for message in self._current or (self._idleMessage,):
            self._emit(message)
        for name in {w[0] for w in self._seen}:
            self._wake(name)

    # -- filling gaps --------------------------------------------------

    def _fill(
        self,
        name: str,
        after: int,
        upto: int,
        waiting: list[dict],
        state: Optional[ClusterState] = None,
    ) -> None:
        """
        Read the messages of C{name} after C{after} up to C{upto} from the
        history; meanwhile the ones that arrive wait.
        """
        self._waiting[name] = waiting
        if self._fetch is None:
            self._filled(name, [], state)
            return
        epoch = self.epoch
        d = self._fetch(name, after, upto)

        def fetched(messages: list[dict]) -> None:
            if self.epoch == epoch:
                self._filled(name, messages, state)

        def failed(failure: Any) -> None:
            self.log.info("cluster: cannot read what {name} missed: {error}",
                          name=name, error=failure.getErrorMessage())
            if self.epoch == epoch:
                self._filled(name, [], state)

        d.addCallbacks(fetched, failed)

    def _filled(
        self, name: str, messages: list[dict], state: Optional[ClusterState]
    ) -> None:
        waiting = self._waiting.pop(name, [])
        for message in messages:
            if message["seq"] > self._last.get(name, 0):
                self._apply(message)
        if state is not None and state.last.get(name, 0) > self._last.get(name, 0):
            # pruned before it could be read: jump to what is current now
            current = state.current.get(name)
            self._apply(current if current is not None else {
                **self._idleMessage, "deployment": name, "seq": state.last[name],
                "timestamp": self._now(),
            })
        # what arrived meanwhile, in order; a gap left (pruned) is jumped
        for message in sorted(waiting, key=lambda m: m["seq"]):
            if message["seq"] > self._last.get(name, 0):
                self._apply(message)
