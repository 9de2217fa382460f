"""
The real hub with no engine behind it: it starts, serves, and says so.
"""

from __future__ import annotations

import json

import pytest_twisted
import treq

from tests.wsclient import connectFeed


@pytest_twisted.ensureDeferred
async def test_hubServesWithoutEngine(hub_process, tmp_path) -> None:
    hub = hub_process(
        config="[polling]\ninterval = 0.5\n[docker]\ntimeout = 2\n",
        env={"DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock"},
    )
    client = await connectFeed(hub.wsUrl)
    try:
        await client.waitFor(lambda m: m["engine"] == "unreachable", timeout=10)

        async def health():
            response = await treq.get(f"{hub.url}/healthz")
            assert response.code == 200
            return json.loads(await response.content())

        assert (await health()) ["engine"] == "unreachable"
        assert (await health())["status"] == "ok"

        topology = {"name": "x", "nodes": [{"id": "a", "image": "statushub/busybox"}]}
        response = await treq.post(f"{hub.url}/api/deployment",
                                   data=json.dumps(topology).encode(),
                                   headers={"content-type": ["application/json"]})
        assert response.code == 202
        failed = await client.waitFor(lambda m: m["deployStatus"] == "failed", timeout=10)
        assert "cannot reach the engine" in failed["error"]

        # a teardown cannot make sure nothing is left without the engine, and says so
        response = await treq.delete(f"{hub.url}/api/deployment")
        assert response.code == 202
        stuck = await client.waitFor(
            lambda m: m["seq"] > failed["seq"] and m["deployStatus"] == "failed", timeout=10
        )
        assert stuck["error"].startswith("teardown failed")
    finally:
        await client.close()
