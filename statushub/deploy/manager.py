"""
The deployment manager: one deployment at a time, on an L{IContainerEngine},
its picture kept on the L{StatusBoard}.

States: C{idle -> deploying -> deployed -> tearing_down -> idle}; a deploy
that fails removes what it created and ends C{failed} (with the reason), from
which a new deploy or a teardown is allowed.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Callable, Optional

from twisted.internet.defer import Deferred, ensureDeferred, succeed
from twisted.internet.task import LoopingCall, deferLater
from twisted.logger import Logger
from zope.interface import implementer

from statushub.deploy.bridge import nodeStatuses
from statushub.deploy.events import EventFollower, RunInThread
from statushub.deploy.poller import HealthPoller
from statushub.deploy.topology import Topology
from statushub.engine import (
    DEPLOYMENT_LABEL,
    INDEX_LABEL,
    NODE_LABEL,
    ContainerState,
    EngineError,
    EngineEvent,
    EngineUnreachable,
)
from statushub.interfaces import IContainerEngine, IHealthCheck
from statushub.status import NodeStatus, Picture, StatusBoard

# what an event says about its container, before a list would show it
# (on Docker 20.10 die/pause/unpause arrive before the list changes)
_EVENT_STATUS = {
    "die": "exited",
    "stop": "exited",
    "kill": None,  # a die follows when the signal ends the process
    "pause": "paused",
    "unpause": "running",
    "start": "running",
    "restart": "running",
    "destroy": "missing",
}
_NO_HEALTH = object()
# events that may change what the list shows without saying how
RECHECK_ACTIONS = frozenset({"oom", "rename", "update", "create"})
# the engine sends only these (health_status matches "health_status: ...")
FOLLOWED_ACTIONS = tuple(sorted({*_EVENT_STATUS, *RECHECK_ACTIONS, "health_status"}))
# how often, and how far apart, teardown looks for containers still there
REMOVAL_CHECKS = 20
REMOVAL_CHECK_DELAY = 0.25


class DeploymentConflict(Exception):
    """
    The request does not fit the current state (a deployment exists or is in
    progress); the message says which.
    """


class DeploymentManager:
    """
    Deploy and tear down topologies; poll (and follow events for) the current
    one; adopt one found on the engine at start.

    @param pollInterval: seconds between health polls.
    @param followEvents: follow the engine's event stream (polling stays).
    @param eventTTL: how long (seconds) an event's word about a container is
        believed over a poll that still shows the old state; a poll that
        agrees ends it sooner.
    @param observePoll: told how long each poll took (seconds).
    """

    log = Logger()

    def __init__(
        self,
        engine: IContainerEngine,
        board: StatusBoard,
        clock: Any,
        pollInterval: float,
        followEvents: bool = True,
        eventTTL: Optional[float] = None,
        runInThread: Optional[RunInThread] = None,
        observePoll: Optional[Callable[[float], None]] = None,
    ) -> None:
        self._engine = engine
        self._board = board
        self._clock = clock
        self.poller = HealthPoller(self._pollOnce, clock, pollInterval, observePoll)
        self._eventTTL = eventTTL if eventTTL is not None else max(5.0, 3 * pollInterval)
        self._name: Optional[str] = None
        self._mapping: list[tuple[str, str]] = []
        self._lastSeen: Optional[dict[str, ContainerState]] = None
        # containerId -> (fields an event told us, believed until)
        self._overlay: dict[str, tuple[dict[str, Any], float]] = {}
        self._recovered = False
        self._monitor: Optional[LoopingCall] = None
        self._monitorInterval = pollInterval
        self.events: Optional[EventFollower] = None
        if followEvents:
            self.events = EventFollower(
                engine,
                {DEPLOYMENT_LABEL: None},
                self._onEvent,
                clock,
                onConnected=lambda: self.poller.pollSoon(0),
                actions=FOLLOWED_ACTIONS,
                runInThread=runInThread,
            )
        # the Deferred of the deploy or teardown under way (tests wait on it)
        self.working: Deferred[None] = succeed(None)

    # -- life cycle ----------------------------------------------------

    def start(self) -> None:
        """
        Begin: check the engine (and adopt a deployment found there) now and
        every poll interval while nothing is deployed; follow events.
        """
        self._monitor = LoopingCall(self._checkEngine)
        self._monitor.clock = self._clock
        self._monitor.start(self._monitorInterval, now=True)
        if self.events is not None:
            self.events.start()

    def stop(self) -> "Deferred[None]":
        """
        Stop polling, checking and following; the containers stay (a hub
        restarted later adopts them).
        """
        if self._monitor is not None and self._monitor.running:
            self._monitor.stop()
        waits = [self.poller.stop()]
        if self.events is not None:
            waits.append(self.events.stop())

        async def allStopped() -> None:
            for d in waits:
                await d

        return ensureDeferred(allStopped())

    @property
    def mapping(self) -> list[tuple[str, str]]:
        """
        The current deployment's C{(nodeId, containerId)} pairs.
        """
        return list(self._mapping)

    # -- engine reachability and adoption ------------------------------

    async def _checkEngine(self) -> None:
        # guarded: a LoopingCall whose call fails stops for good
        try:
            if self.poller.started:
                return  # the polls say how the engine is
            try:
                await self._engine.ping()
            except EngineError as e:
                if self._board.picture.engine != "unreachable":
                    self.log.warn("the engine is unreachable: {error}", error=e)
                self._board.change(engine="unreachable")
                return
            self._board.change(engine="reachable")
            if not self._recovered:
                await self.recover()
        except Exception:
            self.log.failure("checking the engine failed; will check again")

    async def recover(self) -> bool:
        """
        Adopt a deployment whose labelled containers are on the engine: it
        becomes C{deployed} and polling resumes.  Done once, at start.

        @return: whether one was adopted.
        """
        states = await self._engine.listContainers({DEPLOYMENT_LABEL: None})
        self._recovered = True
        if self._board.picture.deployStatus != "idle" or not states:
            return False
        byDeployment: dict[str, list[ContainerState]] = defaultdict(list)
        for state in states:
            byDeployment[state.labels.get(DEPLOYMENT_LABEL, "")].append(state)
        name = max(byDeployment, key=lambda n: len(byDeployment[n]))
        if len(byDeployment) > 1:
            self.log.warn(
                "containers of several deployments found ({names}); adopting {name}",
                names=sorted(byDeployment), name=name,
            )

        def order(state: ContainerState) -> tuple[int, str]:
            try:
                return (int(state.labels.get(INDEX_LABEL, "")), "")
            except ValueError:
                return (1 << 30, state.labels.get(NODE_LABEL, ""))

        adopted = sorted(byDeployment[name], key=order)
        self._name = name
        self._mapping = [(s.labels.get(NODE_LABEL, s.containerId[:12]), s.containerId)
                         for s in adopted]
        self._overlay.clear()
        self.log.info("adopted deployment {name} ({count} containers)",
                      name=name, count=len(adopted))
        self._show(
            Picture(deployStatus="deployed", deployment=name, engine="reachable"),
            {s.containerId: s for s in states},
        )
        self.poller.start()
        return True

    # -- deploy --------------------------------------------------------

    def deploy(self, topology: Topology) -> "Deferred[None]":
        """
        Start deploying C{topology}: the picture is C{deploying} when this
        returns; the Deferred fires when the deploy has ended, C{deployed}
        or C{failed} (it does not fail itself: the picture says why).

        @raise DeploymentConflict: a deployment exists or is in progress.
        """
        status = self._board.picture.deployStatus
        if status not in ("idle", "failed"):
            raise DeploymentConflict(
                f"deployment {self._name!r} is {status}: tear it down first"
            )
        self._name = topology.name
        self._mapping = []
        self._overlay.clear()
        self._board.update(
            Picture(deployStatus="deploying", deployment=topology.name,
                    engine=self._board.picture.engine)
        )
        self.working = ensureDeferred(self._deploy(topology))
        return self.working

    async def _deploy(self, topology: Topology) -> None:
        created: list[tuple[str, str]] = []
        nodeId = ""
        try:
            for node, spec in topology.containerSpecs():
                nodeId = node.id
                containerId = await self._engine.createContainer(spec)
                created.append((node.id, containerId))
                self._mapping = list(created)
                await self._engine.startContainer(containerId)
                self._board.change(
                    nodeStatuses=tuple(NodeStatus(n, c, "running") for n, c in created),
                    engine="reachable",
                )
        except Exception as e:
            reason = str(e) if isinstance(e, EngineError) else f"unexpected error: {e!r}"
            self.log.warn("deploying {name} failed at node {node}: {reason}",
                          name=topology.name, node=nodeId, reason=reason)
            leftover = await self._removeAll(topology.name, [c for _, c in created])
            if leftover is not None:
                reason += f"; removing what was created failed too: {leftover}"
            self._mapping = []
            self._board.update(
                Picture(
                    deployStatus="failed",
                    deployment=topology.name,
                    engine="unreachable" if isinstance(e, EngineUnreachable) else "reachable",
                    error=f"node {nodeId!r}: {reason}",
                )
            )
            return
        self._board.change(deployStatus="deployed")
        self.poller.start()

    async def _removeAll(self, name: str, containerIds: list[str]) -> Optional[EngineError]:
        """
        Remove the given containers and any other carrying the deployment's
        label (one whose create answer was lost, say).

        @return: L{None}, or the error that says why something may remain.
        """
        try:
            for containerId in containerIds:
                await self._engine.removeContainer(containerId)
            # the engine may still be removing one (a removal that outlived
            # our timeout shows as "removing"): look until none is left
            for attempt in range(REMOVAL_CHECKS):
                remaining = await self._engine.listContainers({DEPLOYMENT_LABEL: name})
                if not remaining:
                    return None
                for state in remaining:
                    await self._engine.removeContainer(state.containerId)
                await deferLater(self._clock, REMOVAL_CHECK_DELAY, lambda: None)
        except EngineError as e:
            return e
        except Exception as e:
            # never let cleanup escape: the picture must still say failed
            return EngineError(f"unexpected error: {e!r}")
        return EngineError(f"{len(remaining)} container(s) still being removed")

    # -- teardown ------------------------------------------------------

    def teardown(self) -> Optional["Deferred[None]"]:
        """
        Start tearing the deployment down (from C{deployed} or C{failed}).

        @return: L{None} when already idle; else a Deferred that fires when
            the teardown has ended (C{idle}, or C{failed} with the reason).
        @raise DeploymentConflict: a deploy or teardown is under way.
        """
        status = self._board.picture.deployStatus
        if status == "idle":
            return None
        if status in ("deploying", "tearing_down"):
            raise DeploymentConflict(f"deployment {self._name!r} is {status}: wait for it")
        self._board.change(deployStatus="tearing_down")
        self.working = ensureDeferred(self._teardown())
        return self.working

    async def _teardown(self) -> None:
        await self.poller.stop()
        name = self._name
        problem = None
        if name is not None:
            problem = await self._removeAll(name, [c for _, c in self._mapping])
        if problem is not None:
            self.log.warn("tearing down {name} failed: {problem}", name=name, problem=problem)
            self._board.change(
                deployStatus="failed",
                engine="unreachable" if isinstance(problem, EngineUnreachable) else "reachable",
                error=f"teardown failed: {problem}; containers may remain, tear down again",
            )
            return
        self._name = None
        self._mapping = []
        self._overlay.clear()
        self._lastSeen = None
        # the seed's final message: idle, no nodes
        self._board.update(Picture(deployStatus="idle", engine="reachable"))

    # -- polling and events --------------------------------------------

    async def _pollOnce(self) -> None:
        """
        One poll: a single list call for the deployment's label, whatever
        the number of containers.
        """
        name, mapping = self._name, self._mapping
        if name is None:
            return
        try:
            states = await self._engine.listContainers({DEPLOYMENT_LABEL: name})
        except EngineError as e:
            if self._board.picture.engine != "unreachable":
                self.log.warn("poll: the engine is unreachable: {error}", error=e)
            seen = None
        else:
            seen = {s.containerId: s for s in states}
        if self._board.picture.deployStatus != "deployed" or self._mapping is not mapping:
            return  # a teardown began while we asked
        self._show(self._board.picture, seen)

    def _show(self, picture: Picture, seen: Optional[dict[str, ContainerState]]) -> None:
        """
        Put what the engine showed (plus what recent events said) on the board.
        """
        self._lastSeen = seen
        self._board.update(
            picture.evolve(
                nodeStatuses=nodeStatuses(self._withEvents(seen), self._mapping),
                engine="unreachable" if seen is None else "reachable",
            )
        )

    def _withEvents(
        self, seen: Optional[dict[str, ContainerState]]
    ) -> Optional[dict[str, ContainerState]]:
        if seen is None or not self._overlay:
            return seen
        now = self._clock.seconds()
        merged = dict(seen)
        for containerId, (told, until) in list(self._overlay.items()):
            state = seen.get(containerId)
            current = {
                "status": state.status if state else "missing",
                "health": state.health if state else None,
            }
            if until <= now or all(current[k] == v for k, v in told.items()):
                # the engine's list has caught up (or we stop believing it)
                del self._overlay[containerId]
                continue
            if told.get("status") == "missing":
                merged.pop(containerId, None)
                continue
            fields = {**current, **told}
            if fields["status"] == "missing":
                continue  # a health event for a container the list no longer has
            merged[containerId] = ContainerState(
                containerId, fields["status"], fields["health"],
                state.labels if state else {},
            )
        return merged

    def _onEvent(self, event: EngineEvent) -> None:
        if self._board.picture.deployStatus != "deployed":
            return
        if event.containerId not in {c for _, c in self._mapping}:
            return  # not one of ours (another deployment's, or stale)
        told: dict[str, Any] = {}
        if event.action.startswith("health_status:"):
            told["health"] = event.action.split(":", 1)[1].strip()
        elif event.action in _EVENT_STATUS:
            status = _EVENT_STATUS[event.action]
            if status is None:
                return
            told["status"] = status
            if status in ("exited", "missing"):
                told["health"] = None
            elif event.action in ("start", "restart"):
                # a (re)started container's check begins again
                told["health"] = _NO_HEALTH
        elif event.action in RECHECK_ACTIONS:
            # an event we cannot read a state from: ask the list
            self.poller.pollSoon(0)
            return
        else:
            # exec_* (every health check run), attach, resize...: no news
            return
        if told.get("health") is _NO_HEALTH:
            del told["health"]
        if "status" in told:
            previous: dict[str, Any] = {}  # a new state: older words no longer hold
        else:
            previous = self._overlay.get(event.containerId, ({}, 0.0))[0]
        self._overlay[event.containerId] = (
            {**previous, **told},
            self._clock.seconds() + self._eventTTL,
        )
        if self._lastSeen is not None:
            self._show(self._board.picture, self._lastSeen)
        # and look again shortly: the list catches up within moments
        self.poller.pollSoon(0.5)



@implementer(IHealthCheck)
class EngineHealth:
    """
    C{/healthz}'s word on the engine, as the last poll or check found it.
    """

    name = "engine"

    def __init__(self, board: StatusBoard) -> None:
        self._board = board

    def health(self) -> str:
        return self._board.picture.engine
