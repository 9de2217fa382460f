"""
The L{IContainerEngine} / L{IEventStream} contract, written once and run
against every implementation, as tahoe-lafs's C{test_istorageserver.py}
runs one suite over two storage servers: L{EngineContract} holds the tests,
and each subclass gives them its engine through a harness
(C{tests/engineharness.py}).

 - L{TestFakeEngine}: the in-memory engine the unit tests stand on (fast,
   in the plain unit suite): where it disagreed with the real engines it
   was fixed, so that a unit test over it means something.
 - L{TestDockerEngine}: L{DockerEngine} on the private dockerd.
 - L{TestSwarmEngine}: L{SwarmEngine} on the two-node test swarm.  It
   models a node as a service: where that makes it differ, the difference
   is written down here as a per-implementation expectation (a class
   attribute or an overridden test, each saying why), never skipped
   silently.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Iterator, Optional

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import deferLater
from twisted.internet.threads import deferToThread
from zope.interface.verify import verifyObject

from statushub.engine import (
    DEPLOYMENT_LABEL,
    NODE_LABEL,
    ContainerDetail,
    ContainerSpec,
    ContainerState,
    EngineError,
    EngineEvent,
    EngineUnreachable,
    HealthCheckSpec,
    ImageNotFound,
)
from statushub.interfaces import IContainerEngine, IEventStream
from tests.engineharness import (
    NODE_COMMAND,
    DockerHarness,
    EngineHarness,
    FakeHarness,
    SwarmHarness,
    deafSocket,
)
from tests.fixtures.docker import IMAGE
from tests.waiting import waitUntil

# a health check that passes at once and says so
CHECK = HealthCheckSpec(test=("CMD-SHELL", "echo checked"), interval=0.2, timeout=2)
CHECK_OUTPUT = "checked\n"
# how long a real engine may take to do what it was asked
DEADLINE = 30.0


def spec(deployment: str, node: str, **changes: Any) -> ContainerSpec:
    fields: dict[str, Any] = dict(
        name=f"{deployment}-{node}",
        image=IMAGE,
        command=NODE_COMMAND,
        labels=((DEPLOYMENT_LABEL, deployment), (NODE_LABEL, node)),
    )
    fields.update(changes)
    return ContainerSpec(**fields)


async def listed(engine: Any, labels: dict[str, Optional[str]]) -> dict[str, ContainerState]:
    return {s.containerId: s for s in await engine.listContainers(labels)}


async def stateOf(engine: Any, containerId: str) -> Optional[ContainerState]:
    return (await listed(engine, {DEPLOYMENT_LABEL: None})).get(containerId)


async def started(harness: EngineHarness, spec: ContainerSpec) -> str:
    containerId = await harness.engine.createContainer(spec)
    await harness.engine.startContainer(containerId)
    return containerId


async def eventsUntil(
    harness: EngineHarness, stream: IEventStream, last: Callable[[EngineEvent], bool]
) -> list[EngineEvent]:
    """
    Read C{stream} up to and including the event C{last} accepts.
    """
    seen: list[EngineEvent] = []
    while True:
        event = await harness.read(stream)
        assert event is not None, f"the stream ended after {[e.action for e in seen]}"
        seen.append(event)
        if last(event):
            return seen


class EngineContract:
    """
    What every L{IContainerEngine} does.  A subclass provides the
    C{harness} fixture (C{harness.engine} is the engine under test) and
    says, in the attributes below, where its engine legitimately differs.
    """

    # what a created, not yet started container shows in a list
    createdStatuses: tuple[str, ...] = ("created",)
    # engine calls behind one listContainers, whatever the number listed
    callsPerList = 1
    # which call refuses an image the engine does not have
    imageCheckedBy = "createContainer"

    @pytest.fixture
    def deployment(self, request: Any) -> str:
        """
        A deployment label of the test's own: what another test left
        behind (a swarm's task still ending) never shows in its lists.
        """
        return "contract-" + request.node.originalname.removeprefix("test_").lower()

    # -- per-implementation expectations -----------------------------------

    def assertWhere(self, state: ContainerState) -> None:
        """
        One engine knows no hosts: a listed container names none.
        """
        assert (state.container, state.host, state.hostStatus) == (None, None, None), state

    def assertEnded(self, state: ContainerState, code: int) -> None:
        """
        A container whose process ended with C{code} and was not started
        again: exited, and the list says the code.
        """
        assert (state.status, state.exitCode) == ("exited", code), state

    # a recreated node gets a new id (a Swarm service keeps its own)
    recreateKeepsId = False

    def assertKeptStopped(self, state: Optional[ContainerState]) -> None:
        """
        A node stopped on purpose: its process ended on SIGTERM (see
        L{NODE_COMMAND}); one engine's list cannot tell it was on purpose.
        """
        assert state is not None
        assert (state.status, state.exitCode, state.keptStopped) == ("exited", 143, False), state

    async def runsAnew(self, harness: EngineHarness, before: ContainerState, since: Any) -> bool:
        """
        Whether the node C{before} shows runs again in a process started
        after C{since} (L{EngineHarness.startedAt}): in the same container.
        """
        state = await stateOf(harness.engine, before.containerId)
        if state is None or state.status != "running":
            return False
        return await harness.startedAt(before.containerId) > since

    async def restarted(self, harness: EngineHarness, before: ContainerState) -> bool:
        """
        Whether the engine started the container C{before} shows again
        since: it runs, and its detail counts a restart.
        """
        state = await stateOf(harness.engine, before.containerId)
        if state is None or state.status != "running":
            return False
        detail = await harness.engine.inspectContainer(before.containerId)
        return detail.restartCount >= 1

    # -- the contract ---------------------------------------------------------

    def test_provides(self, harness: EngineHarness) -> None:
        assert verifyObject(IContainerEngine, harness.engine)

    @pytest_twisted.ensureDeferred
    async def test_ping(self, harness: EngineHarness) -> None:
        assert await harness.engine.ping() is None

    @pytest_twisted.ensureDeferred
    async def test_listByLabels(self, harness: EngineHarness, deployment: str) -> None:
        """
        Started and created containers are listed with their labels and
        state, by every label given (a value of L{None} matches any value);
        one list costs the same engine calls whatever it finds.
        """
        engine = harness.engine
        a = await started(harness, spec(deployment, "a"))
        b = await engine.createContainer(spec(deployment, "b"))
        other = await started(harness, spec(deployment + "-other", "a"))

        ours = await listed(engine, {DEPLOYMENT_LABEL: deployment})
        assert set(ours) == {a, b}
        assert (ours[a].status, ours[a].exitCode) == ("running", None)
        assert ours[a].labels[DEPLOYMENT_LABEL] == deployment
        assert ours[a].labels[NODE_LABEL] == "a"
        assert ours[b].status in self.createdStatuses, ours[b]
        assert ours[b].labels[NODE_LABEL] == "b"
        self.assertWhere(ours[a])

        anyDeployment = await listed(engine, {DEPLOYMENT_LABEL: None})
        assert {a, b, other} <= set(anyDeployment)
        assert all(DEPLOYMENT_LABEL in s.labels for s in anyDeployment.values())
        assert set(await listed(engine, {DEPLOYMENT_LABEL: deployment, NODE_LABEL: "a"})) == {a}
        assert set(await listed(engine, {DEPLOYMENT_LABEL: None, NODE_LABEL: "a"})) >= {a, other}
        assert set(await listed(engine, {DEPLOYMENT_LABEL: deployment, NODE_LABEL: None})) == {a, b}
        assert await engine.listContainers({DEPLOYMENT_LABEL: "contract-nobody"}) == []

        for labels, count in (
            ({DEPLOYMENT_LABEL: deployment, NODE_LABEL: "a"}, 1),
            ({DEPLOYMENT_LABEL: deployment}, 2),
            ({NODE_LABEL: "a"}, 2),
        ):
            before = harness.backendCalls()
            assert len(await engine.listContainers(labels)) >= count
            assert harness.backendCalls() - before == self.callsPerList, labels

    @pytest_twisted.ensureDeferred
    async def test_inspect(self, harness: EngineHarness, deployment: str) -> None:
        """
        A look at one container gives its detail: no restart yet, no exit
        code while it runs (Docker's 0), the output of its last health
        check; a container that is gone is an error.
        """
        engine = harness.engine
        containerId = await started(harness, spec(deployment, "a", healthcheck=CHECK))
        await harness.checkPasses(containerId, CHECK_OUTPUT)

        async def checked() -> Optional[ContainerDetail]:
            detail = await engine.inspectContainer(containerId)
            return detail if detail.healthOutput is not None else None

        detail = await waitUntil(checked, DEADLINE, 0.1, "a health check's output")
        assert detail == ContainerDetail(containerId, restartCount=0, exitCode=0,
                                         healthOutput=CHECK_OUTPUT)
        await engine.removeContainer(containerId)
        with pytest.raises(EngineError):
            await engine.inspectContainer(containerId)

    @pytest_twisted.ensureDeferred
    async def test_remove(self, harness: EngineHarness, deployment: str) -> None:
        """
        A running container is removed (forced); removing one that is gone
        is not an error.
        """
        engine = harness.engine
        containerId = await started(harness, spec(deployment, "a"))
        await engine.removeContainer(containerId)
        assert await listed(engine, {DEPLOYMENT_LABEL: deployment}) == {}
        await engine.removeContainer(containerId)

    @pytest_twisted.ensureDeferred
    async def test_startGone(self, harness: EngineHarness, deployment: str) -> None:
        """
        Starting a container that is gone fails with an L{EngineError}.
        """
        engine = harness.engine
        containerId = await engine.createContainer(spec(deployment, "a"))
        await engine.removeContainer(containerId)
        with pytest.raises(EngineError):
            await engine.startContainer(containerId)

    @pytest_twisted.ensureDeferred
    async def test_unknownImage(self, harness: EngineHarness, deployment: str) -> None:
        """
        An image the engine does not have fails with L{ImageNotFound} and
        leaves nothing once what was created is removed (on one engine,
        nothing was).
        """
        engine = harness.engine
        missing = spec(deployment, "a", image="statushub/no-such-image")
        if self.imageCheckedBy == "createContainer":
            with pytest.raises(ImageNotFound):
                await engine.createContainer(missing)
        else:
            containerId = await engine.createContainer(missing)
            with pytest.raises(ImageNotFound):
                await engine.startContainer(containerId)
            await engine.removeContainer(containerId)
        assert await listed(engine, {DEPLOYMENT_LABEL: deployment}) == {}

    @pytest_twisted.ensureDeferred
    async def test_unreachable(self, harness: EngineHarness, tmp_path: Any) -> None:
        """
        An engine at a socket nobody listens on: every call fails with
        L{EngineUnreachable}, saying so.
        """
        path = str(tmp_path / "deaf.sock")
        deaf = deafSocket(path)
        try:
            engine = harness.engineAt(path)
            missing = "0" * 64
            calls = {
                "ping": lambda: engine.ping(),
                "createContainer": lambda: engine.createContainer(spec("contract-unreachable", "a")),
                "startContainer": lambda: engine.startContainer(missing),
                "removeContainer": lambda: engine.removeContainer(missing),
                "listContainers": lambda: engine.listContainers({DEPLOYMENT_LABEL: None}),
                "inspectContainer": lambda: engine.inspectContainer(missing),
                "events": lambda: engine.events({DEPLOYMENT_LABEL: None}),
            }
            for name, call in calls.items():
                with pytest.raises(EngineUnreachable, match="cannot reach the engine"):
                    await call()
        finally:
            deaf.close()

    @pytest_twisted.ensureDeferred
    async def test_unresponsiveNeverBlocks(self, harness: EngineHarness, tmp_path: Any) -> None:
        """
        An engine that takes a call's connection and does not answer: the
        reactor keeps turning while the call waits (it is not answered yet
        when the listener has seen the connection), and when the
        connection breaks the call fails with L{EngineUnreachable}.
        """
        connections: list[Protocol] = []

        class Silent(Protocol):
            def connectionMade(self) -> None:
                connections.append(self)

        path = str(tmp_path / "silent.sock")
        port = reactor.listenUNIX(path, Factory.forProtocol(Silent))
        try:
            engine = harness.engineAt(path)
            for call in (
                lambda: engine.ping(),
                lambda: engine.listContainers({DEPLOYMENT_LABEL: None}),
                lambda: engine.events({DEPLOYMENT_LABEL: None}),
            ):
                seen = len(connections)
                d = call()
                await waitUntil(lambda: len(connections) > seen, DEADLINE,
                                what="the engine's connection")
                assert not d.called
                connections[-1].transport.loseConnection()
                with pytest.raises(EngineUnreachable):
                    await d
        finally:
            await port.stopListening()

    @pytest_twisted.ensureDeferred
    async def test_events(self, harness: EngineHarness, deployment: str) -> None:
        """
        The stream carries the labelled containers' create, start, die
        (with the exit code) and destroy, with their labels, and nothing of
        a container without the labels asked for.
        """
        engine = harness.engine
        stream = await engine.events({DEPLOYMENT_LABEL: deployment})
        try:
            assert verifyObject(IEventStream, stream)
            other = await started(harness, spec(deployment + "-other", "a"))
            containerId = await started(harness, spec(deployment, "a"))
            await harness.end(containerId, 3)
            await engine.removeContainer(containerId)
            await engine.removeContainer(other)
            seen = await eventsUntil(
                harness, stream, lambda e: e.containerId == containerId and e.action == "destroy"
            )
        finally:
            stream.close()
        assert {e.containerId for e in seen} == {containerId}, [e.action for e in seen]
        actions = [e.action for e in seen]
        lifecycle = [a for a in actions if a in ("create", "start", "die", "destroy")]
        assert lifecycle == ["create", "start", "die", "destroy"], actions
        [died] = [e for e in seen if e.action == "die"]
        assert died.labels["exitCode"] == "3"
        assert all(e.labels[NODE_LABEL] == "a" for e in seen)
        assert all(e.labels[DEPLOYMENT_LABEL] == deployment for e in seen)

    @pytest_twisted.ensureDeferred
    async def test_eventsFilteredByAction(self, harness: EngineHarness, deployment: str) -> None:
        """
        Asked for some actions, the stream carries only those: not the
        create, nor the kill of a forced removal, only the death it causes
        (SIGKILL's code).
        """
        engine = harness.engine
        stream = await engine.events({DEPLOYMENT_LABEL: deployment}, ("start", "die", "destroy"))
        try:
            containerId = await started(harness, spec(deployment, "a"))
            await engine.removeContainer(containerId)
            seen = await eventsUntil(harness, stream, lambda e: e.action == "destroy")
        finally:
            stream.close()
        assert [(e.containerId, e.action) for e in seen] == [
            (containerId, "start"), (containerId, "die"), (containerId, "destroy")
        ]
        assert seen[1].labels["exitCode"] == "137"

    @pytest_twisted.ensureDeferred
    async def test_closeEndsBlockedNext(self, harness: EngineHarness, deployment: str) -> None:
        """
        L{IEventStream.close} ends a L{IEventStream.next} blocked in another
        thread; a closed stream reads as ended.
        """
        stream = await harness.engine.events({DEPLOYMENT_LABEL: deployment})
        blocked = harness.readBlocked(stream)
        assert not blocked.called
        stream.close()
        assert await blocked is None
        assert await harness.read(stream) is None

    @pytest_twisted.ensureDeferred
    async def test_healthEvents(self, harness: EngineHarness, deployment: str) -> None:
        """
        A health-checked node: C{health_status} asked for, the stream says
        C{health_status: healthy} (and nothing of the checks' runs); the
        list says healthy.
        """
        engine = harness.engine
        stream = await engine.events({DEPLOYMENT_LABEL: deployment}, ("health_status",))
        try:
            containerId = await started(harness, spec(deployment, "a", healthcheck=CHECK))
            await harness.checkPasses(containerId, CHECK_OUTPUT)
            [event] = await eventsUntil(harness, stream, lambda e: True)
        finally:
            stream.close()
        assert (event.containerId, event.action) == (containerId, "health_status: healthy")
        assert event.labels[NODE_LABEL] == "a"
        state = await stateOf(engine, containerId)
        assert (state.status, state.health) == ("running", "healthy")

    @pytest_twisted.ensureDeferred
    async def test_restartPolicy(self, harness: EngineHarness, deployment: str) -> None:
        """
        When a node's process ends, its restart policy says what the engine
        does: C{none} never starts it again, C{on-failure} when it failed,
        C{any} always.
        """
        engine = harness.engine
        cases = {
            # node: (policy, exit code, started again)
            "none-failed": ("none", 3, False),
            "onfailure-failed": ("on-failure", 3, True),
            "onfailure-done": ("on-failure", 0, False),
            "any-done": ("any", 0, True),
        }
        before = {}
        for node, (policy, code, _) in cases.items():
            containerId = await started(harness, spec(deployment, node, restart=policy))
            before[node] = await stateOf(engine, containerId)
        for node, (_, code, _) in cases.items():
            await harness.end(before[node].containerId, code)
        for node, (_, code, again) in cases.items():
            if again:
                await waitUntil(lambda: self.restarted(harness, before[node]), DEADLINE, 0.2,
                                f"{node} started again")
                # running again: no exit code to show
                assert (await stateOf(engine, before[node].containerId)).exitCode is None

        async def ended(node: str) -> Optional[ContainerState]:
            state = await stateOf(engine, before[node].containerId)
            return state if state is not None and state.status != "running" else None

        for node, (_, code, again) in cases.items():
            if not again:
                state = await waitUntil(lambda: ended(node), DEADLINE, 0.2, f"{node} ended")
                self.assertEnded(state, code)
                assert not await self.restarted(harness, before[node])


    # -- node actions -------------------------------------------------------

    @pytest_twisted.ensureDeferred
    async def test_stopKeepsStopped(self, harness: EngineHarness, deployment: str) -> None:
        """
        A stop ends the node's process (SIGTERM within the grace) and keeps
        it ended: its restart policy ("any") does not bring it back, list
        after list.  A start runs it again; a start or a stop of a node
        already so changes nothing.
        """
        engine = harness.engine
        containerId = await started(harness, spec(deployment, "a", restart="any", stopTimeout=5))
        before = await stateOf(engine, containerId)
        since = await harness.startedAt(containerId)
        await engine.stopContainer(containerId, 5)
        for _ in range(5):
            self.assertKeptStopped(await stateOf(engine, containerId))
            # not waiting for a result: giving a restart policy time to act
            await deferLater(reactor, 0.3, lambda: None)
        await engine.stopContainer(containerId, 5)
        self.assertKeptStopped(await stateOf(engine, containerId))

        await engine.startContainer(containerId, "any")
        await waitUntil(lambda: self.runsAnew(harness, before, since), DEADLINE, 0.2, "running anew")
        again = await stateOf(engine, containerId)
        assert not again.keptStopped
        await engine.startContainer(containerId)
        assert (await stateOf(engine, containerId)) == again

    @pytest_twisted.ensureDeferred
    async def test_restart(self, harness: EngineHarness, deployment: str) -> None:
        """
        A restart runs the node anew under the same id; another node is not
        touched.
        """
        engine = harness.engine
        a = await started(harness, spec(deployment, "a", stopTimeout=5))
        b = await started(harness, spec(deployment, "b", stopTimeout=5))
        before = await stateOf(engine, a)
        since, sinceB = await harness.startedAt(a), await harness.startedAt(b)
        await engine.restartContainer(a, 5)
        await waitUntil(lambda: self.runsAnew(harness, before, since), DEADLINE, 0.2, "restarted")
        assert await harness.startedAt(b) == sinceB

    @pytest_twisted.ensureDeferred
    async def test_recreate(self, harness: EngineHarness, deployment: str) -> None:
        """
        A recreate makes the node anew from its spec: one container of the
        node is left, running, labelled as before, the old process gone; a
        node whose container (or service) is gone is made anew too.
        """
        engine = harness.engine
        made = spec(deployment, "a", stopTimeout=5)
        old = await started(harness, made)
        before = await stateOf(engine, old)
        since = await harness.startedAt(old)
        new = await engine.recreateContainer(old, made, 5)
        assert (new == old) == self.recreateKeepsId
        nodes = await listed(engine, {DEPLOYMENT_LABEL: deployment})
        assert list(nodes) == [new]
        assert nodes[new].status == "running"
        assert nodes[new].labels == before.labels
        if new == old:
            await waitUntil(lambda: self.runsAnew(harness, before, since), DEADLINE, 0.2, "anew")

        await engine.removeContainer(new)
        again = await engine.recreateContainer(new, made, 5)
        assert again != new
        assert [s.status for s in (await listed(engine, {DEPLOYMENT_LABEL: deployment})).values()] == [
            "running"
        ]


class TestFakeEngine(EngineContract):
    @pytest.fixture
    def harness(self) -> EngineHarness:
        return FakeHarness()

    def test_unresponsiveNeverBlocks(self) -> None:  # type: ignore[override]
        pytest.skip("the fake has no socket: its calls answer at once, or when the test says")


@pytest.mark.docker
class TestDockerEngine(EngineContract):
    @pytest.fixture
    def harness(self, docker: Any) -> Iterator[EngineHarness]:
        harness = DockerHarness(docker)
        yield harness
        harness.stop()


@pytest.mark.docker
class TestSwarmEngine(EngineContract):
    """
    A node is a Swarm service of one replica: its id is the service's, and
    its process runs in the container of the service's current task, on
    whichever host took it.
    """

    # Swarm schedules a service as soon as it is created: its task is on
    # its way, or already runs
    createdStatuses = ("pending", "running")
    # services, tasks and hosts: three calls, whatever the number
    callsPerList = 3
    # a service is created whatever its image: the host its task lands on
    # finds the image missing, and startContainer says so
    imageCheckedBy = "startContainer"

    @pytest.fixture
    def harness(self, swarm: Any) -> Iterator[EngineHarness]:
        harness = SwarmHarness(swarm)
        yield harness
        harness.stop()

    def assertWhere(self, state: ContainerState) -> None:
        """
        A node runs in a container (not the service's id) on a host that
        is up.
        """
        assert state.host in ("manager", "worker") and state.hostStatus == "ready", state
        assert state.container and state.container != state.containerId, state

    def assertEnded(self, state: ContainerState, code: int) -> None:
        """
        A task that ended is C{exited} when it completed (code 0), else
        C{failed}, with Swarm's reason naming the code; the list gives no
        exit code.
        """
        if code == 0:
            assert (state.status, state.exitCode) == ("exited", None), state
        else:
            assert state.status == "failed" and f"({code})" in (state.error or ""), state

    async def restarted(self, harness: EngineHarness, before: ContainerState) -> bool:
        """
        Swarm does not restart a task: it runs a new one, in a new
        container (and there is no restart count to read).
        """
        state = await stateOf(harness.engine, before.containerId)
        return (
            state is not None
            and state.status == "running"
            and state.container not in (None, before.container)
        )

    # a service is made anew by a new task: its id stays
    recreateKeepsId = True

    def assertKeptStopped(self, state: Optional[ContainerState]) -> None:
        """
        A service at 0 replicas: its task ended (the list gives no code),
        and the list says it is kept stopped.
        """
        assert state is not None
        assert (state.status, state.keptStopped) == ("exited", True), state

    async def runsAnew(self, harness: EngineHarness, before: ContainerState, since: Any) -> bool:
        """
        Swarm runs a node anew in a new task: a new container.
        """
        state = await stateOf(harness.engine, before.containerId)
        return (
            state is not None
            and state.status == "running"
            and state.container not in (None, before.container)
        )

    @pytest_twisted.ensureDeferred
    async def test_stopGrace(self, harness: EngineHarness, deployment: str) -> None:
        """
        A service's grace is its spec's: what its task gets when it is
        stopped, replaced or removed.
        """
        containerId = await started(harness, spec(deployment, "a", stopTimeout=3))
        found = await deferToThread(harness.swarm.manager.docker, "service", "inspect", containerId)
        container = json.loads(found)[0]["Spec"]["TaskTemplate"]["ContainerSpec"]
        assert container["StopGracePeriod"] == 3 * 10**9

    @pytest_twisted.ensureDeferred
    async def test_inspect(self, harness: EngineHarness, deployment: str) -> None:
        """
        There is no detail of a node: its id is a service's, which no
        container has.  The hub never asks: a swarm's events name no
        container (see L{test_events}).
        """
        containerId = await started(harness, spec(deployment, "a"))
        with pytest.raises(EngineError):
            await harness.engine.inspectContainer(containerId)

    @pytest_twisted.ensureDeferred
    async def test_events(self, harness: EngineHarness, deployment: str) -> None:
        """
        The stream is the manager's service and host events, whatever the
        labels: each names no container and only says "something changed,
        poll" (a task's container runs on another host, whose events the
        manager does not see).
        """
        engine = harness.engine
        stream = await engine.events({DEPLOYMENT_LABEL: deployment})
        try:
            assert verifyObject(IEventStream, stream)
            containerId = await started(harness, spec(deployment, "a"))
            await engine.removeContainer(containerId)
            seen = await eventsUntil(harness, stream, lambda e: e.action == "service remove")
        finally:
            stream.close()
        assert "service create" in [e.action for e in seen]
        assert all(e.containerId == "" and e.action.split()[0] in ("service", "node") for e in seen)

    def test_eventsFilteredByAction(self) -> None:  # type: ignore[override]
        pytest.skip("a swarm's stream is its service and host events, unfiltered "
                    "(see test_events): none names a container or an action of one")

    @pytest_twisted.ensureDeferred
    async def test_healthEvents(self, harness: EngineHarness, deployment: str) -> None:
        """
        No health events (see L{test_events}); Swarm runs a health-checked
        task only once it is healthy, and the list says so.
        """
        containerId = await started(harness, spec(deployment, "a", healthcheck=CHECK))
        state = await stateOf(harness.engine, containerId)
        assert (state.status, state.health) == ("running", "healthy")
