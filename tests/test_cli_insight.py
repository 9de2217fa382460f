"""
C{statushub logs} and C{statushub top}: their pure parts, and the command as
a user runs it against the real hub on the private engine.
"""

from __future__ import annotations

import io
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Optional

import pytest
import pytest_twisted
from twisted.internet.threads import deferToThread

from statushub.cli.insight import LogPrinter, insightURL, renderTop
from tests.childsignals import defaultStopSignals
from tests.fixtures.docker import IMAGE
from tests.hubapi import post
from tests.waiting import waitUntil

REPO = Path(__file__).resolve().parents[1]
STATUSHUB = str(Path(sys.executable).with_name("statushub"))
TIMEOUT = 30.0


def test_insightURL() -> None:
    assert insightURL("http://127.0.0.1:8080", "/ws/logs", {"deployment": "d", "node": "n",
                                                           "tail": 5}) == (
        "ws://127.0.0.1:8080/ws/logs?deployment=d&node=n&tail=5")
    assert insightURL("https://hub.example/", "/ws/stats", {"deployment": None}) == (
        "wss://hub.example/ws/stats")
    with pytest.raises(ValueError, match="--url"):
        insightURL("ftp://x", "/ws/logs", {})


def test_logPrinter() -> None:
    """
    stdout's lines to stdout, stderr's to stderr; a line already printed is
    not printed again (a reconnection's tail); a gap is said; the end ends.
    """
    out, err = io.StringIO(), io.StringIO()
    printer = LogPrinter(out, err, timestamps=False)
    line = lambda t, text, stream="stdout": {"time": t, "stream": stream, "text": text}  # noqa: E731
    printer.message({"type": "log", "lines": [line("t1", "one"), line("t2", "two", "stderr")]})
    printer.message({"type": "log", "lines": [line("t2", "two", "stderr"), line("t3", "three")]})
    printer.message({"type": "log_gap", "dropped": 7})
    assert out.getvalue() == "one\nthree\n"
    assert err.getvalue() == "two\nstatushub logs: 7 line(s) left out\n"
    assert not printer.ended.called
    printer.message({"type": "log_end"})
    assert printer.ended.called


def test_renderTop() -> None:
    lines = renderTop({
        "demo": {"nodes": [
            {"nodeId": "web", "cpu": 1.25, "memoryBytes": 3 * 2**20, "memoryLimitBytes": 512 * 2**20},
            {"nodeId": "far", "cpu": None, "memoryBytes": None, "memoryLimitBytes": None,
             "unavailable": "runs on host worker"},
        ]},
    }, "live")
    assert lines[0] == "resource use: live"
    assert lines[1].split() == ["DEPLOYMENT", "NODE", "CPU", "MEMORY", "LIMIT", "MEM%"]
    assert lines[2].split() == ["demo", "web", "1.2%", "3.0", "MiB", "512.0", "MiB", "1%"]
    assert lines[3].split()[:2] == ["demo", "far"] and lines[3].endswith("not available")
    assert renderTop({}, "live")[1] == "no figures yet (running nodes only)"


class Command:
    """
    C{statushub VERB ...} in a child process, its output read line by line.
    """

    def __init__(self, *args: str) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(REPO)] + [p for p in [env.get("PYTHONPATH")] if p])
        env.pop("STATUSHUB_TOKEN", None)
        self.process = subprocess.Popen(
            [STATUSHUB, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=env, preexec_fn=defaultStopSignals,
        )
        self.out: "queue.Queue[Optional[str]]" = queue.Queue()
        self.err: "queue.Queue[Optional[str]]" = queue.Queue()
        for stream, lines in ((self.process.stdout, self.out), (self.process.stderr, self.err)):
            threading.Thread(target=self._read, args=(stream, lines), daemon=True).start()

    @staticmethod
    def _read(stream, lines) -> None:
        for line in stream:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    def lines(self, count: int, stream: str = "out", timeout: float = TIMEOUT) -> list[str]:
        source = self.out if stream == "out" else self.err
        got: list[str] = []
        deadline = time.monotonic() + timeout
        while len(got) < count:
            try:
                line = source.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"{count} lines expected on std{stream}, got {got}") from None
            if line is None:
                raise AssertionError(f"exited ({self.process.wait()}) after {got}")
            got.append(line)
        return got

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


