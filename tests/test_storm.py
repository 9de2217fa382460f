"""
A reconnect storm on a real hub: 5,000 feed clients (Node's C{ws}, which
reconnect with backoff and jitter as the dashboard does), the hub killed
with SIGKILL and started again on the same port.  Every client must have a
fresh snapshot within a generous bound; the figures (seconds, the backlog
of 50 beside the hub's 1024) are bench/storm.py's, in BENCHMARKS.md.
"""

from __future__ import annotations

import resource
from pathlib import Path
from typing import Iterator

import pytest

from bench.common import raiseFileLimit
from bench.storm import HUB_CONFIG, StormClients, reconnectStorm

CLIENTS = 5000
# seconds from the restart; the hub takes a few (BENCHMARKS.md)
BOUND = 60.0


@pytest.fixture
def manyFiles() -> Iterator[None]:
    """
    Room for the clients' sockets, in this process and the hub and the
    clients' process it starts (which inherit the limit).
    """
    before = resource.getrlimit(resource.RLIMIT_NOFILE)
    if raiseFileLimit(CLIENTS + 4096) < CLIENTS + 1024:
        pytest.fail(f"RLIMIT_NOFILE cannot be raised above {before[1]}")
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, before)


def test_every_client_has_a_fresh_snapshot_soon_after_a_crash_and_restart(
    tmp_path: Path, hub_process, manyFiles: None
) -> None:
    hub = hub_process(config=HUB_CONFIG)
    clients = StormClients(tmp_path)
    try:
        clients.start(hub.wsUrl, CLIENTS, timeout=120)
        result = reconnectStorm(hub, clients, timeout=BOUND)
    finally:
        clients.close()
    # connections begun after the kill, so every snapshot is the new hub's
    assert result["clients"] == CLIENTS
    assert hub.running
