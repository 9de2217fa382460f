"""
One named deployment: its nodes and their containers, its state machine, and
its picture on the L{StatusBoard}.

States: C{deploying -> deployed -> tearing_down -> idle}; a deploy that fails
removes what it created and ends C{failed} (with the reason), from which a
teardown (or a new deploy of the same name) is allowed.  C{idle} is the end:
its message is the deployment's last, and the manager forgets it.  While it
is C{deployed}, its nodes can be acted on one by one (L{statushub.deploy.actions}).

Everything here touches only containers carrying this deployment's label and
this hub's owner, so one deployment's failure or teardown never reaches
another's, nor another hub's.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable, Optional, Sequence

from twisted.internet.defer import Deferred, DeferredList, ensureDeferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import deferLater
from twisted.logger import Logger

from statushub.deploy.actions import ActionObserver, NodeActions
from statushub.deploy.adoption import adoptedTopology
from statushub.deploy.bridge import nodeStatuses
from statushub.deploy.details import ContainerDetails
from statushub.deploy.owner import Owner
from statushub.topology import Node, Topology
from statushub.engine import (
    DEFAULT_STOP_TIMEOUT,
    ContainerSpec,
    ContainerState,
    EngineError,
    EngineEvent,
    EngineUnreachable,
)
from statushub.errors import DeploymentConflict, UnknownNode
from statushub.resources import ResourcePolicy
from statushub.interfaces import IContainerEngine
from statushub.status import NodeStatus, Picture, StatusBoard, isoTimestamp, withSince

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
# events after which one look at the container tells what the list cannot: its
# restart count (a start), the OOM killer's mark (a die, an oom), a check's output
INSPECT_ACTIONS = frozenset({"start", "restart", "die"})
# how often, and how far apart, teardown looks for containers still there
REMOVAL_CHECKS = 20
REMOVAL_CHECK_DELAY = 0.25

Seen = Optional[dict[str, ContainerState]]


class Deployment:
    """
    One deployment, named after its topology.

    @param pollSoon: ask the manager's poller for a poll in so many seconds
        (an event said something changed that the list should confirm).
    @param eventTTL: how long (seconds) an event's word about a container is
        believed over a poll that still shows the old state; a poll that
        agrees ends it sooner.
    @param owner: whose containers it makes and may remove.
    @param stopTimeout: the grace (seconds) a stopping process gets before
        it is killed, in a node action or a teardown; also each container's
        own (L{statushub.engine.ContainerSpec.stopTimeout}).
    @param observeAction: told how each node action ended (see
        L{statushub.deploy.actions.ActionObserver}).
    @param policy: what an adopted node's topology entry is read back with.
    @ivar working: the Deferred of the deploy or teardown under way; it
        never fails (the picture says how it ended).
    @ivar actions: the node actions (restart, stop, start, recreate).
    @ivar topology: what the nodes were made from (adopted: as far as the
        containers tell, see L{adoptedTopology}); L{None} before a deploy.
    """

    log = Logger()

    def __init__(
        self,
        name: str,
        engine: IContainerEngine,
        board: StatusBoard,
        clock: IReactorTime,
        eventTTL: float,
        pollSoon: Callable[[float], None] = lambda delay: None,
        owner: Owner = Owner(),
        stopTimeout: float = DEFAULT_STOP_TIMEOUT,
        observeAction: Optional[ActionObserver] = None,
        policy: ResourcePolicy = ResourcePolicy(),
    ) -> None:
        self.name = name
        self.owner = owner
        self._engine = engine
        self._board = board
        self._clock = clock
        self._eventTTL = eventTTL
        self._pollSoon = pollSoon
        self._stopTimeout = stopTimeout
        self._policy = policy
        # what the nodes were made from: a deploy's topology, or as much of
        # it as an adopted deployment's containers tell
        self.topology: Optional[Topology] = None
        self.actions = NodeActions(self, engine, clock, stopTimeout, observeAction)
        self._mapping: list[tuple[str, str]] = []
        self._lastSeen: Seen = None
        # containerId -> (fields an event told us, believed until)
        self._overlay: dict[str, tuple[dict[str, Any], float]] = {}
        # containerId -> what inspecting it last told
        self._details = ContainerDetails(clock, self._inspect)
        self.picture = Picture(deployStatus="idle", deployment=name)
        self.working: Deferred[None] = succeed(None)

    def __repr__(self) -> str:
        return f"<Deployment {self.name} {self.status}>"

    @property
    def status(self) -> str:
        return self.picture.deployStatus

    @property
    def mapping(self) -> list[tuple[str, str]]:
        """
        The C{(nodeId, containerId)} pairs, in node order; a node whose
        container was gone when it was adopted has C{""}.
        """
        return list(self._mapping)

    def owns(self, containerId: str) -> bool:
        return any(c == containerId for _, c in self._mapping)

    def _publish(self, picture: Picture) -> None:
        picture = picture.evolve(nodeStatuses=self.actions.mark(picture.nodeStatuses))
        picture = self._withSince(picture)
        self.picture = picture
        self._board.update(picture)

    def _withSince(self, picture: Picture) -> Picture:
        # a node an action restarted or recreated has a new since
        fresh, self.actions.fresh = self.actions.fresh, set()
        return withSince(self.picture, picture, isoTimestamp(self._clock.seconds()), fresh)

    def _change(self, **changes: Any) -> None:
        self._publish(self.picture.evolve(**changes))

    # -- adoption ------------------------------------------------------

    def adopt(self, mapping: Sequence[tuple[str, str]], seen: Seen) -> None:
        """
        Take over containers a previous hub left running: the deployment is
        C{deployed} at once, with what the engine showed.  A node stopped on
        purpose in the board's last picture (in the same container) still is.
        """
        self._mapping = list(mapping)
        self._overlay.clear()
        self._details.clear()
        self.topology = adoptedTopology(self.name, self._mapping, seen or {}, self._policy)
        before = {n.nodeId: n for n in self._board.picture(self.name).nodeStatuses}
        for nodeId, containerId in self._mapping:
            previous = before.get(nodeId)
            if previous is not None and previous.stoppedBy and previous.containerId == containerId:
                self.actions.stoppedBy.add(nodeId)
        # one message: deployed, with the nodes as found
        self.picture = Picture(deployStatus="deployed", deployment=self.name)
        self.show(seen, asOf=self._clock.seconds())

    # -- deploy --------------------------------------------------------

    def deploy(self, topology: Topology, engineWord: str = "unknown") -> "Deferred[None]":
        """
        Start deploying C{topology}: the picture is C{deploying} when this
        returns; the Deferred fires when the deploy has ended, C{deployed}
        or C{failed}.
        """
        assert topology.name == self.name
        self.topology = topology
        self._mapping = []
        self._overlay.clear()
        self._details.clear()
        self._lastSeen = None
        self._publish(Picture(deployStatus="deploying", deployment=self.name, engine=engineWord))
        self.working = ensureDeferred(self._deploy(topology))
        return self.working

    async def _deploy(self, topology: Topology) -> None:
        created: list[tuple[str, str]] = []
        nodeId = ""
        try:
            for node, spec in self.containerSpecs(topology):
                nodeId = node.id
                containerId = await self._engine.createContainer(spec)
                created.append((node.id, containerId))
                self._mapping = list(created)
                await self._engine.startContainer(containerId)
                self._change(
                    nodeStatuses=tuple(NodeStatus(n, c, "running") for n, c in created),
                    engine="reachable",
                )
        except Exception as e:
            reason = str(e) if isinstance(e, EngineError) else f"unexpected error: {e!r}"
            self.log.warn("deploying {name} failed at node {node}: {reason}",
                          name=self.name, node=nodeId, reason=reason)
            leftover = await self._removeAll([c for _, c in created])
            if leftover is not None:
                reason += f"; removing what was created failed too: {leftover}"
            self._mapping = []
            self._publish(
                Picture(
                    deployStatus="failed",
                    deployment=self.name,
                    engine="unreachable" if isinstance(e, EngineUnreachable) else "reachable",
                    error=f"node {nodeId!r}: {reason}",
                )
            )
            return
        self._change(deployStatus="deployed")

    async def _removeAll(self, containerIds: list[str], grace: float = 0) -> Optional[EngineError]:
        """
        Remove the given containers (all at once, each with C{grace} seconds
        to end on SIGTERM) and any other of this owner carrying this
        deployment's label (one whose create answer was lost, say), and no
        other.

        @return: L{None}, or the error that says why something may remain.
        """
        try:
            removals = [
                self._engine.removeContainer(containerId, grace)
                for containerId in containerIds if containerId
            ]
            results = await DeferredList(removals, consumeErrors=True)
            for ok, result in results:
                if not ok:
                    result.raiseException()
            # the engine may still be removing one (a removal that outlived
            # our timeout shows as "removing"): look until none is left
            for attempt in range(REMOVAL_CHECKS):
                listed = await self._engine.listContainers(self.owner.selector(self.name))
                remaining = [state for state in listed if self.owner.owns(state.labels)]
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

    def teardown(self) -> "Deferred[None]":
        """
        Start tearing down (from C{deployed} or C{failed}); the Deferred
        fires when it has ended: C{idle} (the last message), or C{failed}
        with the reason.

        @raise DeploymentConflict: a deploy or teardown is under way.
        """
        if self.status in ("deploying", "tearing_down"):
            raise DeploymentConflict(
                f"deployment {self.name!r} is {self.status}: wait for it", [self.name]
            )
        self._change(deployStatus="tearing_down")
        self.working = ensureDeferred(self._teardown())
        return self.working

    async def _teardown(self) -> None:
        # an action under way may still make a container: let it end first,
        # so that the removal below sees everything there is
        await self.actions.wait()
        # a deploy's rollback kills at once; a teardown ends processes as a
        # stop does
        problem = await self._removeAll([c for _, c in self._mapping], self._stopTimeout)
        if problem is not None:
            self.log.warn("tearing down {name} failed: {problem}", name=self.name, problem=problem)
            self._change(
                deployStatus="failed",
                engine="unreachable" if isinstance(problem, EngineUnreachable) else "reachable",
                error=f"teardown failed: {problem}; containers may remain, tear down again",
            )
            return
        self._mapping = []
        self._overlay.clear()
        self._details.clear()
        self._lastSeen = None
        # the seed's final message: idle, no nodes
        self._publish(Picture(deployStatus="idle", deployment=self.name, engine="reachable"))

    # -- polls and events ----------------------------------------------

    def show(self, seen: Seen, asOf: Optional[float] = None) -> None:
        """
        Put what a poll found (every labelled container, keyed by id; L{None}
        when the engine could not be asked), plus what recent events said,
        on the board.

        @param asOf: when a new poll's list was asked for: what it tells
            about nodes stopped or started is learnt.
        """
        self._lastSeen = seen
        merged = self._withEvents(seen)
        nodes = nodeStatuses(merged, self._mapping, self._details.known)
        if seen is not None and asOf is not None:
            self.actions.observed(nodes, self._mapping, seen, asOf)
        self._publish(
            self.picture.evolve(
                nodeStatuses=nodes,
                engine="unreachable" if seen is None else "reachable",
            )
        )
        if self.status == "deployed":
            # only a look tells whether the OOM killer ended one
            for containerId in self._details.deathsToLookAt(merged, self._mapping):
                self._inspect(containerId)

    # -- node actions ----------------------------------------------------

    def act(self, nodeId: str, action: str) -> bool:
        """
        Start C{action} on one node: L{NodeActions.request}.
        """
        return self.actions.request(nodeId, action)

    def containerSpecs(self, topology: Topology) -> list[tuple[Node, ContainerSpec]]:
        """
        What the engine is asked to make for each node: one way, a deploy's
        and a recreate's.
        """
        return topology.containerSpecs(self.owner.name, self._stopTimeout)

    def containerOf(self, nodeId: str) -> str:
        """
        The node's container (C{""} when it has none).

        @raise UnknownNode: no node of this deployment has that id.
        """
        for node, containerId in self._mapping:
            if node == nodeId:
                return containerId
        raise UnknownNode(self.name, nodeId)

    def replaceContainer(self, nodeId: str, containerId: str) -> None:
        """The node's container is now C{containerId} (C{""}: none)."""
        old = self.containerOf(nodeId)
        self._mapping = [(n, containerId if n == nodeId else c) for n, c in self._mapping]
        self._overlay.pop(old, None)
        self._details.forget(old)

    def believe(self, containerId: str, status: str) -> None:
        """
        Take an action's word that a container is now in C{status}, as an
        event's, until a poll agrees.
        """
        if containerId:
            told = {"status": status, "health": None, "exitCode": None}
            self._overlay[containerId] = (told, self._clock.seconds() + self._eventTTL)

    def refresh(self, pollSoon: bool) -> None:
        """
        Show the nodes again (an action started or ended); ask for a poll.
        """
        if self._lastSeen is not None and self.status == "deployed":
            self.show(self._lastSeen)
        else:
            self._publish(self.picture)
        if pollSoon:
            self._pollSoon(0)

    def _withEvents(self, seen: Seen) -> Seen:
        if seen is None or not self._overlay:
            return seen
        now = self._clock.seconds()
        merged = dict(seen)
        for containerId, (told, until) in list(self._overlay.items()):
            state = seen.get(containerId)
            current = {
                "status": state.status if state else "missing",
                "health": state.health if state else None,
                "exitCode": state.exitCode if state else None,
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
            if state is not None:
                # what the list knows besides (a Swarm task's host) stays
                merged[containerId] = replace(
                    state, status=fields["status"], health=fields["health"],
                    exitCode=fields["exitCode"],
                )
            else:
                merged[containerId] = ContainerState(
                    containerId, fields["status"], fields["health"], exitCode=fields["exitCode"]
                )
        return merged

    def _inspect(self, containerId: str) -> None:
        """
        Look at one container (an event said it changed) and show what
        that told.
        """

        async def inspect() -> None:
            try:
                detail = await self._engine.inspectContainer(containerId)
            except EngineError as e:
                self.log.debug("inspect {id}: {error}", id=containerId[:12], error=e)
                return
            if self.status != "deployed" or not self.owns(containerId):
                return
            self._details.looked(containerId, detail)
            if self._lastSeen is not None:
                self.show(self._lastSeen)

        ensureDeferred(inspect()).addErrback(
            lambda f: self.log.failure("inspecting a container failed", f)
        )

    def onEvent(self, event: EngineEvent) -> None:
        """
        One of the engine's container events, already routed here.
        """
        if self.status != "deployed" or not event.containerId:
            return
        if not self.owns(event.containerId):
            return  # stale: a container of an earlier deploy of this name
        told: dict[str, Any] = {}
        if event.action.startswith("health_status:"):
            told["health"] = event.action.split(":", 1)[1].strip()
            if told["health"] == "unhealthy":
                self._inspect(event.containerId)  # what the failing check said
        elif event.action in _EVENT_STATUS:
            status = _EVENT_STATUS[event.action]
            if status is None:
                return
            told["status"] = status
            if event.action == "die" and str(event.labels.get("exitCode", "")).lstrip("-").isdigit():
                told["exitCode"] = int(event.labels["exitCode"])
            if event.action == "die":
                self._details.died(event.containerId)
            elif event.action in ("start", "restart"):
                self._details.started(event.containerId)
            if event.action in INSPECT_ACTIONS:
                self._inspect(event.containerId)
            if status in ("exited", "missing"):
                told["health"] = None
            elif event.action in ("start", "restart"):
                # a (re)started container's check begins again
                told["health"] = _NO_HEALTH
        elif event.action in RECHECK_ACTIONS:
            # an event we cannot read a state from: ask the list
            self._pollSoon(0)
            if event.action == "oom":  # marked OOM-killed after the die's look, maybe
                self._inspect(event.containerId)
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
            self.show(self._lastSeen)
        # and look again shortly: the list catches up within moments
        self._pollSoon(0.5)
