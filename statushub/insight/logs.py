"""
Following a node's log: one engine stream per followed node, whatever the
number of its followers.

The stream is read in a thread (L{statushub.insight.pumps}); each line goes
into the node's L{LineBuffer}, which keeps the node to
C{max_lines_per_second} (what it leaves out is counted) and wakes the
reactor when a batch begins.  At most every C{batchInterval} seconds the
reactor takes the batch, frames one C{log} message and writes those same
bytes to every follower; a follower that cannot take them does its own
counting (L{ILogFollower.send}), so nobody waits for anybody.

A new follower gets the node's tail first: it joins the stream before the
tail is read, holds what the stream brings meanwhile, and drops from that
whatever the tail already had (lines compare by their engine time).

When the last follower leaves, the stream stays open C{linger} seconds for
one that comes back (a reloaded page), then closes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from twisted.internet.defer import Deferred, ensureDeferred, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python import threadable
from zope.interface import Interface, implementer

from statushub.engine import EngineError, LogLine, NodeLocation
from statushub.errors import RequestError, UnknownDeployment, UnknownNode
from statushub.insight.frames import textFrame
from statushub.insight.linebuffer import LineBuffer
from statushub.insight.pumps import IStreamPump
from statushub.interfaces import IContainerEngine, INodeLocator, IStatusSink

__all__ = ["ILogFollower", "LineBuffer", "LogHub", "SharedLog"]

DEFAULT_MAX_LINES_PER_SECOND = 1000
#: the most lines a tail may ask for (PRODUCT.md)
MAX_TAIL = 10_000
DEFAULT_TAIL = 100
#: seconds between two batches of a node's log, at the least
BATCH_INTERVAL = 0.1
#: seconds an unfollowed stream stays open (PRODUCT.md: closed within 10 s)
LINGER = 5.0

CallFromThread = Callable[..., None]


class ILogFollower(Interface):
    """
    One client of a node's log (a C{/ws/logs} connection).
    """

    def send(frame: bytes, lines: int) -> None:
        """
        Write one framed message telling of C{lines} lines (for a
        C{log_gap}, of the lines it says were left out).  A follower that
        cannot take it now leaves it out and counts C{lines} itself.
        """

    def end() -> None:
        """
        The node's log has ended (its container is gone): say C{log_end}
        and close.
        """

    def fail(reason: str) -> None:
        """
        The log cannot be followed (the engine refused, or too many streams
        are open): close, saying why.
        """


@dataclass
class _Joining:
    """
    What a follower whose tail is being read has missed of the stream.
    """

    lines: list[LogLine] = field(default_factory=list)
    dropped: int = 0


class _Sent:
    """
    The lines a follower was given from its tail on.  Lines compare by
    their engine time, but the engine reads stdout and stderr apart: a
    line of one may be stamped a little before a line of the other that
    came first.  So a line is new when it is not among these and not
    older than the oldest of them.
    """

    def __init__(self, lines: list[LogLine]) -> None:
        self.lines = set(lines)
        times = [line.time for line in lines]
        self.oldest = min(times, default="")
        self.newest = max(times, default="")

    def newer(self, lines: list[LogLine]) -> list[LogLine]:
        return [line for line in lines if line not in self.lines and line.time >= self.oldest]


class SharedLog:
    """
    One node's log stream and its followers.

    @ivar followers: each follower, with L{None} once it gets the stream
        live, or what it holds while its tail is read.
    """

    log = Logger()

    def __init__(self, hub: "LogHub", location: NodeLocation, deployment: str) -> None:
        self._hub = hub
        self.deployment = deployment
        self.node = location.nodeId
        self.containerId = location.containerId
        self.followers: dict[ILogFollower, Optional[_Joining]] = {}
        # a follower just given its tail: what it has, until the stream
        # brings a line newer than all of it (lines the stream had not sent
        # yet when the tail was read are in both)
        self._sentUpTo: dict[ILogFollower, _Sent] = {}
        self.buffer = LineBuffer(hub.clock, hub.maxLinesPerSecond)
        self._stream: Any = None
        self._opening: Optional[list[Deferred]] = None
        self.open = False
        self.ended = False
        self._flushCall: Optional[IDelayedCall] = None
        self._lastFlush = float("-inf")
        self._closeCall: Optional[IDelayedCall] = None

    # -- the engine stream -------------------------------------------

    def whenOpen(self) -> "Deferred[None]":
        """
        Fire once the engine stream is open (opening it, the first time).
        """
        if self.open or self.ended:
            return succeed(None)
        waiter: Deferred[None] = Deferred()
        if self._opening is None:
            self._opening = [waiter]
            ensureDeferred(self._openStream())
        else:
            self._opening.append(waiter)
        return waiter

    async def _openStream(self) -> None:
        failure: Optional[BaseException] = None
        try:
            stream = await self._hub.engine.followLogs(self.containerId)
        except Exception as e:
            failure = e
        else:
            if self.ended:
                stream.close()  # closed for good while it was being opened
            else:
                # open before the pump starts: a stream that has already
                # ended may end within the call
                self._stream = stream
                self.open = True
                self._hub.streamsChanged(+1)
                try:
                    self._hub.pump.pump(stream, self._read, self._streamEnded)
                except Exception as e:
                    self._stream, self.open = None, False
                    self._hub.streamsChanged(-1)
                    stream.close()  # too many streams: refused, not queued
                    failure = e
        if failure is not None:
            self.ended = True
            self._hub.forget(self)
        waiters, self._opening = self._opening or [], None
        for waiter in waiters:
            if failure is None:
                waiter.callback(None)
            else:
                waiter.errback(failure)

    def _read(self, line: LogLine) -> None:
        # in the reading thread
        if self.buffer.add(line):
            self._hub.callFromThread(self._wake)

    def _wake(self) -> None:
        if self._flushCall is not None or self.ended:
            return
        delay = max(0.0, self._lastFlush + self._hub.batchInterval - self._hub.clock.seconds())
        self._flushCall = self._hub.clock.callLater(delay, self.flush)

    def flush(self) -> None:
        """
        Send what the stream brought since the last batch: one C{log}
        message to all, and a C{log_gap} when the node printed more than
        its rate.
        """
        if self._flushCall is not None and self._flushCall.active():
            self._flushCall.cancel()
        self._flushCall = None
        self._lastFlush = self._hub.clock.seconds()
        lines, dropped = self.buffer.take()
        if lines:
            frame = self._hub.frame(self._message(lines))
            for follower, joining in list(self.followers.items()):
                if joining is not None:
                    joining.lines.extend(lines)
                elif follower in self._sentUpTo:
                    self._sendNewer(follower, lines)
                else:
                    follower.send(frame, len(lines))
        if dropped:
            self.log.debug("{deployment}/{node}: {dropped} lines above the rate left out",
                           deployment=self.deployment, node=self.node, dropped=dropped)
            frame = self._hub.frame(self._gap(dropped))
            for follower, joining in list(self.followers.items()):
                if joining is None:
                    follower.send(frame, dropped)
                else:
                    joining.dropped += dropped

    def _sendNewer(self, follower: ILogFollower, lines: list[LogLine]) -> None:
        """
        Send C{follower} what of C{lines} its tail did not have.
        """
        sent = self._sentUpTo[follower]
        newer = sent.newer(lines)
        if any(line.time > sent.newest for line in lines):
            del self._sentUpTo[follower]  # the stream has passed its tail
        if newer:
            follower.send(self._hub.frame(self._message(newer)), len(newer))

    def _streamEnded(self) -> None:
        """
        The engine stream ended: the container stopped, or we closed it.
        """
        self.flush()
        wasOpen, self.open, self.ended = self.open, False, True
        if wasOpen:
            self._hub.streamsChanged(-1)
        ending = [f for f, joining in self.followers.items() if joining is None]
        for follower in ending:
            del self.followers[follower]
            self._sentUpTo.pop(follower, None)
        self._hub.forget(self)
        for follower in ending:
            follower.end()
        # a follower still reading its tail ends after it (see release)

    def close(self) -> None:
        """
        Close the engine stream for good (nobody follows it any more).
        """
        if self._closeCall is not None and self._closeCall.active():
            self._closeCall.cancel()
        self._closeCall = None
        self.ended = True
        self._hub.forget(self)
        if self._stream is not None:
            # the reading thread returns, and _streamEnded counts it closed
            self._stream.close()

    # -- followers -----------------------------------------------------

    def join(self, follower: ILogFollower) -> None:
        """
        Add C{follower}, holding the stream for it until L{release}.
        """
        if self._closeCall is not None and self._closeCall.active():
            self._closeCall.cancel()
        self._closeCall = None
        self.followers[follower] = _Joining()

    def release(self, follower: ILogFollower, tail: list[LogLine]) -> None:
        """
        Send C{follower} its tail, then what the stream brought meanwhile
        that the tail does not have; from now on it gets the stream live.
        """
        joining = self.followers.get(follower)
        if not isinstance(joining, _Joining):
            return  # gone meanwhile
        follower.send(self._hub.frame(self._message(tail)), len(tail))
        sent = _Sent(tail)
        newer = sent.newer(joining.lines)
        if newer:
            follower.send(self._hub.frame(self._message(newer)), len(newer))
            sent = _Sent(tail + newer)
        if joining.dropped:
            follower.send(self._hub.frame(self._gap(joining.dropped)), joining.dropped)
        if self.ended:
            del self.followers[follower]
            follower.end()
            return
        self.followers[follower] = None
        if sent.lines:
            self._sentUpTo[follower] = sent

    def leave(self, follower: ILogFollower) -> None:
        """
        Forget C{follower}; the last to leave starts the linger.
        """
        self._sentUpTo.pop(follower, None)
        if self.followers.pop(follower, self) is self or self.followers:
            return
        if self.ended:
            return
        self._closeCall = self._hub.clock.callLater(self._hub.linger, self.close)

    def _message(self, lines: list[LogLine]) -> dict[str, Any]:
        return {
            "type": "log",
            "deployment": self.deployment,
            "node": self.node,
            "lines": [line.toJSON() for line in lines],
        }

    def _gap(self, dropped: int) -> dict[str, Any]:
        return {"type": "log_gap", "deployment": self.deployment, "node": self.node,
                "dropped": dropped}


@implementer(IStatusSink)
class LogHub:
    """
    Every followed node's L{SharedLog}, and the tail reads of the API.

    A status sink too: a change of a deployment whose nodes are followed is
    the moment to look whether a followed node's container is gone (torn
    down, recreated): its stream is closed and its followers told the log
    ended.  (Docker ends the stream of a container that stops; a swarm's
    service log outlives its tasks and ends with nothing of itself.)

    @param pump: reads each engine stream (L{statushub.insight.pumps}).
    @param callFromThread: hands a call from the reading thread to the
        reactor (the unit tests' pump reads in the reactor thread).
    @ivar streams: the engine log streams open now (a gauge reads it).
    """

    log = Logger()

    def __init__(
        self,
        engine: IContainerEngine,
        locator: INodeLocator,
        clock: IReactorTime,
        pump: IStreamPump,
        callFromThread: CallFromThread,
        maxLinesPerSecond: int = DEFAULT_MAX_LINES_PER_SECOND,
        batchInterval: float = BATCH_INTERVAL,
        linger: float = LINGER,
        frame: Callable[[dict[str, Any]], bytes] = textFrame,
    ) -> None:
        self.engine = engine
        self.locator = locator
        self.clock = clock
        self.pump = pump
        self.callFromThread = callFromThread
        self.maxLinesPerSecond = maxLinesPerSecond
        self.batchInterval = batchInterval
        self.linger = linger
        self.frame = frame
        self.streams = 0
        # (deployment, node, containerId) -> its shared log
        self._shared: dict[tuple[str, str, str], SharedLog] = {}
        self._following: dict[ILogFollower, SharedLog] = {}

    def locate(self, deployment: str, node: str) -> NodeLocation:
        """
        @raise UnknownDeployment: no such deployment.
        @raise UnknownNode: it has no such node.
        """
        for location in self.locator.locate(deployment):
            if location.nodeId == node:
                return location
        raise UnknownNode(deployment, node)

    async def tail(self, deployment: str, node: str, tail: int = DEFAULT_TAIL) -> list[LogLine]:
        """
        The last C{tail} lines of a node's log, oldest first.

        @raise RequestError: no such deployment or node.
        @raise EngineError: the engine could not be asked.
        """
        location = self.locate(deployment, node)
        if not location.containerId or tail == 0:
            return []
        return await self.engine.readLogs(location.containerId, tail)

    async def follow(
        self, deployment: str, node: str, follower: ILogFollower, tail: int = DEFAULT_TAIL
    ) -> None:
        """
        Send C{follower} the node's tail, then every line it prints, until
        the node's container is gone (L{ILogFollower.end}) or L{unfollow}.
        A problem after the node was found ends in L{ILogFollower.fail}.

        @raise RequestError: no such deployment or node.
        """
        location = self.locate(deployment, node)
        key = (deployment, node, location.containerId)
        shared = self._shared.get(key)
        if shared is None:
            shared = SharedLog(self, location, deployment)
            if location.containerId:
                self._shared[key] = shared
            else:
                shared.ended = True  # no container: nothing to follow
        shared.join(follower)
        self._following[follower] = shared
        try:
            await shared.whenOpen()
            lines: list[LogLine] = []
            if tail and location.containerId:
                lines = await self.engine.readLogs(location.containerId, tail)
        except (EngineError, RequestError) as e:
            self._fail(follower, shared, str(e))
            return
        except Exception as e:
            self.log.failure("following the log of {deployment}/{node} failed",
                             deployment=deployment, node=node)
            self._fail(follower, shared, f"unexpected error: {e!r}")
            return
        if self._following.get(follower) is shared:
            shared.release(follower, lines)
            if follower not in shared.followers:
                self._following.pop(follower, None)  # ended

    def _fail(self, follower: ILogFollower, shared: SharedLog, reason: str) -> None:
        if self._following.get(follower) is not shared:
            return  # gone meanwhile
        self.unfollow(follower)
        follower.fail(reason)

    def broadcast(self, message: dict[str, Any]) -> None:
        """
        A status message: end the logs of followed nodes whose container
        its deployment no longer has.  From any thread.
        """
        if not threadable.isInIOThread():
            self.callFromThread(self.broadcast, message)
            return
        name = message.get("deployment")
        followed = [shared for key, shared in self._shared.items() if key[0] == name]
        if name is None or not followed:
            return
        try:
            present = {(n.nodeId, n.containerId) for n in self.locator.locate(name)}
        except UnknownDeployment:
            present = set()
        for shared in followed:
            if (shared.node, shared.containerId) not in present:
                shared.close()  # the reading thread returns; its end tells the followers

    def unfollow(self, follower: ILogFollower) -> None:
        """
        Stop sending C{follower} anything; harmless if it follows nothing.
        """
        shared = self._following.pop(follower, None)
        if shared is not None:
            shared.leave(follower)

    def forget(self, shared: SharedLog) -> None:
        key = (shared.deployment, shared.node, shared.containerId)
        if self._shared.get(key) is shared:
            del self._shared[key]
        for follower, followed in list(self._following.items()):
            if followed is shared and follower not in shared.followers:
                del self._following[follower]

    def streamsChanged(self, delta: int) -> None:
        self.streams += delta

    @property
    def followers(self) -> int:
        """
        The followers now, of every node.
        """
        return len(self._following)

    def closeAll(self) -> None:
        """
        Close every stream at once (the hub stops); followers are ended.
        """
        for shared in list(self._shared.values()):
            shared.close()
