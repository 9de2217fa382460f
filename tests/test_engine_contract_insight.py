"""
The logs and resource-use half of the L{IContainerEngine} contract
(C{readLogs}, C{followLogs}, C{followStats}, the OOM flag), run like the
rest of the contract (C{tests/test_engine_contract.py}) against the fake,
L{DockerEngine} and L{SwarmEngine}, each through its harness.
"""

from __future__ import annotations

from typing import Any, Iterator

import pytest
import pytest_twisted
from zope.interface.verify import verifyObject

from statushub.engine import LogLine, ResourceSample
from statushub.interfaces import ILogStream, IStatsStream
from tests.engineharness import DockerHarness, EngineHarness, FakeHarness, SwarmHarness
from tests.test_engine_contract import DEADLINE, spec, started
from tests.waiting import waitUntil


async def linesOf(harness: EngineHarness, containerId: str, count: int) -> list[LogLine]:
    async def enough():
        lines = await harness.engine.readLogs(containerId, 100)
        return lines if len(lines) >= count else None

    return await waitUntil(enough, DEADLINE, 0.1, f"{count} lines in the log")


class InsightContract:
    """
    What every engine does for a node's log and resource use.
    """

    # whether a node's log stream ends by itself when its process ends (a
    # swarm's is the service's, which outlives its tasks and even its own
    # removal: statushub.insight ends it when the node is gone)
    logEndsWithProcess = True

    @pytest.fixture
    def deployment(self, request: Any) -> str:
        return "contract-" + request.node.originalname.removeprefix("test_").lower()

    @pytest_twisted.ensureDeferred
    async def test_readLogs(self, harness: EngineHarness, deployment: str) -> None:
        """
        The newest lines, oldest first, each with its stream and its time
        (ISO 8601, comparable as text); tail 0 is none.
        """
        engine = harness.engine
        containerId = await started(harness, spec(deployment, "a"))
        await harness.say(containerId, "one")
        await harness.say(containerId, "two", "stderr")
        await harness.say(containerId, "three")
        lines = await linesOf(harness, containerId, 3)
        assert [(line.stream, line.text) for line in lines] == [
            ("stdout", "one"), ("stderr", "two"), ("stdout", "three")
        ]
        assert [line.time for line in lines] == sorted(line.time for line in lines)
        assert all(line.time.endswith("Z") and line.time[10] == "T" for line in lines)
        assert await engine.readLogs(containerId, 2) == lines[1:]
        assert await engine.readLogs(containerId, 0) == []

    @pytest_twisted.ensureDeferred
    async def test_followLogs(self, harness: EngineHarness, deployment: str) -> None:
        """
        A followed log gives what is printed from then on, in order; it
        ends when the node's process ends (not on a swarm: see
        L{logEndsWithProcess}).
        """
        engine = harness.engine
        containerId = await started(harness, spec(deployment, "a"))
        await harness.say(containerId, "before")
        await linesOf(harness, containerId, 1)
        stream = await engine.followLogs(containerId)
        try:
            assert verifyObject(ILogStream, stream)
            for text in ("first", "second"):
                await harness.say(containerId, text)
            seen = []
            while len(seen) < 2:
                line = await harness.read(stream)
                assert line is not None, f"the log ended after {seen}"
                if line.text != "before":  # a swarm's service log may repeat it
                    seen.append(line.text)
            assert seen == ["first", "second"]
            if self.logEndsWithProcess:
                await harness.end(containerId, 3)
                while (line := await harness.read(stream)) is not None:
                    pass
        finally:
            stream.close()

    @pytest_twisted.ensureDeferred
    async def test_closeEndsBlockedLogRead(self, harness: EngineHarness, deployment: str) -> None:
        containerId = await started(harness, spec(deployment, "a"))
        stream = await harness.engine.followLogs(containerId)
        blocked = harness.readBlocked(stream)
        assert not blocked.called
        stream.close()
        assert await blocked is None

    @pytest_twisted.ensureDeferred
    async def test_followStats(self, harness: EngineHarness, deployment: str) -> None:
        """
        A running node's resource use: memory in use below a limit, CPU in
        percent; the stream ends when its process ends.
        """
        containerId = await started(harness, spec(deployment, "a"))
        stream = await harness.engine.followStats(containerId)
        try:
            assert verifyObject(IStatsStream, stream)
            await harness.sampled(containerId)
            sample = await harness.read(stream)
            assert isinstance(sample, ResourceSample)
            assert 0 < sample.memoryBytes < sample.memoryLimitBytes
            assert sample.cpu >= 0.0
            await harness.end(containerId, 3)
            while (sample := await harness.read(stream)) is not None:
                pass
        finally:
            stream.close()

    @pytest_twisted.ensureDeferred
    async def test_notKilledByOOM(self, harness: EngineHarness, deployment: str) -> None:
        """
        A node whose process ended by itself was not killed by the OOM
        killer (one that was: tests/test_engine_logs.py, with a memory
        limit).
        """
        engine = harness.engine
        containerId = await started(harness, spec(deployment, "a"))
        await harness.end(containerId, 3)

        async def ended():
            detail = await engine.inspectContainer(containerId)
            return detail if detail.exitCode == 3 else None

        detail = await waitUntil(ended, DEADLINE, 0.1, "the node ended")
        assert detail.oomKilled is False


class TestFakeEngine(InsightContract):
    @pytest.fixture
    def harness(self) -> EngineHarness:
        return FakeHarness()


@pytest.mark.docker
class TestDockerEngine(InsightContract):
    @pytest.fixture
    def harness(self, docker: Any) -> Iterator[EngineHarness]:
        harness = DockerHarness(docker)
        yield harness
        harness.stop()


@pytest.mark.docker
class TestSwarmEngine(InsightContract):
    """
    A node is a service: its log is the service's (which outlives a task),
    its resource use that of its task's container, read from the engine of
    the host it runs on (the worker's named in C{hostEngines}).
    """

    logEndsWithProcess = False

    @pytest.fixture
    def harness(self, swarm: Any) -> Iterator[EngineHarness]:
        harness = SwarmHarness(swarm)
        harness.engine.hostEngines = {"worker": swarm.worker.host}
        yield harness
        harness.stop()

    def test_notKilledByOOM(self) -> None:  # type: ignore[override]
        pytest.skip("there is no detail of a swarm's node (see the contract's test_inspect)")
