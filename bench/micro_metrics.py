"""
What the hub's metrics cost, apart from everything else: the feed's one call
per broadcast (FeedMetrics.broadcasted: two counters and a histogram), and
one scrape (the registry rendered as Prometheus text, with 10,000 clients
and a 32-node deployment to report).  The fan-out benchmark measures the
whole hub with metrics on and off (--servers hub,hub-nometrics).

    .venv/bin/python bench/micro_metrics.py
"""

from __future__ import annotations

import time

from prometheus_client import generate_latest

from statushub.metrics import Metrics

ROUNDS = 100_000
SCRAPES = 200


def perCall(function, rounds: int) -> float:
    started = time.perf_counter()
    for _ in range(rounds):
        function()
    return (time.perf_counter() - started) / rounds


def main() -> None:
    metrics = Metrics()
    picture = {
        "deployStatus": "deployed",
        "nodeStatuses": [
            {"nodeId": f"n{i}", "containerId": f"{i:012x}", "status": "running",
             "health": "healthy"}
            for i in range(32)
        ],
    }
    metrics.watch(lambda: 10_000, lambda: [picture], [])
    broadcast = perCall(lambda: metrics.feed.broadcasted(10_000, 341, 0.08), ROUNDS)
    scrape = perCall(lambda: generate_latest(metrics.registry), SCRAPES)
    size = len(generate_latest(metrics.registry))
    print(f"counting one broadcast: {broadcast * 1e6:.2f} µs "
          f"({broadcast / 0.080 * 100:.4f}% of an 80 ms broadcast to 10,000 clients)")
    print(f"one scrape: {scrape * 1e3:.2f} ms, {size:,} bytes")


if __name__ == "__main__":
    main()
