"""
The C{statushub} command with several deployments: C{list}, C{status
[NAME]}, C{teardown [NAME]}, C{deploy}, against a stand-in for the hub's
API (a plain HTTP server on loopback that answers as PRODUCT.md says), so
that every answer, the errors included, can be given on demand.  The same
verbs against the real hub are in tests/test_cli_docker.py.
"""

from __future__ import annotations

import io
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import pytest

from statushub.cli import EXIT_OK, EXIT_REFUSED, EXIT_USAGE, countNodes, formatList, main


def picture(name: str | None, deployStatus: str = "deployed", nodes: list | None = None) -> dict:
    return {
        "type": "status_update",
        "deployment": name,
        "deployStatus": deployStatus,
        "nodeStatuses": nodes if nodes is not None else [
            {"nodeId": "web", "containerId": "a" * 64, "status": "running", "health": "healthy"},
        ],
        "engine": "reachable",
        "error": None,
        "seq": 3,
        "epoch": "e1",
        "timestamp": "2026-11-27T08:00:00.000Z",
    }


class APIStandIn:
    """
    Answers C{(method, path) -> (code, body)} from C{answers}; records
    C{(method, path, headers, body)} of every request in C{requests}.
    """

    def __init__(self) -> None:
        self.answers: dict[tuple[str, str], tuple[int, Any]] = {}
        self.requests: list[tuple[str, str, dict, Any]] = []
        standIn = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                standIn.requests.append((self.command, self.path, dict(self.headers), body))
                code, answer = standIn.answers.get((self.command, self.path),
                                                   (404, {"error": "not found"}))
                raw = json.dumps(answer).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            do_GET = do_POST = do_DELETE = _answer

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def api() -> Iterator[APIStandIn]:
    standIn = APIStandIn()
    try:
        yield standIn
    finally:
        standIn.close()


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def several(api: APIStandIn) -> None:
    api.answers[("GET", "/api/deployments")] = (200, {"deployments": [
        picture("beta", nodes=[]), picture("alpha", "failed")]})


def test_countNodes() -> None:
    nodes = [
        {"nodeId": "a", "containerId": "", "status": "running", "health": "healthy"},
        {"nodeId": "b", "containerId": "", "status": "running", "health": "unhealthy"},
        {"nodeId": "c", "containerId": "", "status": "exited"},
        {"nodeId": "d", "containerId": "", "status": "running", "health": "starting"},
    ]
    assert countNodes({"nodeStatuses": nodes}) == "1 exited, 3 running (1 starting, 1 unhealthy)"
    assert countNodes({"nodeStatuses": []}) == "no nodes"


def test_formatList() -> None:
    assert formatList([]) == "no deployments"
    assert formatList([picture("alpha"), picture("b", "deploying", [])]).splitlines() == [
        "DEPLOYMENT  STATUS     NODES",
        "alpha       deployed   1 running",
        "b           deploying  no nodes",
    ]


def test_list(api: APIStandIn) -> None:
    """
    One line per deployment in name order; C{--json} the hub's own body.
    """
    several(api)
    code, out, err = run("list", "--url", api.url)
    assert code == EXIT_OK, err
    lines = out.splitlines()
    assert lines[1].split() == ["alpha", "failed", "1", "running"]
    assert lines[2].split() == ["beta", "deployed", "no", "nodes"]
    code, out, err = run("list", "--json", "--url", api.url)
    assert [p["deployment"] for p in json.loads(out)["deployments"]] == ["alpha", "beta"]


def test_listNone(api: APIStandIn) -> None:
    api.answers[("GET", "/api/deployments")] = (200, {"deployments": []})
    assert run("list", "--url", api.url)[:2] == (EXIT_OK, "no deployments\n")


