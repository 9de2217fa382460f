"""
Requests to the hub's site in memory, through its whole resource tree (the
request guards and the roles included), with treq's L{StubTreq}: the API's
unit tests use it instead of C{DummyRequest}.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Optional

from treq.testing import StubTreq
from twisted.internet.defer import Deferred
from twisted.python.failure import Failure
from twisted.web.server import Site

#: the site is asked as if it served here (the Host check lets it through)
ORIGIN = "http://127.0.0.1:8080"


@dataclass
class Answer:
    code: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def fired(d: Deferred) -> Any:
    """
    The result C{d} has fired with (raising its failure).
    """
    box: list[Any] = []
    d.addBoth(box.append)
    assert box, "not answered yet"
    if isinstance(box[0], Failure):
        box[0].raiseException()
    return box[0]


def answered(d: Deferred) -> bool:
    """
    Whether C{d} has a result yet (left in place).
    """
    box: list[Any] = []

    def look(result: Any) -> Any:
        box.append(result)
        return result

    d.addBoth(look)
    return bool(box)


class SiteClient:
    """
    Sends requests to C{site}'s resource tree.  L{request} answers at once;
    L{send} gives the Deferred of an answer that may come later (then
    L{flush} once the site has written it).
    """

    def __init__(self, site: Site) -> None:
        self._stub = StubTreq(site.resource)

    def send(
        self,
        method: str,
        path: str,
        body: Optional[bytes] = None,
        headers: Optional[dict[str, str]] = None,
    ) -> "Deferred[Answer]":
        allHeaders = dict(headers or {})
        if body is not None:
            allHeaders.setdefault("Content-Type", "application/json")
        d = self._stub.request(method, ORIGIN + path, data=body, headers=allHeaders)
        d.addCallback(self._read)
        self.flush()
        return d

    def _read(self, response: Any) -> "Deferred[Answer]":
        headers = {
            name.decode("latin-1").lower(): values[0].decode("latin-1")
            for name, values in response.headers.getAllRawHeaders()
        }
        return self._stub.content(response).addCallback(
            lambda body: Answer(response.code, headers, body)
        )

    def flush(self) -> None:
        self._stub.flush()

    def request(
        self,
        method: str,
        path: str,
        body: Optional[bytes] = None,
        headers: Optional[dict[str, str]] = None,
    ) -> Answer:
        d = self.send(method, path, body, headers)
        self.flush()
        return fired(d)

    def call(self, method: str, path: str, body: Optional[bytes] = None) -> tuple[int, Any]:
        """
        The code and the JSON body of one request.
        """
        answer = self.request(method, path, body)
        return answer.code, answer.json()
