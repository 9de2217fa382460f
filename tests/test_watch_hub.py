"""
C{statushub watch --json} as a script would run it, against the real hub
process (and the private Docker engine for deployments).
"""

from __future__ import annotations

import json
import os
import pty
import queue
import select
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable, Optional

import pytest

from tests.childsignals import asBackgroundJob, defaultStopSignals
from tests.hubapi import SERVICE

REPO = Path(__file__).resolve().parents[1]
TIMEOUT = 30.0

# the `statushub` command as installed, through its `watch` verb
WATCH_COMMAND = [str(Path(sys.executable).parent / "statushub"), "watch"]


class WatchProcess:
    """
    C{statushub watch ...} in a child process, its stdout and stderr read
    line by line as they come.  It starts with Ctrl-C and SIGTERM at their
    default, however the tests were started; C{preexec=asBackgroundJob}
    starts it as a shell starts a background job instead.
    """

    def __init__(self, *args: str, preexec: Callable[[], None] = defaultStopSignals) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(REPO)] + [p for p in [env.get("PYTHONPATH")] if p])
        env.pop("STATUSHUB_TOKEN", None)
        self.process = subprocess.Popen(
            [*WATCH_COMMAND, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            preexec_fn=preexec,
        )
        self.stdout: "queue.Queue[Optional[str]]" = queue.Queue()
        self.stderr: "queue.Queue[Optional[str]]" = queue.Queue()
        self.errLines: list[str] = []
        for stream, lines in ((self.process.stdout, self.stdout), (self.process.stderr, self.stderr)):
            threading.Thread(target=self._read, args=(stream, lines), daemon=True).start()

    @staticmethod
    def _read(stream, lines) -> None:
        for line in stream:
            lines.put(line)
        lines.put(None)

    def _next(self, lines, what: str, timeout: float) -> str:
        try:
            line = lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"watch printed no {what} within {timeout} s") from None
        if line is None:
            raise AssertionError(f"watch exited ({self.process.wait()}) before printing a {what}")
        return line

    def message(self, timeout: float = TIMEOUT) -> dict:
        """
        The next JSON line on stdout.
        """
        return json.loads(self._next(self.stdout, "JSON line", timeout))

    def messageWhere(self, predicate: Callable[[dict], bool], seen: list, timeout: float = 60.0) -> dict:
        """
        Read messages (appending each to C{seen}) until one satisfies C{predicate}.
        """
        deadline = time.monotonic() + timeout
        while True:
            message = self.message(max(0.1, deadline - time.monotonic()))
            seen.append(message)
            if predicate(message):
                return message

    def note(self, contains: str, timeout: float = TIMEOUT) -> str:
        """
        The first stderr line from now on that contains C{contains}.
        """
        deadline = time.monotonic() + timeout
        while True:
            line = self._next(self.stderr, f"note with {contains!r}", max(0.1, deadline - time.monotonic()))
            self.errLines.append(line)
            if contains in line:
                return line

    def interrupt(self, timeout: float = TIMEOUT) -> int:
        """
        Ctrl-C; the exit code.
        """
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout)

    def terminate(self, timeout: float = TIMEOUT) -> int:
        """
        SIGTERM, as C{kill PID} sends; the exit code.
        """
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def watch():
    started: list[WatchProcess] = []

    def start(*args: str, **kwargs: Any) -> WatchProcess:
        process = WatchProcess(*args, **kwargs)
        started.append(process)
        return process

    yield start
    for process in started:
        process.kill()


