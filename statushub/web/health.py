"""
C{GET /healthz}: the hub's own health, open to everyone (it tells nothing
private).
"""

from __future__ import annotations

from typing import Iterable, Sized

from twisted.web.server import Request

from statushub.interfaces import IHealthCheck
from statushub.web.jsonresource import JSONResource, respondJSON


class HealthResource(JSONResource):
    """
    C{GET /healthz}: always 200 while the hub serves; each component says
    how it is (C{"engine": "unreachable"} is news, not an outage of the hub).

    @param clients: the feed's clients (the hub factory: its C{len()}).
    @param checks: the components, each under its C{name} (the history, an
        L{statushub.interfaces.IHistory}, is one).
    """

    isLeaf = True

    def __init__(self, clients: Sized, checks: Iterable[IHealthCheck]) -> None:
        super().__init__()
        self._clients = clients
        self._checks = list(checks)

    def render_GET(self, request: Request) -> bytes:
        body: dict[str, object] = {"status": "ok"}
        for check in self._checks:
            body[check.name] = check.health()
        body["clients"] = len(self._clients)
        return respondJSON(request, 200, body)
