"""
What the HTTP side counts: wrong tokens, and the connections the request
limits close (L{statushub.web.limits}).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter

from statushub.metrics.prefix import PREFIX

#: why the request limits close a connection
CLOSE_REASONS = ("request_timeout", "max_pending")


class WebMetrics:
    """
    What the site counts: never per request, only what goes wrong.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.authFailures = Counter(
            f"{PREFIX}_auth_failures",
            "Requests with a wrong token (one without a token is not counted).",
            registry=registry,
        )
        closed = Counter(
            f"{PREFIX}_http_connections_closed",
            "HTTP connections closed before their request was in, by reason: "
            "request_timeout ([server] request_timeout passed), max_pending (the "
            "oldest of too many waiting for their request).",
            ["reason"],
            registry=registry,
        )
        # resolved once: a reason's series exists (at 0) before its first close
        self._closed = {reason: closed.labels(reason=reason) for reason in CLOSE_REASONS}

    def authFailed(self) -> None:
        self.authFailures.inc()

    def connectionClosed(self, reason: str) -> None:
        self._closed[reason].inc()
