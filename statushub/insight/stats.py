"""
Resource use of the watched deployments' running nodes: one engine stream
per node while someone watches, one C{stats} message a second to each
watcher.

One round for the whole hub (L{StatsHub.tick}, every C{interval} seconds,
from a C{TimerService} of L{statushub.insight.service}; a new watcher gets
one at once): it opens the streams of running nodes that lack one, closes
those nobody has wanted for C{linger} seconds (or whose node stopped), and
sends each watcher the latest sample of every node it watches.  With
nobody watching, a round costs nothing.  The streams are read in threads
(L{statushub.insight.pumps}); a sample is handed to the reactor as it comes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

from twisted.internet.defer import ensureDeferred
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import deferLater
from twisted.logger import Logger
from zope.interface import Interface

from statushub.engine import NodeLocation, ResourceSample, StatsUnavailable
from statushub.errors import RequestError, UnknownDeployment
from statushub.insight.frames import textFrame
from statushub.insight.pumps import IStreamPump
from statushub.interfaces import IContainerEngine, INodeLocator

INTERVAL = 1.0
#: seconds a stream nobody watches stays open (PRODUCT.md: closed within 10 s)
LINGER = 5.0
#: seconds before a stream that failed to open (or ended) is tried again
RETRY = 5.0
#: seconds the API waits for the first sample of every running node
FIRST_SAMPLE_WAIT = 4.0

CallFromThread = Callable[..., None]
# (deployment, node, containerId)
Key = tuple[str, str, str]


class IStatsWatcher(Interface):
    """
    One client of the resource use (a C{/ws/stats} connection).
    """

    def send(frame: bytes, lines: int) -> None:
        """
        Write one framed C{stats} message (C{lines} is 0), or leave it out.
        """


@dataclass
class _NodeStats:
    """
    One running node's stream and what it last said.
    """

    stream: Any = None
    opening: bool = False
    sample: Optional[ResourceSample] = None
    unavailable: Optional[str] = None
    wantedAt: float = 0.0
    retryAt: float = 0.0
    closed: bool = False


class StatsHub:
    """
    @ivar streams: the engine stats streams open now (a gauge reads it).
    """

    log = Logger()

    def __init__(
        self,
        engine: IContainerEngine,
        locator: INodeLocator,
        clock: IReactorTime,
        pump: IStreamPump,
        callFromThread: CallFromThread,
        interval: float = INTERVAL,
        linger: float = LINGER,
        frame: Callable[[dict[str, Any]], bytes] = textFrame,
    ) -> None:
        self._engine = engine
        self._locator = locator
        self._clock = clock
        self._pump = pump
        self._callFromThread = callFromThread
        self.interval = interval
        self.linger = linger
        self._frame = frame
        self.streams = 0
        # each watcher -> the deployment it watches, or None for every one
        self._watchers: dict[IStatsWatcher, Optional[str]] = {}
        # deployment -> until when an API read wants it
        self._holds: dict[str, float] = {}
        self._nodes: dict[Key, _NodeStats] = {}
        # deployment -> its node locations as last seen (topology order)
        self._located: dict[str, list[NodeLocation]] = {}

    # -- who watches ---------------------------------------------------

    def watchable(self, deployment: str) -> None:
        """
        @raise UnknownDeployment: C{deployment} is not a current deployment.
        """
        self._locator.locate(deployment)

    def watch(self, watcher: IStatsWatcher, deployment: Optional[str] = None) -> None:
        """
        Send C{watcher} the resource use of C{deployment} (L{None}: of every
        deployment, a message each) every C{interval} seconds, from now on.

        @raise UnknownDeployment: C{deployment} is not a current deployment.
        """
        if deployment is not None:
            self.watchable(deployment)
        self._watchers[watcher] = deployment
        self.tick()  # its first message now, not a second later

    def unwatch(self, watcher: IStatsWatcher) -> None:
        self._watchers.pop(watcher, None)

    @property
    def watchers(self) -> int:
        return len(self._watchers)

    async def current(self, deployment: str) -> dict[str, Any]:
        """
        The resource use of C{deployment}'s running nodes (the API's
        answer): from the streams open, opened for the while if none are,
        once every running node has a first sample (or
        L{FIRST_SAMPLE_WAIT} seconds have passed).

        @raise UnknownDeployment: no such deployment.
        """
        self._locator.locate(deployment)
        self._holds[deployment] = self._clock.seconds() + self.linger
        self.tick()
        deadline = self._clock.seconds() + FIRST_SAMPLE_WAIT
        while not self._complete(deployment) and self._clock.seconds() < deadline:
            await deferLater(self._clock, 0.1, lambda: None)
        return self._message(deployment)

    def _complete(self, deployment: str) -> bool:
        for location in self._located.get(deployment, ()):
            entry = self._nodes.get((deployment, location.nodeId, location.containerId))
            if entry is None or (entry.sample is None and entry.unavailable is None):
                return False
        return True

    # -- a round -------------------------------------------------------

    def tick(self) -> None:
        """
        Open and close streams as the watchers and the nodes now need;
        send every watcher its messages.  Never raises: a round that fails
        is logged, and the next one tries again.
        """
        if not (self._watchers or self._holds or self._nodes):
            return  # nobody watches, nothing is open: nothing to do
        try:
            self._sync()
            self._send()
        except Exception:
            self.log.failure("a stats round failed; trying again next round")

    def _wanted(self) -> set[str]:
        now = self._clock.seconds()
        self._holds = {name: until for name, until in self._holds.items() if until > now}
        names = set(self._holds)
        for deployment in self._watchers.values():
            if deployment is None:
                names.update(self._locator.deployments())
            else:
                names.add(deployment)
        return names

    def _sync(self) -> None:
        now = self._clock.seconds()
        running: set[Key] = set()
        self._located = {}
        for deployment in sorted(self._wanted()):
            try:
                locations = self._locator.locate(deployment)
            except UnknownDeployment:
                continue
            located = [n for n in locations if n.status == "running" and n.containerId]
            self._located[deployment] = located
            for location in located:
                key = (deployment, location.nodeId, location.containerId)
                running.add(key)
                entry = self._nodes.setdefault(key, _NodeStats())
                entry.wantedAt = now
                if entry.stream is None and not entry.opening and entry.retryAt <= now:
                    ensureDeferred(self._open(key, entry))
        for key, entry in list(self._nodes.items()):
            stale = now - entry.wantedAt >= self.linger
            if key not in running and (stale or not self._stillRunning(key)):
                self._close(key, entry)

    def _stillRunning(self, key: Key) -> bool:
        # a node of a deployment still wanted: is it still running there?
        deployment, node, containerId = key
        located = self._located.get(deployment)
        if located is None:
            return True  # not asked this round: the linger decides
        return any(n.nodeId == node and n.containerId == containerId for n in located)

    async def _open(self, key: Key, entry: _NodeStats) -> None:
        entry.opening = True
        try:
            stream = await self._engine.followStats(key[2])
        except StatsUnavailable as e:
            entry.unavailable = str(e)
            entry.retryAt = self._clock.seconds() + RETRY
            return
        except Exception as e:
            self.log.debug("cannot follow the resource use of {deployment}/{node}: {error}",
                           deployment=key[0], node=key[1], error=e)
            entry.retryAt = self._clock.seconds() + RETRY
            return
        finally:
            entry.opening = False
        if entry.closed or self._nodes.get(key) is not entry:
            stream.close()  # not wanted any more
            return
        try:
            self._pump.pump(
                stream,
                lambda sample: self._callFromThread(self._sampled, entry, sample),
                lambda: self._ended(key, entry),
            )
        except RequestError as e:
            stream.close()
            entry.unavailable = str(e)
            entry.retryAt = self._clock.seconds() + RETRY
            return
        entry.stream = stream
        entry.unavailable = None
        self.streams += 1

    def _sampled(self, entry: _NodeStats, sample: ResourceSample) -> None:
        if not entry.closed:
            entry.sample = sample

    def _ended(self, key: Key, entry: _NodeStats) -> None:
        if entry.stream is not None:
            entry.stream = None
            self.streams -= 1
        entry.sample = None
        # the container stopped: the next round opens it again if the
        # deployment says it runs, not at once
        entry.retryAt = self._clock.seconds() + RETRY
        if entry.closed and self._nodes.get(key) is entry:
            del self._nodes[key]

    def _close(self, key: Key, entry: _NodeStats) -> None:
        entry.closed = True
        if entry.stream is not None:
            entry.stream.close()  # the reading thread returns; _ended forgets it
        elif self._nodes.get(key) is entry:
            del self._nodes[key]

    # -- what watchers are sent ------------------------------------------

    def _message(self, deployment: str) -> dict[str, Any]:
        nodes = []
        for location in self._located.get(deployment, ()):
            entry = self._nodes.get((deployment, location.nodeId, location.containerId))
            if entry is None:
                continue
            if entry.sample is not None:
                sample = entry.sample
                nodes.append({
                    "nodeId": location.nodeId,
                    "cpu": sample.cpu,
                    "memoryBytes": sample.memoryBytes,
                    "memoryLimitBytes": sample.memoryLimitBytes,
                    "time": sample.time,
                })
            elif entry.unavailable is not None:
                nodes.append({
                    "nodeId": location.nodeId,
                    "cpu": None,
                    "memoryBytes": None,
                    "memoryLimitBytes": None,
                    "time": None,
                    "unavailable": entry.unavailable,
                })
        return {"deployment": deployment, "nodes": nodes}

    def _send(self) -> None:
        frames: dict[str, bytes] = {}

        def frameOf(deployment: str) -> bytes:
            if deployment not in frames:
                frames[deployment] = self._frame({"type": "stats", **self._message(deployment)})
            return frames[deployment]

        for watcher, deployment in list(self._watchers.items()):
            names = [deployment] if deployment is not None else sorted(self._located)
            for name in names:
                watcher.send(frameOf(name), 0)

    def closeAll(self) -> None:
        """
        Close every stream (the hub stops).
        """
        self._watchers.clear()
        self._holds.clear()
        for key, entry in list(self._nodes.items()):
            self._close(key, entry)
