"""
The deployment manager: any number of named deployments (up to a limit) on
one L{IContainerEngine}, each a L{Deployment}.

The manager owns what the deployments share: one poller, whose every poll is
a single list call for all of them (routed to each by the deployment
label), one event stream (each event routed by label, then container id),
the engine's reachability, and adoption of everything labelled at start.
All of it is limited to the containers of the hub's owner
(L{statushub.deploy.owner}).
It is a L{MultiService}: the poller and the engine monitor are
L{TimerService} children, the event follower a third child.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from twisted.application.internet import TimerService
from twisted.application.service import MultiService
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from zope.interface import implementer

from statushub.deploy.actions import ActionObserver
from statushub.deploy.adoption import foundDeployments
from statushub.deploy.deployment import (
    FOLLOWED_ACTIONS,
    Deployment,
    DeploymentConflict,
)
from statushub.deploy.events import EventFollower, RunInThread
from statushub.deploy.owner import Owner
from statushub.deploy.poller import HealthPoller
from statushub.errors import UnknownDeployment
from statushub.engine import (
    DEFAULT_STOP_TIMEOUT,
    DEPLOYMENT_LABEL,
    OWNER_LABEL,
    ContainerState,
    EngineError,
    EngineEvent,
)
from statushub.interfaces import IContainerEngine, IHealthCheck
from statushub.resources import ResourcePolicy
from statushub.status import Picture, StatusBoard
from statushub.topology import Topology

__all__ = ["DeploymentConflict", "DeploymentManager", "EngineHealth", "UnknownDeployment"]

DEFAULT_MAX_DEPLOYMENTS = 20


class DeploymentManager(MultiService):
    """
    Deploy and tear down topologies by name; while running, poll (and
    follow events for) every deployed one, and check the engine (adopting
    the deployments found there once it answers).

    @param pollInterval: seconds between health polls.
    @param followEvents: follow the engine's event stream (polling stays).
    @param maxDeployments: how many deployments may exist at once.
    @param eventTTL: see L{Deployment}.
    @param observePoll: told how long each poll took (seconds).
    @param owner: C{[deploy] owner}: the containers made are labelled with
        it, and only those so labelled are seen.
    @param stopTimeout: the grace (seconds) a stopping node's process gets
        before it is killed: node actions and teardowns (C{[deploy]
        stop_timeout}).
    @param observeAction: told how each node action ended.
    @param policy: the resource policy a node's topology entry is read back
        with when a deployment is adopted (C{[deploy]} defaults and maxima).
    @ivar engineState: C{"reachable"}, C{"unreachable"} or C{"unknown"} (no
        contact yet), as the last poll or check found the engine.
    @ivar polling: whether anything deployed is polled now (the engine
        monitor covers the rest).
    @ivar poller: the polls, a L{HealthPoller}.
    @ivar monitor: the engine check, a L{TimerService} (every poll
        interval, from the start; it does nothing while there are polls).
    @ivar events: the event follower, when events are followed.
    """

    log = Logger()

    def __init__(
        self,
        engine: IContainerEngine,
        board: StatusBoard,
        clock: IReactorTime,
        pollInterval: float,
        followEvents: bool = True,
        maxDeployments: int = DEFAULT_MAX_DEPLOYMENTS,
        eventTTL: Optional[float] = None,
        runInThread: Optional[RunInThread] = None,
        observePoll: Optional[Callable[[float], None]] = None,
        owner: Owner = Owner(),
        stopTimeout: float = DEFAULT_STOP_TIMEOUT,
        observeAction: Optional[ActionObserver] = None,
        policy: ResourcePolicy = ResourcePolicy(),
    ) -> None:
        super().__init__()
        self._engine = engine
        self.owner = owner
        self.stopTimeout = stopTimeout
        self._observeAction = observeAction or (lambda action, outcome: None)
        self._policy = policy
        self._board = board
        self._clock = clock
        self.maxDeployments = maxDeployments
        self._eventTTL = eventTTL if eventTTL is not None else max(5.0, 3 * pollInterval)
        self._deployments: dict[str, Deployment] = {}
        self.engineState = "unknown"
        self.polling = False
        self._recovered = False
        # Started in this order: the poller's first tick finds nothing to
        # poll; the monitor's first check adopts what the engine holds (that
        # list is the first poll); then the events.  Stopping (the services
        # the other way round, at once) leaves the containers: a hub
        # started later adopts them.
        self.poller = HealthPoller(
            self._pollOnce, clock, pollInterval, observePoll, active=lambda: self.polling
        )
        self.poller.setServiceParent(self)
        self.monitor = TimerService(pollInterval, self._checkEngine)
        self.monitor.clock = clock
        self.monitor.setServiceParent(self)
        self.events: Optional[EventFollower] = None
        if followEvents:
            self.events = EventFollower(
                engine,
                owner.selector(),
                self._onEvent,
                clock,
                onConnected=lambda: self.poller.pollSoon(0),
                actions=FOLLOWED_ACTIONS,
                runInThread=runInThread,
            )
            self.events.setServiceParent(self)
        # the Deferred of the last deploy or teardown started (tests wait on it)
        self.working: Deferred[None] = succeed(None)

    # -- the deployments -----------------------------------------------

    def names(self) -> list[str]:
        return sorted(self._deployments)

    def get(self, name: str) -> Deployment:
        """
        @raise UnknownDeployment: no current deployment has that name.
        """
        try:
            return self._deployments[name]
        except KeyError:
            raise UnknownDeployment(name) from None

    def _setEngine(self, word: str) -> None:
        if word == "unreachable" and self.engineState != "unreachable":
            self.log.warn("the engine is unreachable")
        self.engineState = word
        # the picture shown while there is no deployment says so too
        self._board.change(None, engine=word)

    # -- deploy and teardown -------------------------------------------

    def deploy(self, topology: Topology) -> "Deferred[None]":
        """
        Start deploying C{topology} as the deployment of its name: its
        picture is C{deploying} when this returns; the Deferred fires when
        the deploy has ended, C{deployed} or C{failed} (it does not fail
        itself: the picture says why).

        @raise DeploymentConflict: the name exists (a failed deployment of
            that name may be deployed again), or the limit is reached.
        """
        name = topology.name
        existing = self._deployments.get(name)
        if existing is not None and existing.status != "failed":
            raise DeploymentConflict(
                f"deployment {name!r} exists ({existing.status}): "
                "tear it down first or choose another name",
                [name],
            )
        if existing is None and len(self._deployments) >= self.maxDeployments:
            raise DeploymentConflict(
                f"the limit of {self.maxDeployments} deployments is reached: "
                "tear one down first ([deploy] max_deployments)",
                self.names(),
            )
        deployment = self._newDeployment(name)
        self._deployments[name] = deployment
        self.working = self._track(deployment, deployment.deploy(topology, self.engineState))
        return self.working

    def _newDeployment(self, name: str) -> Deployment:
        return Deployment(
            name, self._engine, self._board, self._clock, self._eventTTL,
            pollSoon=self.poller.pollSoon, owner=self.owner, stopTimeout=self.stopTimeout,
            observeAction=self._observeAction, policy=self._policy,
        )

    def act(self, name: str, nodeId: str, action: str) -> bool:
        """
        Start C{action} (restart, stop, start, recreate) on the node C{nodeId}
        of the deployment C{name}; the feed tells how it goes.

        @return: L{True} when it was started, L{False} when there was nothing
            to do (a stop of a node stopped on purpose, a start of one that
            runs).
        @raise UnknownDeployment: no such deployment.
        @raise statushub.errors.UnknownNode: it has no such node.
        @raise DeploymentConflict: it is not deployed, or the node cannot take
            the action now (another is under way, ...); the message says why.
        """
        try:
            deployment = self.get(name)
        except UnknownDeployment:
            self._observeAction(action, "refused")
            raise
        return deployment.act(nodeId, action)

    def teardown(self, name: str) -> "Deferred[None]":
        """
        Start tearing the deployment C{name} down (from C{deployed} or
        C{failed}); it is forgotten once C{idle}.

        @return: a Deferred that fires when the teardown has ended (C{idle},
            or C{failed} with the reason).
        @raise UnknownDeployment: no such deployment.
        @raise DeploymentConflict: a deploy or teardown of it is under way.
        """
        deployment = self.get(name)
        working = deployment.teardown()
        self._syncPolling()
        self.working = self._track(deployment, working)
        return self.working

    def _track(self, deployment: Deployment, working: "Deferred[None]") -> "Deferred[None]":
        def settled(result: Any) -> Any:
            if deployment.status == "idle" and self._deployments.get(deployment.name) is deployment:
                del self._deployments[deployment.name]
            if deployment.picture.engine in ("reachable", "unreachable"):
                self._setEngine(deployment.picture.engine)
            self._syncPolling()
            return result

        return working.addBoth(settled)

    def _syncPolling(self, pollNow: bool = True) -> None:
        """
        Poll while anything is deployed (at once when that begins, unless
        C{pollNow} is false: the caller has just looked); the engine monitor
        covers the rest.
        """
        wanted = any(d.status == "deployed" for d in self._deployments.values())
        if wanted and not self.polling:
            self.polling = True
            if pollNow:
                self.poller.pollNow()
        elif not wanted:
            self.polling = False

    # -- engine reachability and adoption ------------------------------

    async def _checkEngine(self) -> None:
        # guarded: a LoopingCall whose call fails stops for good
        try:
            if not self._recovered:
                await self.recover()
                return
            if self.polling:
                return  # the polls say how the engine is
            try:
                await self._engine.ping()
            except EngineError as e:
                self.log.debug("ping: {error}", error=e)
                self._setEngine("unreachable")
                return
            self._setEngine("reachable")
        except Exception:
            self.log.failure("checking the engine failed; will check again")

    async def _listOwn(self) -> list[ContainerState]:
        listed = await self._engine.listContainers(self.owner.selector())
        return [state for state in listed if self.owner.owns(state.labels)]

    async def recover(self) -> list[str]:
        """
        Adopt every deployment whose containers, labelled with this hub's
        owner, are on the engine (one list call): each becomes C{deployed},
        a node whose container is gone C{missing}, and polling resumes.
        Done once, when the engine first answers.

        @return: the names adopted.
        """
        try:
            anyOwners = await self._engine.listContainers({DEPLOYMENT_LABEL: None})
        except EngineError:
            self._setEngine("unreachable")
            return []
        self._recovered = True
        self._setEngine("reachable")
        states = [s for s in anyOwners if self.owner.owns(s.labels)]
        seen = {s.containerId: s for s in states}
        unlabelled = {s.containerId for s in states if OWNER_LABEL not in s.labels}
        adopted = []
        for name, mapping in sorted(foundDeployments(states).items()):
            if name in self._deployments:
                continue  # deployed through us meanwhile
            deployment = self._newDeployment(name)
            self._deployments[name] = deployment
            deployment.adopt(mapping, seen)
            adopted.append(name)
            gone = [n for n, c in mapping if not c]
            self.log.info(
                "adopted deployment {name} ({count} containers{gone}{unlabelled})",
                name=name, count=len(mapping) - len(gone),
                gone=f"; gone: {', '.join(gone)}" if gone else "",
                unlabelled="; made before owners, without an owner label"
                if any(c in unlabelled for _, c in mapping) else "",
            )
        for name in self._board.names():
            if name not in self._deployments:
                # shown, but nothing of it on the engine: a board that took
                # over another's pictures (a new leader of several hubs,
                # whose predecessor died before the first container) ends it
                self.log.info("deployment {name} has no container on the engine: ended",
                              name=name)
                self._board.update(Picture(deployment=name, engine="reachable"))
        self._noteUnlabelled(anyOwners)
        if len(self._deployments) > self.maxDeployments:
            self.log.warn(
                "adopted {count} deployments, more than [deploy] max_deployments "
                "({limit}): no new one until some are torn down",
                count=len(self._deployments), limit=self.maxDeployments,
            )
        # what the history says was deployed, and is not there any more,
        # went while the hub was away: its end is a message of its own
        for name in self._board.endAbsent(self._deployments):
            self.log.info("deployment {name} is gone from the engine: ended", name=name)
        self._syncPolling(pollNow=False)  # that list was the first poll
        return adopted

    def _noteUnlabelled(self, states: list[ContainerState]) -> None:
        """
        Say which deployments made before owners this hub leaves alone (its
        owner is not the default): their containers would otherwise seem
        lost to a user who set an owner while upgrading.
        """
        if self.owner.takesUnlabelled:
            return
        names = sorted({
            s.labels.get(DEPLOYMENT_LABEL, "") for s in states if OWNER_LABEL not in s.labels
        })
        if names:
            self.log.warn(
                "left alone: deployments made before owners, without an owner label "
                "({names}): a hub whose [deploy] owner is \"statushub\" adopts them",
                names=", ".join(names),
            )

    # -- polling and events --------------------------------------------

    async def _pollOnce(self) -> None:
        """
        One poll: a single list call for every deployment's containers,
        whatever their number, each deployment shown what is its own.
        """
        polled = [d for d in self._deployments.values() if d.status == "deployed"]
        if not polled:
            return
        asked = self._clock.seconds()
        try:
            states = await self._listOwn()
        except EngineError as e:
            if self.engineState != "unreachable":
                self.log.warn("poll: the engine is unreachable: {error}", error=e)
            seen = None
        else:
            seen = {s.containerId: s for s in states}
        self._setEngine("unreachable" if seen is None else "reachable")
        for deployment in polled:
            # not one torn down (or deployed anew) while we asked
            if self._deployments.get(deployment.name) is deployment and deployment.status == "deployed":
                deployment.show(seen, asOf=asked)

    def _onEvent(self, event: EngineEvent) -> None:
        if not event.containerId:
            # about no one container (a Swarm service or host changed): the
            # next list says what
            self.poller.pollSoon(0)
            return
        name = event.labels.get(DEPLOYMENT_LABEL)
        if name and not self.owner.owns(event.labels):
            return  # another hub's container
        deployment = self._deployments.get(name) if name else None
        if deployment is None and not name:
            # an event without labels: find the container's deployment
            deployment = next(
                (d for d in self._deployments.values() if d.owns(event.containerId)), None
            )
        if deployment is not None:
            deployment.onEvent(event)


@implementer(IHealthCheck)
class EngineHealth:
    """
    C{/healthz}'s word on the engine, as the last poll or check found it.
    """

    name = "engine"

    def __init__(self, manager: DeploymentManager) -> None:
        self._manager = manager

    def health(self) -> str:
        return self._manager.engineState
