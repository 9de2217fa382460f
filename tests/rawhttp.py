"""
HTTP as a hostile client speaks it: raw bytes on a real socket, headers and
body sent as the test says (too large, chunked, a byte at a time, twice the
same header), and the answer read as it comes, if it comes.
"""

from __future__ import annotations

import http.client
import json
import select
import socket
from dataclasses import dataclass
from typing import Any, Optional

TIMEOUT = 15.0


@dataclass
class Answer:
    code: int
    headers: dict[str, str]
    body: bytes
    #: the status line's words (the feed's refusals say what is wrong there)
    reason: str = ""

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def error(self) -> str:
        return self.json()["error"]


def requestHead(
    method: str,
    path: str,
    port: int,
    *headers: str,
    host: Optional[str] = None,
) -> bytes:
    """
    The request line and headers, C{Host: 127.0.0.1:PORT} first unless
    C{host} names another.
    """
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host or f'127.0.0.1:{port}'}", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class RawConnection:
    """
    One connection to the hub on loopback (from C{source}, another loopback
    address, when given).
    """

    def __init__(self, port: int, source: str = "") -> None:
        self.port = port
        self.sock = socket.create_connection(
            ("127.0.0.1", port), timeout=TIMEOUT, source_address=(source, 0) if source else None
        )
        self.sent = 0
        #: what L{closedByHub} read before the close
        self.received = b""
        self.method = ""

    def send(self, data: bytes) -> bool:
        """
        Send C{data}; L{False} if the hub has closed the connection.
        """
        if not self.method:
            # an answer to HEAD has no body, whatever its Content-Length says
            self.method = data.partition(b" ")[0].decode("latin-1")
        try:
            self.sock.sendall(data)
        except OSError:
            return False
        self.sent += len(data)
        return True

    def answer(self) -> Answer:
        """
        Read one answer (whatever else is still unsent).
        """
        response = http.client.HTTPResponse(self.sock, method=self.method or "GET")
        response.begin()
        body = response.read()
        return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, body,
                      response.reason)

    def closedByHub(self, timeout: float = TIMEOUT) -> bool:
        """
        Whether the hub closes the connection within C{timeout} seconds
        (what it still sends before is read and kept in L{received}).
        """
        while True:
            readable, _, _ = select.select([self.sock], [], [], timeout)
            if not readable:
                return False
            try:
                data = self.sock.recv(65536)
            except OSError:
                return True
            if data == b"":
                return True
            self.received += data

    def close(self) -> None:
        self.sock.close()


def exchange(port: int, head: bytes, body: bytes = b"", source: str = "") -> Answer:
    """
    One request on a connection of its own.
    """
    connection = RawConnection(port, source)
    try:
        connection.send(head + body)
        return connection.answer()
    finally:
        connection.close()
