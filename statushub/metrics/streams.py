"""
What the engine streams of logs and resource use cost now: read when
Prometheus scrapes, as the rest of the hub's state is.
"""

from __future__ import annotations

from typing import Callable, Iterator

from prometheus_client.core import GaugeMetricFamily, Metric

from statushub.metrics.prefix import PREFIX


class StreamsCollector:
    """
    @param counts: each gauge's short name (C{log_streams}, ...) with what
        reads its value now (an attribute of the insight room's hubs: an
        int, safe to read from the scrape's thread).
    """

    HELP = {
        "log_streams": "Engine log streams open now: one per followed node, whatever "
                       "the number of its followers.",
        "log_followers": "Clients following a node's log now (/ws/logs).",
        "stats_streams": "Engine resource-use streams open now: one per running node of "
                         "a watched deployment.",
        "stats_clients": "Clients watching resource use now (/ws/stats).",
    }

    def __init__(self, counts: dict[str, Callable[[], int]]) -> None:
        self._counts = dict(counts)

    def _families(self) -> list[Metric]:
        return [GaugeMetricFamily(f"{PREFIX}_{name}", self.HELP[name]) for name in self._counts]

    def describe(self) -> list[Metric]:
        return self._families()

    def collect(self) -> Iterator[Metric]:
        for family, read in zip(self._families(), self._counts.values()):
            family.add_metric([], read())
            yield family
