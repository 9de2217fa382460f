"""
What the status says: the messages the hub emits and the deploys and
teardowns they show ending (L{StatusMetrics}, a status sink), and the state
read when Prometheus scrapes (L{StateCollector}: clients, deployments and
nodes by status, engine up, WAMP joined).
"""

from __future__ import annotations

from typing import Callable, Iterable, Iterator, Optional

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import GaugeMetricFamily, Metric
from zope.interface import implementer

from statushub.interfaces import IHealthCheck, IStatusSink
from statushub.metrics.prefix import PREFIX

DEPLOY_STATUSES = ("deploying", "deployed", "tearing_down", "failed")
OUTCOMES = ("succeeded", "failed")


@implementer(IStatusSink)
class StatusMetrics:
    """
    A status sink that counts the messages the hub emits, and the deploys
    and teardowns those messages show ending (so it counts exactly what
    clients were told).

    A deploy is C{deploying} until a message says C{deployed} (succeeded) or
    C{failed}; a teardown is C{tearing_down} until C{idle} (succeeded) or
    C{failed}.  Only deployments in one of those two states are remembered,
    so what is kept is bounded by the deployments in progress.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.messages = Counter(
            f"{PREFIX}_status_messages",
            "Status messages the hub emitted (each goes to every feed client, and to WAMP).",
            registry=registry,
        )
        deploys = Counter(
            f"{PREFIX}_deploys",
            "Deploys that ended, by outcome: succeeded (deployed) or failed.",
            ["outcome"],
            registry=registry,
        )
        teardowns = Counter(
            f"{PREFIX}_teardowns",
            "Teardowns that ended, by outcome: succeeded (idle) or failed.",
            ["outcome"],
            registry=registry,
        )
        self._ended = {
            ("deploying", "deployed"): deploys.labels(outcome="succeeded"),
            ("deploying", "failed"): deploys.labels(outcome="failed"),
            ("tearing_down", "idle"): teardowns.labels(outcome="succeeded"),
            ("tearing_down", "failed"): teardowns.labels(outcome="failed"),
        }
        # deployment name -> "deploying" or "tearing_down"
        self._inProgress: dict[Optional[str], str] = {}

    def broadcast(self, message: dict) -> None:
        self.messages.inc()
        name = message.get("deployment")
        status = message.get("deployStatus")
        if status == "idle" and name is None:
            # "nothing deployed": whatever was being torn down is gone
            names = list(self._inProgress)
        else:
            names = [name]
        for each in names:
            before = self._inProgress.pop(each, None)
            ended = self._ended.get((before, status))
            if ended is not None:
                ended.inc()
        if status in ("deploying", "tearing_down"):
            self._inProgress[name] = status


class StateCollector:
    """
    Reads the hub's state when Prometheus scrapes.

    @param clients: the number of feed clients connected now.
    @param pictures: the current message of every deployment (an idle
        picture counts as no deployment).
    @param healthChecks: C{/healthz}'s components; C{engine} gives
        C{statushub_engine_up}, C{wamp} (when configured)
        C{statushub_wamp_joined}.
    """

    def __init__(
        self,
        clients: Callable[[], int],
        pictures: Callable[[], Iterable[dict]],
        healthChecks: Iterable[IHealthCheck],
    ) -> None:
        self._clients = clients
        self._pictures = pictures
        self._checks = {check.name: check for check in healthChecks}

    def describe(self) -> list[Metric]:
        # the names, without reading anything: lets the registry check for
        # clashes at registration without a collect()
        return self._families()

    def _families(self) -> list[Metric]:
        families = [
            GaugeMetricFamily(
                f"{PREFIX}_feed_clients", "Feed clients connected now."
            ),
            GaugeMetricFamily(
                f"{PREFIX}_deployments",
                "Deployments by status (deploying, deployed, tearing_down, failed).",
                labels=["status"],
            ),
            GaugeMetricFamily(
                f"{PREFIX}_nodes",
                "Nodes of every deployment by status (the engine's word, missing or "
                "unknown) and health (starting, healthy, unhealthy, none).",
                labels=["status", "health"],
            ),
        ]
        if "engine" in self._checks:
            families.append(GaugeMetricFamily(
                f"{PREFIX}_engine_up",
                "1 when the hub reaches the container engine, else 0.",
            ))
        if "wamp" in self._checks:
            families.append(GaugeMetricFamily(
                f"{PREFIX}_wamp_joined",
                "1 when the hub has joined its WAMP realm, else 0.",
            ))
        return families

    def collect(self) -> Iterator[Metric]:
        clients, deployments, nodes, *health = self._families()
        clients.add_metric([], self._clients())

        byStatus = dict.fromkeys(DEPLOY_STATUSES, 0)
        byNode: dict[tuple[str, str], int] = {}
        for picture in list(self._pictures()):
            status = picture.get("deployStatus")
            if status == "idle":
                continue
            byStatus[status] = byStatus.get(status, 0) + 1
            for node in picture.get("nodeStatuses", ()):
                key = (node.get("status", "unknown"), node.get("health") or "none")
                byNode[key] = byNode.get(key, 0) + 1
        for status, count in byStatus.items():
            deployments.add_metric([status], count)
        for labels, count in sorted(byNode.items()):
            nodes.add_metric(list(labels), count)
        yield clients
        yield deployments
        yield nodes

        for family in health:
            if family.name == f"{PREFIX}_engine_up":
                up = self._checks["engine"].health() == "reachable"
            else:
                up = self._checks["wamp"].health() == "joined"
            family.add_metric([], 1 if up else 0)
            yield family
