"""
C{statushub watch} in a child process against the real hub: Ctrl-C and
SIGTERM end it with status 0 and without a traceback, on a pipe (C{--json},
a table) and on a terminal; on a terminal its FOR column counts from each
node's C{since} and moves on between messages.
"""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import subprocess
import time

import pytest

from tests.blockingapi import api
from tests.childsignals import defaultStopSignals
from tests.hubapi import topology
from tests.test_dashboard_history import libfaketime
from tests.test_watch_hub import REPO, TIMEOUT, WATCH_COMMAND
from tests.waiting import blockUntil

# what a Python or Twisted traceback starts with
TRACEBACKS = ("Traceback", "Unhandled error")


def finishedOutput(process: subprocess.Popen) -> tuple[str, str]:
    out, err = process.communicate(timeout=TIMEOUT)
    return out, err


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
@pytest.mark.parametrize("mode", [["--json"], []], ids=["json", "table"])
def test_endsWithoutATraceback(hub_process, stop, mode) -> None:
    hub = hub_process()
    env = dict(os.environ, PYTHONPATH=str(REPO))
    env.pop("STATUSHUB_TOKEN", None)
    process = subprocess.Popen(
        [*WATCH_COMMAND, *mode, "--url", hub.url], stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, env=env, preexec_fn=defaultStopSignals,
    )
    try:
        # live: its first picture is out (one JSON line, or the table's line)
        first = process.stdout.readline()
        assert "idle" in first or "feed:" in first, first
        process.send_signal(stop)
        out, err = finishedOutput(process)
        assert process.returncode == 0, err
        assert not any(word in err for word in TRACEBACKS), err
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def frames(primary: int, until, what: str) -> list[str]:
    """
    Read the terminal until C{until(frames)} says it has enough whole
    frames (each drawn after the screen is cleared).
    """
    output = b""
    deadline = time.monotonic() + TIMEOUT
    while True:
        drawn = output.decode(errors="replace").split("\x1b[H\x1b[2J")[1:-1]
        if until(drawn):
            return drawn
        assert time.monotonic() < deadline, f"no {what}: {output[-2000:]!r}"
        ready, _, _ = select.select([primary], [], [], 0.5)
        if ready:
            output += os.read(primary, 65536)


DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(\d+)s$|^(\d+)h(\d+)m$")


def duration(text: str) -> int:
    """
    C{12m03s} -> 723, as watch prints it.
    """
    match = DURATION.match(text)
    assert match, text
    h, m, s, h2, m2 = (int(g) if g else 0 for g in match.groups())
    return (h + h2) * 3600 + (m + m2) * 60 + s


def forColumn(frame: str, nodeId: str) -> int:
    line = next(line for line in frame.splitlines() if line.startswith(nodeId + " "))
    return duration(line.split()[-1])


def seqLine(frame: str) -> str:
    return next(line for line in frame.splitlines() if line.startswith("last update:"))


@pytest.mark.docker
def test_forCountsFromSinceAndTicks(hub_process, docker) -> None:
    """
    A node running for ten minutes by the hub's clock (the hub runs with
    its clock ten minutes behind, under libfaketime) shows FOR of ten
    minutes at once, and the count moves on with no message in between;
    then Ctrl-C ends it cleanly.
    """
    hub = hub_process(config="[polling]\ninterval = 0.5\n", env={
        "DOCKER_HOST": docker.host, "LD_PRELOAD": libfaketime(), "FAKETIME": "-600s",
    })
    body = topology("clock", nodes=1)
    del body["nodes"][0]["healthcheck"]  # nothing changes once it runs
    status, answer = api(hub, "POST", "/api/deployments", body)
    assert status == 202, answer

    def running():
        status, picture = api(hub, "GET", "/api/deployments/clock")
        return status == 200 and [n["status"] for n in picture["nodeStatuses"]] == ["running"]

    blockUntil(running, timeout=60, what="the node running")

    primary, secondary = pty.openpty()
    env = dict(os.environ, PYTHONPATH=str(REPO), NO_COLOR="1")
    env.pop("STATUSHUB_TOKEN", None)
    process = subprocess.Popen([*WATCH_COMMAND, "clock", "--url", hub.url], stdout=secondary,
                               stderr=secondary, env=env, preexec_fn=defaultStopSignals)
    os.close(secondary)
    try:
        def twoCounts(drawn: list[str]) -> bool:
            counted = [f for f in drawn if "running" in f and "feed: live" in f]
            return len({forColumn(f, "n0") for f in counted}) >= 2

        drawn = [f for f in frames(primary, twoCounts, "FOR moving on")
                 if "running" in f and "feed: live" in f]
        counts = [forColumn(f, "n0") for f in drawn]
        assert counts[0] >= 600, drawn[0]
        assert counts == sorted(counts) and counts[-1] > counts[0]
        assert len({seqLine(f) for f in drawn}) == 1  # redrawn, not sent again
        process.send_signal(signal.SIGINT)
        assert process.wait(TIMEOUT) == 0
        rest = b""
        while select.select([primary], [], [], 0.2)[0]:
            try:
                chunk = os.read(primary, 65536)
            except OSError:
                break
            if not chunk:
                break
            rest += chunk
        assert not any(word.encode() in rest for word in TRACEBACKS), rest
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(primary)
