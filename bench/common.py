"""
What the fan-out benchmark's servers share: the message, the process figures,
and the line-based control channel that the harness drives them through.

Control protocol (TCP on 127.0.0.1, one command a line, one answer a line):

    BROADCAST <seq> [<deployment>]
                      broadcast the status message numbered <seq> (about
                      deployment "bench", or the one named); answers
                      C{OK <t0> <t1> <clients>}: CLOCK_MONOTONIC ns just
                      before the broadcast call and just after it returned
    STATS             C{STATS <cpu_ns> <rss_bytes> <clients> <gc_count>
                      <gc_total_ns> <gc_max_ns>}; the gc figures are since
                      the previous STATS
    COUNTERS          C{COUNTERS <json>}: server-specific counts (polls done)
    GC                C{GC <collections> <full> <longest_ns> <generation>
                      <longest_cpu_ns> <total_ns>} since the previous GC
                      (Python servers): collections, full ones, the longest
                      pause and its generation, the most CPU time (the
                      collecting thread's) one collection took, and the
                      pauses' total
    OBJECTS           C{OBJECTS <tracked> <frozen>}: objects a full
                      collection would walk now, and those frozen out of it
                      (Python servers; walks them all, so only at the end)
    THAW              C{THAW <wall_ns> <cpu_ns> <objects>}: what the hub's
                      freezer does when it thaws, timed: unfreeze, one full
                      collection over every object, freeze again (Python
                      servers; only at the end)
    QUIT              stop the server

Every server prints C{READY <ws_port> <control_port>} on stdout once it
listens on both.
"""

from __future__ import annotations

import gc
import json
import os
import resource
import time
from typing import Callable

_PAGE = os.sysconf("SC_PAGE_SIZE")


def statusMessage(seq: int, deployment: str = "bench") -> dict:
    """
    A realistic C{status_update} of about 300 bytes once JSON-encoded (the
    feed's format, PRODUCT.md), numbered C{seq}, about C{deployment}.
    """
    return {
        "type": "status_update",
        "deployStatus": "deployed",
        "nodeStatuses": [
            {"nodeId": "web", "containerId": "3f9c2a7be41d", "status": "running",
             "health": "healthy"},
            {"nodeId": "db", "containerId": "a81e0c55d290", "status": "running",
             "health": "healthy"},
        ],
        "deployment": deployment,
        "engine": "reachable",
        "error": None,
        "seq": seq,
        "timestamp": "2026-11-26T08:00:00.123Z",
    }


def rssBytes() -> int:
    """
    The resident set size now (not the peak).
    """
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * _PAGE


def raiseFileLimit(wanted: int = 65536) -> int:
    """
    Raise RLIMIT_NOFILE as far as allowed (the hard limit too, as root).
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(wanted, soft), max(wanted, hard)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class GCWatch:
    """
    Times the cyclic garbage collector's pauses (gc.callbacks): measurement
    only, it changes nothing about when the collector runs.  Two sets of
    figures, each since it was last taken: L{take} for C{STATS}, and
    L{takePhase} for C{GC}.
    """

    def __init__(self) -> None:
        self._started = 0
        self._startedCpu = 0
        self.count = 0
        self.total = 0
        self.longest = 0
        self._resetPhase()
        gc.callbacks.append(self._callback)

    def _resetPhase(self) -> None:
        self.phase = {"count": 0, "full": 0, "longest": 0, "generation": -1,
                      "longestCpu": 0, "total": 0}

    def _callback(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._started = time.monotonic_ns()
            self._startedCpu = time.thread_time_ns()
        else:
            pause = time.monotonic_ns() - self._started
            cpu = time.thread_time_ns() - self._startedCpu
            self.count += 1
            self.total += pause
            self.longest = max(self.longest, pause)
            figures = self.phase
            figures["count"] += 1
            figures["total"] += pause
            if info["generation"] == 2:
                figures["full"] += 1
            if pause > figures["longest"]:
                figures["longest"] = pause
                figures["generation"] = info["generation"]
            figures["longestCpu"] = max(figures["longestCpu"], cpu)

    def take(self) -> tuple[int, int, int]:
        figures = (self.count, self.total, self.longest)
        self.count = self.total = self.longest = 0
        return figures

    def takePhase(self) -> dict[str, int]:
        figures = self.phase
        self._resetPhase()
        return figures


class Controlled:
    """
    The server side of the control channel, independent of the event loop:
    C{handle(line)} returns the answer line (or None for QUIT).
    """

    def __init__(
        self,
        broadcast: Callable[[dict], None],
        clients: Callable[[], int],
        counters: Callable[[], dict] = dict,
    ) -> None:
        self._broadcast = broadcast
        self._clients = clients
        self._counters = counters
        self._gc = GCWatch()

    def handle(self, line: str) -> str | None:
        words = line.split()
        if not words:
            return "ERROR empty command"
        if words[0] == "BROADCAST":
            message = statusMessage(int(words[1]), *words[2:3])
            t0 = time.monotonic_ns()
            self._broadcast(message)
            t1 = time.monotonic_ns()
            return f"OK {t0} {t1} {self._clients()}"
        if words[0] == "STATS":
            count, total, longest = self._gc.take()
            return (
                f"STATS {time.process_time_ns()} {rssBytes()} {self._clients()}"
                f" {count} {total} {longest}"
            )
        if words[0] == "GC":
            f = self._gc.takePhase()
            return (f"GC {f['count']} {f['full']} {f['longest']} {f['generation']}"
                    f" {f['longestCpu']} {f['total']}")
        if words[0] == "OBJECTS":
            return f"OBJECTS {len(gc.get_objects())} {gc.get_freeze_count()}"
        if words[0] == "THAW":
            objects = gc.get_freeze_count() + len(gc.get_objects())
            wall, cpu = time.monotonic_ns(), time.thread_time_ns()
            gc.unfreeze()
            gc.collect()
            gc.freeze()
            wall, cpu = time.monotonic_ns() - wall, time.thread_time_ns() - cpu
            return f"THAW {wall} {cpu} {objects}"
        if words[0] == "COUNTERS":
            return "COUNTERS " + json.dumps(self._counters(), separators=(",", ":"))
        if words[0] == "QUIT":
            return None
        return f"ERROR unknown command {words[0]!r}"


def encode(message: dict) -> str:
    """
    The JSON text every server sends: compact, as the hub encodes it (and
    as JSON.stringify does), so that all send the same bytes.
    """
    return json.dumps(message, separators=(",", ":"))


def messageSize() -> int:
    return len(encode(statusMessage(1000)).encode())