def api(hub: Any, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{hub.url}{path}", data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_snapshotThenReconnect(hub_process, watch) -> None:
    """
    The first line is the hub's current picture.  When the hub goes away
    watch says it is reconnecting; when it is back, the next line is the new
    hub's snapshot.  Ctrl-C ends it cleanly.
    """
    hub = hub_process()
    process = watch("--json", "--url", hub.url)
    snapshot = process.message()
    status, current = api(hub, "GET", "/api/status")
    assert status == 200
    assert snapshot["type"] == "status_update"
    assert snapshot["deployStatus"] == "idle"
    assert snapshot["nodeStatuses"] == []
    assert snapshot["seq"] <= current["seq"]
    process.note("live")

    hub.stop()
    assert "reconnecting" in process.note("reconnecting")
    hub.start()
    again = process.message(timeout=60)
    assert again["type"] == "status_update"
    assert again["deployStatus"] == "idle"
    process.note("live")

    assert process.interrupt() == 0
    # The restarted hub may speak again before Ctrl-C lands (its stored
    # picture first, then the engine's own): whatever came is whole JSON
    # lines, then EOF.
    while (line := process.stdout.get(timeout=TIMEOUT)) is not None:
        assert json.loads(line)["type"] == "status_update", line


def test_tableOnATerminal(hub_process) -> None:
    """
    On a terminal, watch draws the table and redraws it in place (the screen
    cleared before each frame), and Ctrl-C ends it with status 0.
    """
    hub = hub_process()
    primary, secondary = pty.openpty()
    env = dict(os.environ, PYTHONPATH=str(REPO), NO_COLOR="1")
    process = subprocess.Popen(
        [*WATCH_COMMAND, "--url", hub.url],
        stdout=secondary,
        stderr=secondary,
        env=env,
        preexec_fn=defaultStopSignals,
    )
    os.close(secondary)
    try:
        output = b""
        deadline = time.monotonic() + TIMEOUT
        # the picture drawn, then drawn again in place by the clock's tick
        while output.count(b"\x1b[H\x1b[2J") < 2 or output.count(b"no nodes") < 2:
            assert time.monotonic() < deadline, f"no redrawn table: {output!r}"
            ready, _, _ = select.select([primary], [], [], 0.5)
            if ready:
                output += os.read(primary, 4096)
        frame = output.split(b"\x1b[H\x1b[2J")[-1].decode()
        assert "feed: live" in frame
        assert "deployment: none  status: idle" in frame
        process.send_signal(signal.SIGINT)
        assert process.wait(TIMEOUT) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(primary)


def test_refusedToken(hub_process, watch) -> None:
    """
    Without the configured token, watch says the hub refused it and exits 3
    instead of retrying forever; with it, it prints the snapshot.
    """
    hub = hub_process(config='[server]\ntoken = "t0ken"\n')
    refused = watch("--json", "--url", hub.url)
    assert refused.process.wait(TIMEOUT) == 3
    assert "refused" in refused.note("refused")
    assert refused.stdout.get(timeout=TIMEOUT) is None

    allowed = watch("--json", "--url", hub.url, "--token", "t0ken")
    assert allowed.message()["deployStatus"] == "idle"


@pytest.mark.docker
def test_everyChangeOfADeployment(hub_process, docker, watch) -> None:
    """
    Against a deployment: the snapshot (no deployment yet), then each change
    of the deployment in order (its seq one apart): deploying, the nodes coming up healthy, a container killed with
    the Docker CLI, the teardown and the final idle.
    """
    hub = hub_process(config="[polling]\ninterval = 0.5\n", env={"DOCKER_HOST": docker.host})
    process = watch("--json", "--url", hub.url)
    seen = [process.message()]
    assert seen[0]["deployStatus"] == "idle"

    topology = {
        "name": "watched",
        "nodes": [
            {"id": f"n{i}", "image": "statushub/busybox", "command": SERVICE,
             "healthcheck": {"test": ["CMD-SHELL", "true"], "interval": 1.0}}
            for i in range(2)
        ],
    }
    status, body = api(hub, "POST", "/api/deployments", topology)
    assert status == 202, body

    def healthy(message: dict) -> bool:
        nodes = message["nodeStatuses"]
        return message["deployStatus"] == "deployed" and len(nodes) == 2 and all(
            node["status"] == "running" and node.get("health") == "healthy" for node in nodes
        )

    deployed = process.messageWhere(healthy, seen)
    assert any(message["deployStatus"] == "deploying" for message in seen)

    docker.docker("kill", deployed["nodeStatuses"][0]["containerId"])
    process.messageWhere(lambda m: m["nodeStatuses"][0]["status"] == "exited", seen)

    status, body = api(hub, "DELETE", "/api/deployments/watched")
    assert status == 202, body
    final = process.messageWhere(
        lambda m: m["deployStatus"] == "idle" and m["nodeStatuses"] == [], seen
    )
    assert final["deployment"] == "watched"
    assert any(message["deployStatus"] == "tearing_down" for message in seen)
    # every change of the deployment, none missed, none twice (seq counts
    # per deployment: the hub's idle picture before it had its own)
    assert all(message["deployment"] == "watched" for message in seen[1:])
    seqs = [message["seq"] for message in seen[1:]]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    assert len({message["epoch"] for message in seen[1:]}) == 1
    assert process.interrupt() == 0


def test_backgroundJobKeepsIgnoringCtrlCAndEndsOnSIGTERM(hub_process, watch) -> None:
    """
    Started as a shell starts a background job (SIGINT ignored), watch keeps
    ignoring Ctrl-C, as Unix programs do, and goes on following the hub;
    SIGTERM ends it cleanly with status 0.
    """
    hub = hub_process()
    process = watch("--json", "--url", hub.url, preexec=asBackgroundJob)
    assert process.message()["type"] == "status_update"
    process.note("live")

    process.process.send_signal(signal.SIGINT)
    # still there after the Ctrl-C: it sees the hub go away and come back
    hub.stop()
    process.note("reconnecting")
    hub.start()
    assert process.message(timeout=60)["type"] == "status_update"
    process.note("live")

    assert process.terminate() == 0
    assert process.stdout.get(timeout=TIMEOUT) is None


def test_ctrlCTestsPassWhenTheSuiteRunsAsABackgroundJob(tmp_path: Path) -> None:
    """
    A shell that runs the suite as a background job (C{make test &}) starts
    it with SIGINT ignored, and so every child it starts unless the test
    restores it: the tests that end watch with Ctrl-C pass all the same.
    """
    tests = [f"{__file__}::{name}" for name in ("test_snapshotThenReconnect", "test_tableOnATerminal")]
    suite = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         f"--basetemp={tmp_path / 'inner'}", *tests],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=asBackgroundJob,
        # a group of its own, so that a hang leaves nothing of it running
        start_new_session=True,
    )
    try:
        output, _ = suite.communicate(timeout=180)
    except subprocess.TimeoutExpired:
        os.killpg(suite.pid, signal.SIGKILL)
        output, _ = suite.communicate()
    assert suite.returncode == 0, output
    assert "2 passed" in output, output
