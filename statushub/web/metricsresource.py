"""
C{GET /metrics}: the hub's Prometheus metrics.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry
from twisted.web.resource import IResource


def metricsResource(registry: CollectorRegistry) -> IResource:
    """
    prometheus_client's own resource for twisted.web over C{registry} (the
    text format, or OpenMetrics when asked for; gzip when accepted).
    """
    # imported here: it imports the reactor
    from prometheus_client.twisted import MetricsResource

    return MetricsResource(registry=registry)
