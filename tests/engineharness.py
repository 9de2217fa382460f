"""
Each implementation of L{IContainerEngine} as the engine contract suite
(C{tests/test_engine_contract.py}) drives it: the engine, and what the suite
does to it that the interface does not offer (a node's process ending, a
health check passing, counting the calls behind a list, an engine nobody
answers at).
"""

from __future__ import annotations

import socket
from typing import Any, Optional, Protocol

from twisted.internet import reactor
from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.threads import deferToThread

from statushub.engine import DEPLOYMENT_LABEL, EngineEvent
from statushub.engine.docker import DockerEngine
from statushub.engine.swarm import SwarmEngine
from statushub.interfaces import IEventStream
from tests.fakeengine import FakeEngine
from tests.fixtures.docker import DockerEngineProcess
from tests.fixtures.swarm import SwarmCluster

# how long one read of an event stream may wait before the test fails
READ_TIMEOUT = 30.0
# the signal that makes a node's process end with each exit code (see
# NODE_COMMAND); sent from inside, as Docker does not restart a container
# that `docker kill` stopped
EXIT_SIGNALS = {3: "USR1", 0: "USR2"}
# a node that runs until told to end: USR1 ends it with 3, USR2 with 0, TERM
# (a swarm's stop) with 143 at once; `wait` returns as soon as a signal comes
NODE_COMMAND = (
    "sh", "-c",
    'trap "exit 3" USR1; trap "exit 0" USR2; trap "exit 143" TERM; sleep infinity & wait',
)


def tellToEnd(engine: DockerEngineProcess, container: str, code: int) -> None:
    """
    Tell the node's process in C{container} to end with C{code}, from inside
    (see L{NODE_COMMAND}).  Blocks.

    The exec's own outcome says nothing: the container may end (and take
    the exec with it) before the exec does.  The test looks for the end.
    """
    engine.docker("exec", container, "kill", f"-{EXIT_SIGNALS[code]}", "1", check=False)


class EngineHarness(Protocol):
    """
    What the contract suite asks of each implementation beside its engine.
    """

    engine: Any

    def stop(self) -> None:
        """
        Stop every engine made here.
        """

    def read(self, stream: IEventStream) -> "Deferred[Optional[EngineEvent]]":
        """
        The stream's next event, read as the hub reads it (a real stream's
        C{next} blocks: in a thread), failing after L{READ_TIMEOUT}.
        """

    def readBlocked(self, stream: IEventStream) -> Deferred:
        """
        Start a read with no time-out (for a test that ends it otherwise).
        """

    async def end(self, containerId: str, code: int) -> None:
        """
        The container's process ends by itself with C{code} (3 or 0).
        """

    async def checkPasses(self, containerId: str, output: str) -> None:
        """
        The container's health check passes, printing C{output} (a real
        engine runs it by itself).
        """

    async def say(self, containerId: str, text: str, stream: str = "stdout") -> None:
        """
        The node's process prints C{text} and a newline on C{stream}.
        """

    async def sampled(self, containerId: str) -> None:
        """
        The engine reads the node's resource use (a real engine does, about
        once a second, by itself).
        """

    def backendCalls(self) -> int:
        """
        How many calls the engine has made of what is behind it.
        """

    async def startedAt(self, containerId: str) -> Any:
        """
        When the container's process last started (comparable: later is
        greater).
        """

    def engineAt(self, path: str) -> Any:
        """
        An engine of this kind at the unix socket C{path}, whoever answers
        there (stopped by L{stop}).
        """


class CountingClient:
    """
    The Docker SDK's client of a real engine, counting the calls made
    through it (what one C{listContainers} costs).
    """

    def __init__(self, client: Any) -> None:
        self._client = client
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if not callable(attribute):
            return attribute

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            return attribute(*args, **kwargs)

        return counted


