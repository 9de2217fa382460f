"""
Child processes the tests start (the hub, a router, Prometheus, a Node
client): their output, read line by line by a thread and waited on with a
deadline, and how they are stopped.
"""

from __future__ import annotations

import queue
import re
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Optional


class LineReader:
    """
    Every stdout line of C{process}, collected by a thread and copied to the
    file C{copy} (kept with the test's temporary files, for a post-mortem).

    @ivar lines: every line so far; pass a list to share one across restarts.
    """

    def __init__(
        self, process: subprocess.Popen, copy: Path, lines: Optional[list[str]] = None
    ) -> None:
        self.lines: list[str] = [] if lines is None else lines
        self._queue: "queue.Queue[Optional[str]]" = queue.Queue()
        threading.Thread(target=self._read, args=(process, copy), daemon=True).start()

    def _read(self, process: subprocess.Popen, copy: Path) -> None:
        assert process.stdout is not None
        with open(copy, "a") as out:
            for line in process.stdout:
                out.write(line)
                out.flush()
                self.lines.append(line)
                self._queue.put(line)
        self._queue.put(None)

    def waitForLine(
        self, pattern: "re.Pattern[str]", timeout: float, what: str
    ) -> "re.Match[str]":
        """
        Wait for a line matching C{pattern} (one printed from now on).

        @raise AssertionError: the deadline passed or the process ended first;
            the message shows the last lines it printed.
        """
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"{what} did not print {pattern.pattern!r} within {timeout} s:\n"
                    + "".join(self.lines[-40:])
                )
            try:
                line = self._queue.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError(
                    f"{what} exited before printing {pattern.pattern!r}:\n"
                    + "".join(self.lines[-40:])
                )
            match = pattern.search(line)
            if match:
                return match


def stopProcess(
    process: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 15.0
) -> Optional[int]:
    """
    Send C{sig} and wait up to C{timeout} seconds for C{process} to exit;
    kill it if it does not.

    @return: its exit status, or L{None} if it had to be killed.
    """
    if process.poll() is not None:
        return process.returncode
    process.send_signal(sig)
    try:
        return process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        return None
