"""
Logs and resource use on the test swarm, through L{SwarmEngine}: the log of
every node comes from its service; resource use from the engine of the
node's host, when the hub can reach it.
"""

from __future__ import annotations

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.threads import deferToThread

from statushub.engine import StatsUnavailable
from statushub.engine.swarm import HOST_LABEL, SwarmEngine
from tests.fixtures.docker import IMAGE
from tests.waiting import waitUntil

pytestmark = pytest.mark.docker


def createService(swarm, name: str, host: str, script: str) -> str:
    return swarm.manager.docker(
        "service", "create", "--detach", "--name", name,
        "--label", "io.statushub.deployment=swarmlogs",
        "--restart-condition", "none",
        "--constraint", f"node.labels.{HOST_LABEL}=={host}",
        IMAGE, "sh", "-c", script,
    ).strip()


PRINTER = "i=1; while :; do echo line $i; echo warn $i >&2; i=$((i+1)); sleep 0.05; done"


@pytest_twisted.ensureDeferred
async def test_logsAndStats(swarm) -> None:
    engine = SwarmEngine(reactor, host=swarm.host)
    try:
        onManager = await deferToThread(createService, swarm, "swarmlogs_m", "manager", PRINTER)
        onWorker = await deferToThread(createService, swarm, "swarmlogs_w", "worker", PRINTER)
        for service in (onManager, onWorker):
            await engine.startContainer(service)  # waits until its task runs

            async def printed(service=service):
                lines = await engine.readLogs(service, 10)
                return lines if len(lines) == 10 else None

            tail = await waitUntil(printed, timeout=30, interval=0.2, what="ten lines")
            assert {line.stream for line in tail} == {"stdout", "stderr"}
            numbers = [int(line.text.split()[1]) for line in tail if line.stream == "stdout"]
            assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))

            stream = await engine.followLogs(service)
            try:
                def fifty() -> list[int]:
                    got = []
                    while len(got) < 50:
                        line = stream.next()
                        assert line is not None, "the service's log ended"
                        if line.stream == "stdout":
                            got.append(int(line.text.split()[1]))
                    return got

                got = await deferToThread(fifty)
                assert got == list(range(got[0], got[0] + 50))
            finally:
                stream.close()

        # resource use: the manager's own engine, yes; the worker's, only
        # when the hub is told where it is
        stats = await engine.followStats(onManager)
        sample = await deferToThread(stats.next)
        stats.close()
        assert sample is not None and sample.memoryBytes > 0
        with pytest.raises(StatsUnavailable, match="host worker"):
            await engine.followStats(onWorker)
        engine.hostEngines = {"worker": swarm.worker.host}
        stats = await engine.followStats(onWorker)
        sample = await deferToThread(stats.next)
        stats.close()
        assert sample is not None and sample.memoryBytes > 0

        # by the service's name, as every hub of a cluster reads it (it
        # knows a node's service by the name the deploying hub gave it)
        assert len(await engine.readLogs("swarmlogs_w", 4)) == 4
        stats = await engine.followStats("swarmlogs_w")
        sample = await deferToThread(stats.next)
        stats.close()
        assert sample is not None and sample.memoryBytes > 0
    finally:
        engine.stop()
