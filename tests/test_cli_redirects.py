"""
The command's token never goes to another origin: a redirect across origins
is not followed with it; one within the hub's origin is.  Two small HTTP
servers on loopback: one redirects, the other records what it was sent.
"""

from __future__ import annotations

import io
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator, Optional

import pytest

from statushub.cli import EXIT_OK, EXIT_REFUSED, main, origin


class Server:
    """
    An HTTP server on C{host}: C{redirects} maps a path to where it sends
    the client (303); any other path answers C{{"deployments": []}}.
    """

    def __init__(self, host: str) -> None:
        self.redirects: dict[str, str] = {}
        self.seen: list[tuple[str, Optional[str]]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.seen.append((self.path, self.headers.get("Authorization")))
                target = server.redirects.get(self.path)
                if target is not None:
                    self.send_response(303)
                    self.send_header("Location", target)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = json.dumps({"deployments": []}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self._http = ThreadingHTTPServer((host, 0), Handler)
        self.url = f"http://{host}:{self._http.server_address[1]}"
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._http.shutdown()
        self._http.server_close()


@pytest.fixture
def servers() -> Iterator[tuple[Server, Server]]:
    hub, elsewhere = Server("127.0.0.1"), Server("127.0.0.2")
    yield hub, elsewhere
    hub.close()
    elsewhere.close()


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


TOKEN = "a-token-of-sixteen"


def test_a_redirect_to_another_origin_is_not_followed_with_the_token(servers) -> None:
    hub, elsewhere = servers
    hub.redirects["/api/deployments"] = elsewhere.url + "/api/deployments"
    code, out, err = run("list", "--url", hub.url, "--token", TOKEN)
    assert code == EXIT_REFUSED
    assert "another origin: not followed" in err
    assert elsewhere.url in err
    assert elsewhere.seen == []


def test_another_port_is_another_origin(servers) -> None:
    hub, _ = servers
    other = Server("127.0.0.1")
    try:
        hub.redirects["/api/deployments"] = other.url + "/api/deployments"
        code, _, err = run("list", "--url", hub.url, "--token", TOKEN)
        assert code == EXIT_REFUSED
        assert other.seen == []
    finally:
        other.close()


def test_a_redirect_within_the_origin_is_followed_with_the_token(servers) -> None:
    hub, _ = servers
    hub.redirects["/api/deployments"] = "/api/deployments/"
    code, out, err = run("list", "--url", hub.url, "--token", TOKEN)
    assert code == EXIT_OK, err
    assert hub.seen == [
        ("/api/deployments", f"Bearer {TOKEN}"),
        ("/api/deployments/", f"Bearer {TOKEN}"),
    ]


def test_without_a_token_a_redirect_is_followed_anywhere(servers) -> None:
    hub, elsewhere = servers
    hub.redirects["/api/deployments"] = elsewhere.url + "/api/deployments"
    code, out, err = run("list", "--url", hub.url, "--token", "")
    assert code == EXIT_OK, err
    assert elsewhere.seen == [("/api/deployments", None)]


def test_origins() -> None:
    assert origin("http://Hub.example/x") == ("http", "hub.example", 80)
    assert origin("https://hub.example:443/") == origin("https://hub.example/")
    assert origin("http://hub.example:8080") != origin("https://hub.example:8080")
