"""
Logs and resource use on every hub of a cluster: two real hub processes on
one real Redis and the private Docker engine.  The orchestrator runs only
on the leader; a follower reads a node's log and resource use from the
engine itself, where the pictures it shows say the node runs; a third hub
that cannot reach the engine answers with the engine's error.
"""

from __future__ import annotations

from typing import Any

import pytest
import pytest_twisted
import treq

from tests.hubapi import delete, getJSON
from tests.test_cluster_hubs import config, role, startCluster, theLeader
from tests.test_insight_hub import COUNTER, consecutive, deploy, logsURL, metric, numbers
from tests.waiting import waitUntil
from tests.wsclient import connectFeed

pytestmark = pytest.mark.docker


@pytest_twisted.ensureDeferred
async def test_aFollowerServesLogsAndResourceUse(
    hub_process: Any, docker: Any, redis_server: Any
) -> None:
    redis = redis_server()
    hubs = startCluster(hub_process, docker, redis, count=2)
    leader = await theLeader(hubs)
    follower = next(h for h in hubs if h is not leader)
    await deploy(leader, "counting", {"counter": COUNTER})

    # the follower's API: the tail, from the engine itself
    path = "/api/deployments/counting/nodes/counter/logs"

    async def printed() -> Any:
        body = await getJSON(follower, f"{path}?tail=10000")
        return body if len(body.get("lines", ())) >= 10 else None

    body = await waitUntil(printed, timeout=30, what="10 lines on the follower")
    got = [int(line["text"]) for line in body["lines"]]
    assert got == list(range(1, len(got) + 1))

    async def sampled() -> Any:
        stats = await getJSON(follower, "/api/deployments/counting/stats")
        nodes = [n for n in stats.get("nodes", ()) if n.get("memoryBytes")]
        return nodes or None

    [counter] = await waitUntil(sampled, timeout=30, what="a sample on the follower")
    assert counter["nodeId"] == "counter" and counter["memoryLimitBytes"] > 0

    # a follower that cannot reach the engine: the engine's error, 503,
    # while it shows the same pictures as the others
    blind = hub_process(config=config(redis.url), env={"DOCKER_HOST": "unix:///nonexistent.sock"})

    async def shown() -> bool:
        picture = await getJSON(blind, "/api/deployments/counting")
        return bool(picture.get("nodeStatuses"))

    await waitUntil(shown, timeout=30, what="the deployment on the blind hub")
    assert await role(blind) == "follower"
    answer = await treq.get(f"{blind.url}{path}")
    assert answer.code == 503
    error = (await answer.json())["error"]
    assert error.startswith("the log of counter: "), error
    assert "cannot reach the engine at unix:///nonexistent.sock" in error

    # its feed follows live; the stream is the follower's, not the leader's
    client = await connectFeed(logsURL(follower, "counting", "counter", 3))
    try:
        await waitUntil(lambda: len(numbers(client)) >= 30, timeout=30,
                        what="lines followed on the follower")
        assert consecutive(numbers(client)), numbers(client)
        assert await metric(follower, "statushub_log_streams") == 1
        assert await metric(leader, "statushub_log_streams") == 0

        # a teardown asked of the follower, carried out by the leader: the
        # follower's picture ends the log
        code, answer = await delete(follower, "counting")
        assert code == 202, answer
        await client.waitFor(lambda m: m["type"] == "log_end", timeout=60)
    finally:
        await client.close()

    async def closed() -> bool:
        return await metric(follower, "statushub_log_streams") == 0

    await waitUntil(closed, timeout=10, interval=0.5, what="the follower's stream closed")

    async def gone() -> bool:
        answer = await getJSON(follower, path)
        return answer.get("error") == "no deployment named 'counting'"

    # once the follower's picture says it is torn down
    await waitUntil(gone, timeout=30, what="the deployment gone on the follower")
