"""
The guards on the real hub process: the Host check (DNS rebinding), the two
roles deploying and tearing down on the private engine, and the audit lines
the hub prints for each change request.
"""

from __future__ import annotations

import json
import re
from typing import Any, Optional

import pytest
import pytest_twisted
import treq

from tests.hubapi import topology
from tests.waiting import waitUntil
from tests.wsclient import connectFeed

AUDIT = re.compile(
    r"\[statushub\.audit#info\] audit: (?P<action>\w+) of (?P<deployment>\S+) by "
    r"(?P<role>\w+) from (?P<peer>\S+): (?P<outcome>\w+) \((?P<code>\d+)\)(?:: (?P<reason>.*))?$"
)


async def call(
    hub: Any,
    method: str,
    path: str = "/api/deployment",
    token: Optional[str] = None,
    body: Any = None,
    headers: Optional[dict[str, str]] = None,
) -> tuple[int, Any]:
    """
    C{(status, parsed JSON)} of one request; a body is sent as JSON unless
    C{headers} say otherwise.
    """
    allHeaders = {}
    data = None
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        allHeaders["Content-Type"] = "application/json"
    if token is not None:
        allHeaders["Authorization"] = f"Bearer {token}"
    allHeaders.update(headers or {})
    response = await treq.request(
        method, hub.url + path, data=data, headers={k: [v] for k, v in allHeaders.items()}
    )
    return response.code, json.loads(await response.content())


def auditLines(hub: Any) -> list[dict[str, Optional[str]]]:
    return [match.groupdict() for line in list(hub.log) if (match := AUDIT.search(line))]


async def waitForAuditLines(hub: Any, count: int) -> list[dict[str, Optional[str]]]:
    await waitUntil(lambda: len(auditLines(hub)) >= count, timeout=10, what=f"{count} audit lines")
    lines = auditLines(hub)
    assert len(lines) == count, lines
    for line in lines:
        assert line["peer"].startswith("127.0.0.1:"), line
    return lines


def summary(lines: list[dict]) -> list[tuple]:
    return [(line["action"], line["role"], line["outcome"], line["code"]) for line in lines]


# ---- Host ---------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_foreignHostIsRefusedEverywhereOwnNamesAreServed(hub_process) -> None:
    hub = hub_process(config='[server]\nallowed_hosts = ["statushub.test"]\n')
    port = hub.port

    for host in [f"evil.example:{port}", "evil.example", f"statushub.test.evil.example:{port}"]:
        for path in ["/api/status", "/", "/app.js", "/healthz", "/ws/status"]:
            response = await treq.get(hub.url + path, headers={"Host": [host]})
            assert response.code == 403, (host, path)
            assert "not served here" in (await response.json())["error"]
    # a real WebSocket client, on a name that resolves to the hub
    with pytest.raises(ConnectionError, match="403"):
        await connectFeed(f"ws://evil.example:{port}/ws/status", address=("127.0.0.1", port))

    # the hub listens on 127.0.0.1 only: [::1] is sent there as a header
    for host in [f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}",
                 f"statushub.test:{port}", "statushub.test"]:
        for path in ["/api/status", "/"]:
            response = await treq.get(hub.url + path, headers={"Host": [host]})
            assert response.code == 200, (host, path)
            await response.content()
    for name in ["localhost", "127.0.0.1", "statushub.test"]:
        client = await connectFeed(f"ws://{name}:{port}/ws/status", address=("127.0.0.1", port))
        await client.waitFor(lambda m: m["type"] == "status_update")
        await client.close()


# ---- roles, on the engine ---------------------------------------------------------