def test_statusOfOne(api: APIStandIn) -> None:
    """
    C{status NAME} asks for that deployment; an unknown one is an error
    that names the ones there are.
    """
    api.answers[("GET", "/api/deployments/alpha")] = (200, picture("alpha"))
    code, out, err = run("status", "alpha", "--url", api.url)
    assert code == EXIT_OK, err
    assert "deployment: alpha  status: deployed" in out
    several(api)
    code, out, err = run("status", "gamma", "--url", api.url)
    assert code == EXIT_REFUSED
    assert "no deployment named 'gamma' (current: alpha, beta)" in err


def test_statusWithoutNameWhenSeveral(api: APIStandIn) -> None:
    """
    Without NAME, with several deployments (the hub's 409), the error says
    which there are and how to pick one.
    """
    api.answers[("GET", "/api/status")] = (409, {"error": "several deployments"})
    several(api)
    code, out, err = run("status", "--url", api.url)
    assert code == EXIT_USAGE
    assert "2 deployments exist (alpha, beta): name one, e.g. statushub status alpha" in err
    assert out == ""


def test_statusWithoutNameWhenOne(api: APIStandIn) -> None:
    api.answers[("GET", "/api/status")] = (200, picture("alpha"))
    code, out, err = run("status", "--json", "--url", api.url)
    assert code == EXIT_OK and json.loads(out) == picture("alpha")


def test_teardownNamed(api: APIStandIn) -> None:
    api.answers[("DELETE", "/api/deployments/alpha")] = (202, picture("alpha", "tearing_down"))
    code, out, err = run("teardown", "alpha", "--url", api.url, "--token", "t")
    assert (code, out) == (EXIT_OK, "tearing down alpha\n")
    method, path, headers, body = api.requests[-1]
    assert (method, path, headers["Authorization"]) == ("DELETE", "/api/deployments/alpha",
                                                        "Bearer t")


def test_teardownUnknown(api: APIStandIn) -> None:
    several(api)
    code, out, err = run("teardown", "gamma", "--url", api.url)
    assert code == EXIT_REFUSED
    assert "no deployment named 'gamma' (current: alpha, beta)" in err
    assert [r[:2] for r in api.requests if r[0] == "DELETE"] == [
        ("DELETE", "/api/deployments/gamma")]


def test_teardownWithoutNameWhenSeveral(api: APIStandIn) -> None:
    api.answers[("DELETE", "/api/deployment")] = (409, {"error": "several deployments"})
    several(api)
    code, out, err = run("teardown", "--url", api.url)
    assert code == EXIT_USAGE
    assert "2 deployments exist (alpha, beta): name one, e.g. statushub teardown alpha" in err


def test_teardownWithoutNameWhenOneOrNone(api: APIStandIn) -> None:
    api.answers[("DELETE", "/api/deployment")] = (202, picture("alpha", "tearing_down"))
    assert run("teardown", "--url", api.url)[:2] == (EXIT_OK, "tearing down alpha\n")
    api.answers[("DELETE", "/api/deployment")] = (200, picture(None, "idle", []))
    assert run("teardown", "--url", api.url)[:2] == (EXIT_OK, "nothing deployed\n")


def test_deployPostsJSON(api: APIStandIn, tmp_path: Path) -> None:
    """
    C{deploy} sends the topology to C{POST /api/deployments} as
    C{application/json}, and says how to follow it; a 409 is shown with the
    hub's words.
    """
    topology = {"name": "alpha", "nodes": [{"id": "a", "image": "i"}]}
    path = tmp_path / "alpha.json"
    path.write_text(json.dumps(topology))
    api.answers[("POST", "/api/deployments")] = (202, picture("alpha", "deploying"))
    code, out, err = run("deploy", str(path), "--url", api.url)
    assert code == EXIT_OK, err
    assert out == "deploying alpha (1 nodes); follow it with: statushub watch alpha\n"
    method, path_, headers, body = api.requests[-1]
    assert (method, path_, headers["Content-Type"], body) == (
        "POST", "/api/deployments", "application/json", topology)
    api.answers[("POST", "/api/deployments")] = (409, {"error": "alpha exists"})
    code, out, err = run("deploy", str(path), "--url", api.url)
    assert code == EXIT_REFUSED and "the hub refused (409): alpha exists" in err
