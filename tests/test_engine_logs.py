"""
Logs, resource use and the OOM flag on L{DockerEngine}, against the private
Docker engine: the real SDK, every read off the reactor thread.
"""

from __future__ import annotations

import json

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.threads import deferToThread

from statushub.engine import DEPLOYMENT_LABEL, NODE_LABEL, ContainerSpec, MAX_LINE_CHARACTERS
from statushub.engine.docker import DockerEngine
from tests.fixtures.docker import HUNGRY, IMAGE
from tests.waiting import waitUntil

pytestmark = pytest.mark.docker


@pytest.fixture
def engine(docker):
    engine = DockerEngine(reactor, host=docker.host, timeout=10)
    yield engine
    engine.stop()


async def started(engine: DockerEngine, name: str, script: str) -> str:
    containerId = await engine.createContainer(ContainerSpec(
        name=name,
        image=IMAGE,
        command=("sh", "-c", script),
        labels=((DEPLOYMENT_LABEL, "logtest"), (NODE_LABEL, name)),
    ))
    await engine.startContainer(containerId)
    return containerId


# prints "out N" on stdout and "err N" on stderr, N = 1..COUNT, then waits
COUNT = 30
NUMBERED = (
    f"i=1; while [ $i -le {COUNT} ]; do echo out $i; echo err $i >&2; i=$((i+1)); done; "
    "sleep infinity"
)


async def allPrinted(engine: DockerEngine, containerId: str, count: int):
    async def printed():
        lines = await engine.readLogs(containerId, 1000)
        return lines if len(lines) >= count else None

    return await waitUntil(printed, timeout=20, interval=0.1, what=f"{count} lines printed")


@pytest_twisted.ensureDeferred
async def test_readLogs(engine) -> None:
    """
    The tail is the newest lines, oldest first, each with its stream and an
    ISO 8601 time; stdout and stderr are told apart.
    """
    containerId = await started(engine, "lt-numbered", NUMBERED)
    everything = await allPrinted(engine, containerId, 2 * COUNT)
    assert len(everything) == 2 * COUNT
    assert [line.text for line in everything if line.stream == "stdout"] == [
        f"out {n}" for n in range(1, COUNT + 1)
    ]
    assert [line.text for line in everything if line.stream == "stderr"] == [
        f"err {n}" for n in range(1, COUNT + 1)
    ]
    # the engine reads the two streams apart: in order within each, not
    # always across them (a stderr line may be stamped before a stdout
    # line written ahead of it)
    for stream in ("stdout", "stderr"):
        times = [line.time for line in everything if line.stream == stream]
        assert times == sorted(times)
    assert all(line.time.endswith("Z") and line.time[10] == "T" for line in everything)

    tail = await engine.readLogs(containerId, 4)
    assert tail == everything[-4:]
    assert await engine.readLogs(containerId, 0) == []


@pytest_twisted.ensureDeferred
async def test_longLineAndBadBytes(engine) -> None:
    """
    A 40,000-character line (which the engine itself splits at 16 KiB) is
    one line, cut at 4,096 characters; bytes that are not UTF-8 are replaced;
    a last line without a newline is a line (the engine gives it once the
    container has ended).
    """
    containerId = await started(
        engine, "lt-long",
        "head -c 40000 /dev/zero | tr '\\0' x; echo; printf 'bad \\377\\376 end\\n'; "
        "printf 'no newline'",
    )
    lines = await allPrinted(engine, containerId, 3)
    assert [len(line.text) for line in lines] == [MAX_LINE_CHARACTERS, 10, 10]
    assert lines[0].text == "x" * MAX_LINE_CHARACTERS
    assert lines[1].text.startswith("bad ") and lines[1].text.endswith(" end")
    assert "\ufffd" in lines[1].text
    assert lines[2].text == "no newline"


@pytest_twisted.ensureDeferred
async def test_followLogs(engine, docker) -> None:
    """
    A followed log gives the lines printed after it was opened, in order,
    read in a thread; it ends when the container stops.
    """
    containerId = await started(
        engine, "lt-follow",
        "i=1; while [ $i -le 40 ]; do echo line $i; i=$((i+1)); sleep 0.05; done",
    )
    stream = await engine.followLogs(containerId)

    def readAll() -> list[str]:
        texts = []
        while (line := stream.next()) is not None:
            texts.append(line.text)
        return texts

    texts = await deferToThread(readAll)
    numbers = [int(text.split()[1]) for text in texts]
    assert numbers, "no line followed"
    # consecutive, up to the last line printed
    assert numbers == list(range(numbers[0], 41))
    stream.close()


@pytest_twisted.ensureDeferred
async def test_closeEndsABlockedRead(engine) -> None:
    """
    A read blocked on a quiet log returns once the stream is closed from
    another thread.
    """
    containerId = await started(engine, "lt-quiet", "sleep infinity")
    stream = await engine.followLogs(containerId)
    reading = deferToThread(stream.next)
    reactor.callLater(0.3, stream.close)
    assert await reading is None


@pytest_twisted.ensureDeferred
async def test_followStats(engine, docker) -> None:
    """
    A busy node's CPU is above 50 % of one core; its memory is in use and
    below its limit, the limit is what the engine says; the stream ends
    when the container stops.
    """
    containerId = await started(engine, "lt-busy", "while :; do :; done")
    stream = await engine.followStats(containerId)
    sample = await deferToThread(stream.next)
    assert sample is not None
    assert sample.cpu > 50.0
    assert 0 < sample.memoryBytes < sample.memoryLimitBytes
    configured = int(docker.docker("inspect", "-f", "{{.HostConfig.Memory}}", containerId))
    if configured:
        assert sample.memoryLimitBytes == configured
    else:
        info = json.loads(docker.docker("info", "--format", "{{json .MemTotal}}"))
        assert sample.memoryLimitBytes == info
    # docker stats counts the same way (within what one second changes)
    cli = docker.docker("stats", "--no-stream", "--format", "{{json .}}", containerId)
    assert json.loads(cli)["MemUsage"]

    docker.docker("kill", containerId)

    def rest() -> int:
        count = 0
        while stream.next() is not None:
            count += 1
        return count

    await deferToThread(rest)  # returns: the stream ended
    stream.close()


@pytest_twisted.ensureDeferred
async def test_oomKilled(engine, docker) -> None:
    """
    Inspect says C{oomKilled} for a container the OOM killer ended, and not
    for one ended with C{docker kill}.
    """
    labels = ["--label", f"{DEPLOYMENT_LABEL}=logtest"]
    hungry = docker.docker(
        "run", "-d", *labels, "--memory", "16m", "--memory-swap", "16m", IMAGE,
        "sh", "-c", HUNGRY,
    ).strip()
    killed = docker.docker("run", "-d", *labels, IMAGE, "sleep", "infinity").strip()
    docker.docker("kill", killed)

    async def oomKilled():
        # the engine handles the OOM event and the exit apart: for a moment
        # after the exit code is in, the flag may not be yet (seen under load)
        detail = await engine.inspectContainer(hungry)
        return detail if detail.exitCode == 137 and detail.oomKilled else None

    detail = await waitUntil(oomKilled, timeout=30, interval=0.2,
                             what="the hungry node killed, and said OOM-killed")
    assert detail.oomKilled is True
    other = await engine.inspectContainer(killed)
    assert (other.exitCode, other.oomKilled) == (137, False)
