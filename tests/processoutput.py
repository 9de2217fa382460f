"""
The output of a child process the tests started (the hub, a router, a Node
client), read line by line by a thread, and waited on with a deadline.
"""

from __future__ import annotations

import queue
import re
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
