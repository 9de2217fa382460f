"""
What the WebSocket feed counts: frames and bytes sent, connections,
broadcast durations, and the clients the hub drops, by the reason it gives.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

from statushub.metrics.prefix import PREFIX

#: why the hub disconnects a feed client
DROP_REASONS = ("slow", "ping_timeout", "bad_message")

# A status frame is written to 10,000 clients in ~80 ms (BENCHMARKS.md).
BROADCAST_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
)


class FeedMetrics:
    """
    What the WebSocket feed counts.  L{broadcasted} is the only call on the
    broadcast path: once per message, whatever the number of clients.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.framesSent = Counter(
            f"{PREFIX}_feed_frames_sent",
            "Status frames written to feed clients: one per client a broadcast "
            "reached, one per picture sent on connect or on get_status.",
            registry=registry,
        )
        self.bytesSent = Counter(
            f"{PREFIX}_feed_sent_bytes",
            "Bytes of status frames (WebSocket framing included) written to feed clients.",
            registry=registry,
        )
        self.connections = Counter(
            f"{PREFIX}_feed_connections",
            "Feed clients that completed the WebSocket handshake.",
            registry=registry,
        )
        self.broadcastSeconds = Histogram(
            f"{PREFIX}_feed_broadcast_duration_seconds",
            "From a status message reaching the feed to its frame written to the "
            "last client: encoding, framing and every socket write.",
            buckets=BROADCAST_BUCKETS,
            registry=registry,
        )
        drops = Counter(
            f"{PREFIX}_feed_clients_dropped",
            "Feed clients the hub disconnected, by reason: slow (too much left "
            "unread), ping_timeout (no answer to a ping), bad_message (sent "
            "something the hub does not accept).",
            ["reason"],
            registry=registry,
        )
        # resolved once: a reason's series exists (at 0) before its first drop
        self._drops = {reason: drops.labels(reason=reason) for reason in DROP_REASONS}

    def broadcasted(self, clients: int, frameBytes: int, seconds: float) -> None:
        """
        One message was written to C{clients} clients in C{seconds}.
        """
        self.framesSent.inc(clients)
        self.bytesSent.inc(clients * frameBytes)
        self.broadcastSeconds.observe(seconds)

    def opened(self) -> None:
        """
        A client connected (its snapshot is counted by L{sent}).
        """
        self.connections.inc()

    def sent(self, frameBytes: int) -> None:
        """
        One frame went to one client (a picture of its snapshot).
        """
        self.framesSent.inc()
        self.bytesSent.inc(frameBytes)

    def dropped(self, reason: str) -> None:
        """
        The hub dropped a client, for C{reason} (one of L{DROP_REASONS}).
        """
        self._drops[reason].inc()
