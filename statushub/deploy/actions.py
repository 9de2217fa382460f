"""
Acting on one node of a deployment: restart, stop, start, recreate
(PRODUCT.md, "Acting on one node").

An action is accepted or refused at once, then carried out; the feed tells
how it goes.  While it is under way its node carries C{action}; when it
failed, C{actionError} says why (and the node's status, polled at once, what
state it was left in); from a stop until the node is started again it
carries C{stoppedBy: "operator"}.  One action at a time per node, and only
while the deployment is C{deployed}; a teardown waits for the actions under
way before it removes anything.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any, Callable, Mapping, Optional

from twisted.internet.defer import Deferred, DeferredList, ensureDeferred
from twisted.logger import Logger

from statushub.topology import Node
from statushub.engine import ContainerSpec, ContainerState, EngineError, RecreateIncomplete
from statushub.errors import DeploymentConflict, RequestError
from statushub.metrics.actions import ACTION_OUTCOMES
from statushub.names import NODE_ACTIONS
from statushub.interfaces import IContainerEngine
from statushub.status import NodeStatus

if TYPE_CHECKING:
    from statushub.deploy.deployment import Deployment

# a node in one of these has no process running: a stop ends nothing
NOT_RUNNING = frozenset({"created", "exited", "dead", "missing", "failed"})
OPERATOR = "operator"

__all__ = ["ACTION_OUTCOMES", "NODE_ACTIONS", "ActionObserver", "NodeActions"]

#: told C{(action, outcome)} once per request (an outcome of ACTION_OUTCOMES):
#: its end, or why it ended at once
ActionObserver = Callable[[str, str], None]


class NodeActions:
    """
    The actions on one deployment's nodes: the ones under way, and the marks
    they leave on the nodes' statuses.

    @param stopTimeout: the grace (seconds) a stopping process gets before
        it is killed: C{[deploy] stop_timeout}.
    @ivar stoppedBy: the nodes stopped on purpose, not started since.
    """

    log = Logger()

    def __init__(
        self,
        deployment: "Deployment",
        engine: IContainerEngine,
        clock: Any,
        stopTimeout: float,
        observe: Optional[ActionObserver] = None,
    ) -> None:
        self._deployment = deployment
        self._engine = engine
        self._clock = clock
        self._stopTimeout = stopTimeout
        self._observe = observe or (lambda action, outcome: None)
        self._underway: dict[str, str] = {}
        self._working: dict[str, Deferred[None]] = {}
        self._errors: dict[str, str] = {}
        # when each node's last action ended: a poll asked before then may
        # show what the action changed the other way round
        self._settled: dict[str, float] = {}
        # nodes whose next picture gets a new since (restarted, recreated)
        self.fresh: set[str] = set()
        self.stoppedBy: set[str] = set()

    # -- requests --------------------------------------------------------

    def request(self, nodeId: str, action: str) -> bool:
        """
        Accept C{action} on the node C{nodeId} and start it, or refuse it.

        @return: L{True} when it was started; L{False} when there is nothing
            to do (a stop of a node stopped on purpose, a start of one that
            runs).
        @raise RequestError: C{action} is not one of L{NODE_ACTIONS} (400).
        @raise statushub.errors.UnknownNode: the deployment has no such node.
        @raise DeploymentConflict: the deployment is not C{deployed}, another
            action on the node is under way, or the node cannot take this one
            (no container to start; a topology entry unknown to recreate it).
        """
        if action not in NODE_ACTIONS:
            raise RequestError(f"{action!r} is not a node action ({', '.join(NODE_ACTIONS)})")
        try:
            started = self._accept(nodeId, action)
        except RequestError:
            self._observe(action, "refused")
            raise
        if not started:
            self._observe(action, "unchanged")
        return started

    def _accept(self, nodeId: str, action: str) -> bool:
        deployment = self._deployment
        name = deployment.name
        if deployment.status != "deployed":
            raise DeploymentConflict(
                f"deployment {name!r} is {deployment.status}: its nodes can be acted on "
                "once it is deployed", [name],
            )
        containerId = deployment.containerOf(nodeId)  # or UnknownNode
        under = self._underway.get(nodeId)
        if under is not None:
            raise DeploymentConflict(
                f"node {nodeId!r} of {name!r}: a {under} is under way; wait for it to end", [name]
            )
        # as last shown (missing: not shown yet)
        status = next(
            (n.status for n in deployment.picture.nodeStatuses if n.nodeId == nodeId), "missing"
        )
        if action == "stop" and nodeId in self.stoppedBy and status in NOT_RUNNING:
            return False
        if action == "start" and status == "running" and nodeId not in self.stoppedBy:
            return False
        if action in ("start", "restart") and (not containerId or status == "missing"):
            raise DeploymentConflict(
                f"node {nodeId!r} of {name!r} has no container (missing): recreate it", [name]
            )
        if action == "recreate" and self.spec(nodeId) is None:
            raise DeploymentConflict(
                f"node {nodeId!r} of {name!r}: this hub does not know its topology entry "
                "(adopted from a container that did not carry it): tear the deployment "
                "down and deploy it again", [name],
            )
        self._underway[nodeId] = action
        self._errors.pop(nodeId, None)
        if action == "stop":
            # said at once: what the feed shows meanwhile is no crash
            self.stoppedBy.add(nodeId)
        self.log.info("{action} of node {node} of {name}: started",
                      action=action, node=nodeId, name=name)
        deployment.refresh(pollSoon=False)
        working = ensureDeferred(self._run(nodeId, action, containerId))
        if nodeId in self._underway:  # not ended already (an engine that answers at once)
            self._working[nodeId] = working
        working.addErrback(
            lambda f: self.log.failure("{action} of node {node}: ending it failed", f,
                                       action=action, node=nodeId)
        )
        return True

    async def _run(self, nodeId: str, action: str, containerId: str) -> None:
        outcome = "failed"
        try:
            await self._carryOut(nodeId, action, containerId)
            outcome = "succeeded"
        except RecreateIncomplete as e:
            # the old container is gone: the node keeps whatever there is now
            self._deployment.replaceContainer(nodeId, e.containerId)
            self._errors[nodeId] = f"{action} failed: {e}"
        except EngineError as e:
            self._errors[nodeId] = f"{action} failed: {e}"
        except Exception as e:
            self.log.failure("{action} of node {node} failed unexpectedly", action=action, node=nodeId)
            self._errors[nodeId] = f"{action} failed: unexpected error: {e!r}"
        finally:
            del self._underway[nodeId]
            self._working.pop(nodeId, None)
            self._settled[nodeId] = self._clock.seconds()
            if outcome == "failed" and action == "stop":
                self.stoppedBy.discard(nodeId)
            if outcome == "failed":
                self.log.warn("{action} of node {node} of {name}: {error}", action=action,
                              node=nodeId, name=self._deployment.name, error=self._errors[nodeId])
            else:
                self.log.info("{action} of node {node} of {name}: done", action=action,
                              node=nodeId, name=self._deployment.name)
            self._observe(action, outcome)
            # the feed tells the end at once, and a poll what state it left
            self._deployment.refresh(pollSoon=True)

    async def _carryOut(self, nodeId: str, action: str, containerId: str) -> None:
        engine, grace = self._engine, self._stopTimeout
        if action == "stop":
            await engine.stopContainer(containerId, grace)
            self._deployment.believe(containerId, "exited")
            return
        if action == "start" or (action == "restart" and nodeId in self.stoppedBy):
            # a node stopped on purpose is started, its restart policy back
            node = self._node(nodeId)
            await engine.startContainer(containerId, None if node is None else node.restart)
        elif action == "restart":
            await engine.restartContainer(containerId, grace)
        else:
            spec = self.spec(nodeId)
            assert spec is not None  # checked when accepted
            containerId = await engine.recreateContainer(containerId, spec, grace)
            self._deployment.replaceContainer(nodeId, containerId)
        self._deployment.believe(containerId, "running")
        self.stoppedBy.discard(nodeId)
        self.fresh.add(nodeId)

    def _node(self, nodeId: str) -> Optional[Node]:
        """
        The node's topology entry, if this hub knows it.
        """
        topology = self._deployment.topology
        for node in topology.nodes if topology is not None else ():
            if node.id == nodeId and node.image:
                return node
        return None

    def spec(self, nodeId: str) -> Optional[ContainerSpec]:
        """
        What the node's container is made from, exactly as the deploy made
        it (L{None}: its topology entry is unknown).
        """
        topology = self._deployment.topology
        if topology is None or self._node(nodeId) is None:
            return None
        for node, spec in self._deployment.containerSpecs(topology):
            if node.id == nodeId:
                return spec
        return None

    def wait(self) -> "Deferred[Any]":
        """
        Fire when every action under way now has ended (never fails).
        """
        return DeferredList(list(self._working.values()))

    # -- what the feed shows ----------------------------------------------

    def mark(self, nodes: tuple[NodeStatus, ...]) -> tuple[NodeStatus, ...]:
        """
        The nodes' statuses with what the actions say about them.
        """
        if not (self.stoppedBy or self._underway or self._errors) and not any(
            n.stoppedBy or n.action or n.actionError for n in nodes
        ):
            return nodes
        return tuple(
            replace(
                node,
                stoppedBy=OPERATOR if node.nodeId in self.stoppedBy else None,
                action=self._underway.get(node.nodeId),
                actionError=self._errors.get(node.nodeId),
            )
            for node in nodes
        )

    def observed(
        self,
        nodes: tuple[NodeStatus, ...],
        mapping: list[tuple[str, str]],
        seen: Mapping[str, ContainerState],
        asOf: float,
    ) -> None:
        """
        Learn from a list asked for at C{asOf}: a node seen running has been
        started (by whoever); one the engine keeps stopped (a Swarm service
        at 0 replicas) is stopped on purpose.  A node with an action under
        way, or one that ended after C{asOf}, is left as it is.
        """
        statuses = {n.nodeId: n.status for n in nodes}
        for nodeId, containerId in mapping:
            if nodeId in self._underway or asOf <= self._settled.get(nodeId, float("-inf")):
                continue
            state = seen.get(containerId)
            if state is not None and state.keptStopped:
                self.stoppedBy.add(nodeId)
            elif statuses.get(nodeId) == "running":
                self.stoppedBy.discard(nodeId)