@pytest.mark.docker
@pytest_twisted.ensureDeferred
async def test_viewerReadsAndWatchesOperatorDeploysAndTearsDown(hub_process, docker) -> None:
    """
    The tokens come from the environment, which overrides the file's.  A
    viewer reads and follows the feed but can neither deploy nor tear down;
    a wrong or missing token gets 401; the operator does both.  Each change
    request is one audit line.
    """
    hub = hub_process(
        config='[server]\ntoken = "file-op"\n[polling]\ninterval = 0.5\n',
        env={"DOCKER_HOST": docker.host, "STATUSHUB_TOKEN": "op",
             "STATUSHUB_VIEWER_TOKEN": "view"},
    )
    plan = topology("roles")

    code, picture = await call(hub, "GET", "/api/status", token="view")
    assert (code, picture["deployStatus"]) == (200, "idle")
    watcher = await connectFeed(hub.wsUrl, token="view")
    await watcher.waitFor(lambda m: m["deployStatus"] == "idle")

    code, body = await call(hub, "POST", token="view", body=plan)
    assert code == 403 and "operator token" in body["error"]
    for token in [None, "nope", "file-op"]:
        code, body = await call(hub, "POST", token=token, body=plan)
        assert code == 401, token
    code, picture = await call(hub, "GET", "/api/status", token="view")
    assert picture["deployStatus"] == "idle"
    assert docker.labelledContainers() == []

    code, body = await call(hub, "POST", token="op", body=plan)
    assert code == 202, body
    await watcher.waitFor(lambda m: m["deployStatus"] == "deployed", timeout=60)
    containers = sorted(docker.labelledContainers())
    assert len(containers) == 3

    code, body = await call(hub, "DELETE", token="view")
    assert code == 403 and "operator token" in body["error"]
    for token in [None, "nope"]:
        code, body = await call(hub, "DELETE", token=token)
        assert code == 401, token
    code, picture = await call(hub, "GET", "/api/status", token="view")
    assert picture["deployStatus"] == "deployed"
    running = docker.docker("ps", "-q", "--no-trunc", "--filter", "label=io.statushub.deployment")
    assert sorted(running.split()) == sorted(
        docker.docker("inspect", "--format", "{{.Id}}", *containers).split()
    )

    code, body = await call(hub, "DELETE", token="op")
    assert code == 202
    await watcher.waitFor(
        lambda m: m["deployStatus"] == "idle" and m["seq"] > picture["seq"], timeout=60
    )
    await waitUntil(lambda: docker.labelledContainers() == [], timeout=30, what="teardown")
    await watcher.close()

    lines = await waitForAuditLines(hub, 9)
    assert summary(lines) == [
        ("deploy", "viewer", "refused", "403"),
        ("deploy", "unauthenticated", "refused", "401"),
        ("deploy", "unauthenticated", "refused", "401"),
        ("deploy", "unauthenticated", "refused", "401"),
        ("deploy", "operator", "accepted", "202"),
        ("teardown", "viewer", "refused", "403"),
        ("teardown", "unauthenticated", "refused", "401"),
        ("teardown", "unauthenticated", "refused", "401"),
        ("teardown", "operator", "accepted", "202"),
    ]
    # refused as soon as the headers were in: the body, and the name in it,
    # was never read
    assert [line["deployment"] for line in lines[:5]] == ["None"] * 4 + ["'roles'"]
    assert lines[8]["deployment"] == "'roles'"
    assert "operator token" in lines[0]["reason"]
    assert "valid token" in lines[1]["reason"]


@pytest.mark.docker
@pytest_twisted.ensureDeferred
async def test_auditLinesNameWhyARequestWasRefused(hub_process, docker) -> None:
    """
    No tokens (everyone is "anonymous"): the cross-site, content-type,
    invalid-topology and conflict refusals, each with its reason.
    """
    hub = hub_process(
        config="[polling]\ninterval = 0.5\n", env={"DOCKER_HOST": docker.host}
    )
    plan = topology("audited", nodes=1)
    evil = {"Origin": "http://evil.example"}

    assert (await call(hub, "POST", body=plan, headers=evil))[0] == 403
    assert (await call(hub, "POST", body=plan, headers={"Content-Type": "text/plain"}))[0] == 415
    bad = {"name": "audited", "nodes": [{"id": "x", "image": "y", "privileged": True}]}
    assert (await call(hub, "POST", body=bad))[0] == 400
    assert docker.labelledContainers() == []
    assert (await call(hub, "POST", body=plan))[0] == 202
    assert (await call(hub, "POST", body=plan))[0] == 409

    async def deployed() -> bool:
        code, picture = await call(hub, "GET", "/api/status")
        return picture["deployStatus"] == "deployed"

    await waitUntil(deployed, timeout=60, interval=0.2, what="deployed")
    assert (await call(hub, "DELETE", headers={"Sec-Fetch-Site": "cross-site"}))[0] == 403
    assert len(docker.labelledContainers()) == 1
    assert (await call(hub, "DELETE"))[0] == 202
    await waitUntil(lambda: docker.labelledContainers() == [], timeout=30, what="teardown")

    lines = await waitForAuditLines(hub, 7)
    assert summary(lines) == [
        ("deploy", "anonymous", "refused", "403"),
        ("deploy", "anonymous", "refused", "415"),
        ("deploy", "anonymous", "refused", "400"),
        ("deploy", "anonymous", "accepted", "202"),
        ("deploy", "anonymous", "refused", "409"),
        ("teardown", "anonymous", "refused", "403"),
        ("teardown", "anonymous", "accepted", "202"),
    ]
    reasons = [line["reason"] or "" for line in lines]
    assert "cross-site" in reasons[0] and "http://evil.example" in reasons[0]
    assert "Content-Type" in reasons[1] and "text/plain" in reasons[1]
    assert "nodes[0].privileged" in reasons[2]
    assert reasons[3] == ""
    assert "audited" in reasons[4]
    assert "Sec-Fetch-Site" in reasons[5]
    # the guards refuse before the body is read: no name for their lines
    assert [line["deployment"] for line in lines] == (
        ["None", "None"] + ["'audited'"] * 3 + ["None", "'audited'"]
    )
