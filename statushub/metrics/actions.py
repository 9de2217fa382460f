"""
Node actions (restart, stop, start, recreate) by how they ended.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter

from statushub.metrics.prefix import PREFIX
from statushub.names import NODE_ACTIONS

#: how a node action ended: carried out, or the engine failed it; nothing to
#: do (a stop of a node stopped on purpose: the API's 200); refused (404, 409)
ACTION_OUTCOMES = ("succeeded", "failed", "unchanged", "refused")


class ActionMetrics:
    """
    C{statushub_node_actions_total{action,outcome}}, every series there (at
    0) from the start.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        counter = Counter(
            f"{PREFIX}_node_actions",
            "Node actions by action (restart, stop, start, recreate) and how they ended: "
            "succeeded, failed (the engine), unchanged (nothing to do), refused (404, 409).",
            ["action", "outcome"],
            registry=registry,
        )
        self._series = {
            (action, outcome): counter.labels(action=action, outcome=outcome)
            for action in NODE_ACTIONS
            for outcome in ACTION_OUTCOMES
        }

    def ended(self, action: str, outcome: str) -> None:
        """
        Count one node action that ended so (an action or outcome not of
        the fixed sets is not counted).
        """
        series = self._series.get((action, outcome))
        if series is not None:
            series.inc()
