"""
What the integration tests send the hub: topologies on the test image, and
the HTTP API's calls.
"""

from __future__ import annotations

import json
from typing import Any

import treq

from tests.fixtures.docker import IMAGE


# a node's process that ends on SIGTERM, as a service should (C{sleep} alone,
# as a container's PID 1, ignores it: every stop and teardown would wait out
# [deploy] stop_timeout)
SERVICE = ["sh", "-c", "trap 'exit 0' TERM; sleep infinity & wait"]


def topology(name: str = "itest", nodes: int = 3, image: str = IMAGE, **extra: Any) -> dict:
    """
    C{nodes} sleeping containers (that end on SIGTERM) with a health check
    that passes.
    """
    return {
        "name": name,
        "nodes": [
            {
                "id": f"n{i}",
                "image": image,
                "command": SERVICE,
                "healthcheck": {"test": ["CMD-SHELL", "true"], "interval": 1.0},
                **extra,
            }
            for i in range(nodes)
        ],
    }


async def post(hub: Any, body: Any, path: str = "/api/deployment") -> tuple[int, dict]:
    """
    Deploy C{body}: by default the singular path, as one-deployment users do;
    C{path="/api/deployments"} for the plural one.
    """
    response = await treq.post(
        f"{hub.url}{path}",
        data=json.dumps(body).encode(),
        headers={"content-type": ["application/json"]},
    )
    return response.code, json.loads(await response.content())


async def delete(hub: Any, name: str = "") -> tuple[int, dict]:
    """
    Tear down deployment C{name}, or (without) the only one.
    """
    path = f"/api/deployments/{name}" if name else "/api/deployment"
    response = await treq.delete(f"{hub.url}{path}")
    return response.code, json.loads(await response.content())


async def getJSON(hub: Any, path: str) -> Any:
    response = await treq.get(f"{hub.url}{path}")
    return json.loads(await response.content())