async def deploy(hub, name: str, nodes: dict[str, str]) -> None:
    code, body = await post(hub, {"name": name, "nodes": [
        {"id": node, "image": IMAGE, "command": ["sh", "-c", script]}
        for node, script in nodes.items()
    ]}, path="/api/deployments")
    assert code == 202, body


async def run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("STATUSHUB_TOKEN", None)
    return await deferToThread(
        subprocess.run, [STATUSHUB, *args], capture_output=True, text=True, timeout=60, env=env
    )


@pytest.mark.docker
@pytest_twisted.ensureDeferred
async def test_logs(hub_process, docker) -> None:
    """
    The last lines (stderr's on stderr); --follow prints new ones as they
    come and ends, status 0, when the node's container is gone; an unknown
    node is the hub's refusal.
    """
    hub = hub_process(config="[polling]\ninterval = 0.5\n", env={"DOCKER_HOST": docker.host})
    await deploy(hub, "cli", {
        "talker": "echo to err >&2; i=1; while :; do echo line $i; i=$((i+1)); usleep 100000; done",
    })

    async def printed():
        result = await run("logs", "cli", "talker", "--tail", "10000", "--url", hub.url)
        return result if result.returncode == 0 and len(result.stdout.split("\n")) > 5 else None

    await waitUntil(printed, timeout=60, interval=0.5, what="lines to print")
    result = await run("logs", "cli", "talker", "--tail", "3", "--url", hub.url)
    numbers = [int(line.split()[1]) for line in result.stdout.splitlines()]
    assert len(numbers) == 3 and numbers == list(range(numbers[0], numbers[0] + 3))
    result = await run("logs", "cli", "talker", "--tail", "10000", "--url", hub.url, "-t")
    assert result.stderr.splitlines()[0].endswith("Z to err")
    assert result.stdout.splitlines()[0].endswith("Z line 1")

    result = await run("logs", "cli", "nope", "--url", hub.url)
    assert result.returncode == 1 and "has no node 'nope'" in result.stderr
    result = await run("logs", "cli", "talker", "--tail", "10001", "--url", hub.url)
    assert result.returncode == 2 and "10000" in result.stderr

    follower = Command("logs", "cli", "talker", "--follow", "--tail", "2", "--url", hub.url)
    try:
        first = await deferToThread(follower.lines, 12)
        got = [int(line.split()[1]) for line in first]
        assert got == list(range(got[0], got[0] + 12))
        containerId = docker.labelledContainers("cli")[0]
        await deferToThread(docker.docker, "kill", containerId)
        assert await deferToThread(follower.process.wait, TIMEOUT) == 0
    finally:
        follower.stop()


@pytest.mark.docker
@pytest_twisted.ensureDeferred
async def test_top(hub_process, docker) -> None:
    """
    C{top NAME}: a row per running node with CPU and memory, each second;
    C{--json}: the stats messages; Ctrl-C ends it with status 0.
    """
    hub = hub_process(config="[polling]\ninterval = 0.5\n", env={"DOCKER_HOST": docker.host})
    await deploy(hub, "toptest", {"busy": "while :; do :; done", "idle": "sleep infinity"})
    table = Command("top", "toptest", "--url", hub.url)
    jsonLines = Command("top", "--json", "--url", hub.url)
    try:
        def busyRow() -> list[str]:
            while True:
                line = table.lines(1)[0]
                words = line.split()
                if words[:2] == ["toptest", "busy"] and float(words[2].rstrip("%")) > 50:
                    return words

        words = await deferToThread(busyRow)
        assert words[3:] and words[-1].endswith("%")

        def message() -> dict:
            while True:
                parsed = json.loads(jsonLines.lines(1)[0])
                if parsed["nodes"]:
                    return parsed

        parsed = await deferToThread(message)
        assert parsed["type"] == "stats" and parsed["deployment"] == "toptest"
        assert {n["nodeId"] for n in parsed["nodes"]} <= {"busy", "idle"}
        table.process.send_signal(signal.SIGINT)
        assert await deferToThread(table.process.wait, TIMEOUT) == 0
        said = []
        while (line := table.err.get(timeout=TIMEOUT)) is not None:
            said.append(line)
        assert not [line for line in said if "Traceback" in line or "Unhandled" in line], said
    finally:
        table.stop()
        jsonLines.stop()
    result = await run("top", "nope", "--url", hub.url)
    assert result.returncode == 3 and "404" in result.stderr
