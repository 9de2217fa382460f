"""
The cyclic garbage collector's pauses: the reactor waits while it runs, so
a long one delays every broadcast (issue 22).  The hub keeps its feed
connections out of full collections (L{statushub.hub.freezer}); this shows
whether that holds.
"""

from __future__ import annotations

import gc
from time import perf_counter

from prometheus_client import CollectorRegistry, Histogram
from twisted.application.service import Service

from statushub.metrics.prefix import PREFIX

# Young collections take well under a millisecond; a full one over 10,000
# connections took 100-180 ms before they were frozen (BENCHMARKS.md).
GC_PAUSE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0)


class GCPauseMetrics(Service):
    """
    Times every collection (C{gc.callbacks}) while it runs as a service: a
    hub's metrics in a process that outlives the hub (tests) stop timing
    when it stops.  A collection may run in any thread; collections never
    overlap, and the histogram takes its own lock.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        pauses = Histogram(
            f"{PREFIX}_gc_pause_seconds",
            "How long each cyclic garbage collection held the hub, by generation "
            "(gen2: a full collection).",
            ["generation"],
            buckets=GC_PAUSE_BUCKETS,
            registry=registry,
        )
        # resolved once: each generation's series exists before its first
        # pause (named, not numbered: no label value is a bare number)
        self._pauses = [pauses.labels(generation=f"gen{g}") for g in range(3)]
        self._started = 0.0

    def startService(self) -> None:
        super().startService()
        gc.callbacks.append(self._observe)

    def stopService(self) -> None:
        super().stopService()
        if self._observe in gc.callbacks:
            gc.callbacks.remove(self._observe)

    def _observe(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._started = perf_counter()
        else:
            self._pauses[info["generation"]].observe(perf_counter() - self._started)