def sleepers(name: str, nodes: int) -> dict:
    return {
        "name": name,
        "nodes": [
            {"id": f"n{i}", "image": "statushub/busybox", "command": SERVICE,
             "healthcheck": {"test": ["CMD-SHELL", "true"], "interval": 1.0}}
            for i in range(nodes)
        ],
    }


def allHealthy(nodes: int) -> Callable[[dict], bool]:
    def healthy(message: dict) -> bool:
        found = message["nodeStatuses"]
        return message["deployStatus"] == "deployed" and len(found) == nodes and all(
            node["status"] == "running" and node.get("health") == "healthy" for node in found
        )
    return healthy


@pytest.mark.docker
def test_everyDeploymentAndOne(hub_process, docker, watch) -> None:
    """
    Two deployments.  Unfiltered, watch starts with one message per
    deployment in name order and then follows both, each with its own seq;
    C{watch NAME} gets that deployment's messages only, down to its final
    idle one; the other goes on.
    """
    hub = hub_process(config="[polling]\ninterval = 0.5\n", env={"DOCKER_HOST": docker.host})
    for name, nodes in (("zulu", 1), ("alpha", 2)):
        status, body = api(hub, "POST", "/api/deployments", sleepers(name, nodes))
        assert status == 202, body
    for name, nodes in (("zulu", 1), ("alpha", 2)):
        waitFor = WatchProcess("--json", "--url", hub.url, name)
        try:
            waitFor.messageWhere(allHealthy(nodes), [])
        finally:
            waitFor.kill()

    every = watch("--json", "--url", hub.url)
    one = watch("--json", "--url", hub.url, "alpha")
    snapshot = [every.message(), every.message()]
    assert [m["deployment"] for m in snapshot] == ["alpha", "zulu"]
    assert all(m["deployStatus"] == "deployed" for m in snapshot)
    mine = [one.message()]
    assert mine[0]["deployment"] == "alpha" and allHealthy(2)(mine[0])

    status, body = api(hub, "DELETE", "/api/deployments/alpha")
    assert status == 202, body
    isFinal = lambda m: m["deployment"] == "alpha" and m["deployStatus"] == "idle" and not m["nodeStatuses"]  # noqa: E731
    one.messageWhere(isFinal, mine)
    assert {m["deployment"] for m in mine} == {"alpha"}
    seqs = [m["seq"] for m in mine]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))

    seen = list(snapshot)
    every.messageWhere(isFinal, seen)
    alpha = [m["seq"] for m in seen if m["deployment"] == "alpha"]
    # the unfiltered feed carried alpha's changes as the filtered one did
    assert alpha == seqs
    # zulu goes on: a kill there reaches the unfiltered watch, not alpha's
    zulu = snapshot[1]["nodeStatuses"][0]["containerId"]
    docker.docker("kill", zulu)
    killed = every.messageWhere(
        lambda m: m["deployment"] == "zulu" and m["nodeStatuses"][0]["status"] == "exited", seen)
    assert killed["seq"] > snapshot[1]["seq"]
    assert one.interrupt() == 0
    assert all(m["deployment"] == "alpha" for m in drain(one))
    assert every.interrupt() == 0