class FakeHarness:
    """
    The in-memory engine: its streams' C{next} returns a Deferred (the
    unit tests read it with C{callNow}, no thread), and what a real engine
    does by itself the harness does with the fake's helpers.
    """

    def __init__(self) -> None:
        self.engine = FakeEngine()

    def stop(self) -> None:
        pass

    def read(self, stream: IEventStream) -> "Deferred[Optional[EngineEvent]]":
        d = maybeDeferred(stream.next)
        d.addTimeout(READ_TIMEOUT, reactor)
        return d

    def readBlocked(self, stream: IEventStream) -> Deferred:
        return maybeDeferred(stream.next)

    async def end(self, containerId: str, code: int) -> None:
        self.engine.exit(containerId, code)

    async def checkPasses(self, containerId: str, output: str) -> None:
        self.engine.setHealth(containerId, "healthy", output)

    async def say(self, containerId: str, text: str, stream: str = "stdout") -> None:
        self.engine.printLine(containerId, text, stream)

    async def sampled(self, containerId: str) -> None:
        self.engine.sample(containerId, cpu=1.5, memory=2**20)

    def backendCalls(self) -> int:
        return len(self.engine.calls)

    async def startedAt(self, containerId: str) -> Any:
        return self.engine.containers[containerId]["startedAt"]

    def engineAt(self, path: str) -> Any:
        """
        An engine nobody answers for: the fake has no socket, only its
        C{reachable} switch.
        """
        engine = FakeEngine()
        engine.reachable = False
        return engine


class DockerHarness:
    """
    L{DockerEngine} on the tests' private dockerd.
    """

    engineClass: Any = DockerEngine

    def __init__(self, docker: DockerEngineProcess) -> None:
        self.docker = docker
        self.engine = self.engineClass(reactor, host=docker.host, timeout=10)
        self.client = CountingClient(self.engine._client)
        self.engine._client = self.client
        self._others: list[Any] = []

    def stop(self) -> None:
        for engine in [self.engine, *self._others]:
            engine.stop()

    def read(self, stream: IEventStream) -> Deferred:
        """
        Read in a thread, as the contract says (L{IEventStream.next}
        blocks); the test closes the stream when done, which ends a read
        that timed out.
        """
        d = deferToThread(stream.next)
        d.addTimeout(READ_TIMEOUT, reactor)
        return d

    def readBlocked(self, stream: IEventStream) -> Deferred:
        return deferToThread(stream.next)

    async def where(self, containerId: str) -> tuple[DockerEngineProcess, str]:
        """
        The engine process that runs the node's process, and its container.
        """
        return self.docker, containerId

    async def end(self, containerId: str, code: int) -> None:
        """
        The node's process ends by itself with C{code} (told so from inside
        the container).
        """
        engine, container = await self.where(containerId)
        await deferToThread(tellToEnd, engine, container, code)

    async def checkPasses(self, containerId: str, output: str) -> None:
        pass  # the engine runs the check itself

    async def say(self, containerId: str, text: str, stream: str = "stdout") -> None:
        """
        Written from inside to the node's process's own output (what the
        engine logs), by an exec.
        """
        engine, container = await self.where(containerId)
        descriptor = 2 if stream == "stderr" else 1
        await deferToThread(
            engine.docker, "exec", container, "sh", "-c", f"echo '{text}' > /proc/1/fd/{descriptor}"
        )

    async def sampled(self, containerId: str) -> None:
        pass  # the engine reads it itself

    def backendCalls(self) -> int:
        return len(self.client.calls)

    async def startedAt(self, containerId: str) -> Any:
        """
        Docker's C{State.StartedAt} (ISO 8601 with nanoseconds: strings
        that sort as times do).
        """
        engine, container = await self.where(containerId)
        return (await deferToThread(
            engine.docker, "inspect", "-f", "{{.State.StartedAt}}", container
        )).strip()

    def engineAt(self, path: str) -> Any:
        engine = self.engineClass(reactor, host=f"unix://{path}", timeout=10)
        self._others.append(engine)
        return engine


class SwarmHarness(DockerHarness):
    """
    L{SwarmEngine} on the tests' two-node swarm: a node is a service, its
    process runs in its task's container on whichever host took it.
    """

    engineClass = SwarmEngine

    def __init__(self, swarm: SwarmCluster) -> None:
        super().__init__(swarm.manager)
        self.swarm = swarm

    async def where(self, containerId: str) -> tuple[DockerEngineProcess, str]:
        """
        The host that runs the service's task, and the task's container.
        """
        states = await self.engine.listContainers({DEPLOYMENT_LABEL: None})
        [state] = [s for s in states if s.containerId == containerId]
        assert state.status == "running" and state.container, state
        host = self.swarm.manager if state.host == "manager" else self.swarm.worker
        return host, state.container


def deafSocket(path: str) -> socket.socket:
    """
    A unix socket at C{path} that nobody listens on (what a dead engine
    leaves behind): a connection is refused.  Close it when done.
    """
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(path)
    return sock