def drain(process: WatchProcess) -> list[dict]:
    """
    The JSON lines a stopped watch printed that were not read yet.
    """
    lines = []
    while True:
        line = process.stdout.get(timeout=TIMEOUT)
        if line is None:
            return lines
        lines.append(json.loads(line))


@pytest.mark.docker
def test_tableOfEveryDeploymentOnATerminal(hub_process, docker) -> None:
    """
    On a terminal, unfiltered watch draws a block per deployment, in name
    order, each with its nodes.
    """
    hub = hub_process(config="[polling]\ninterval = 0.5\n", env={"DOCKER_HOST": docker.host})
    for name, nodes in (("zulu", 1), ("alpha", 2)):
        status, body = api(hub, "POST", "/api/deployments", sleepers(name, nodes))
        assert status == 202, body
    primary, secondary = pty.openpty()
    env = dict(os.environ, PYTHONPATH=str(REPO), NO_COLOR="1")
    env.pop("STATUSHUB_TOKEN", None)
    process = subprocess.Popen(
        [*WATCH_COMMAND, "--url", hub.url], stdout=secondary, stderr=secondary, env=env,
        preexec_fn=defaultStopSignals,
    )
    os.close(secondary)
    try:
        output = b""
        frame = ""
        deadline = time.monotonic() + 60
        # until a frame shows both deployed, their three nodes running
        while not (frame.count("status: deployed") == 2 and frame.count(" running ") == 3):
            assert time.monotonic() < deadline, f"no table of both: {frame!r}"
            ready, _, _ = select.select([primary], [], [], 0.5)
            if ready:
                output += os.read(primary, 4096)
                frames = output.decode(errors="replace").split("\x1b[H\x1b[2J")
                # the last complete frame (the newest may still be arriving)
                frame = frames[-2] if len(frames) > 2 else ""
        assert frame.index("deployment: alpha") < frame.index("deployment: zulu")
        assert "feed: live" in frame
        process.send_signal(signal.SIGINT)
        assert process.wait(TIMEOUT) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(primary)
