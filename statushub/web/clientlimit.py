"""
A bound on the feed's clients: past it, an upgrade is answered 503 before
the WebSocket resource makes a protocol, so the clients already connected
keep the hub's memory and CPU.
"""

from __future__ import annotations

from typing import Sized

from twisted.web.resource import IResource, Resource
from twisted.web.server import Request

from statushub.web.jsonresource import JSONError

# seconds a refused client is asked to wait; it retries with its own
# backoff anyway
RETRY_AFTER = 5


class ClientLimit(Resource):
    """
    Renders C{wrapped} (the WebSocket resource) while C{clients} holds fewer
    than C{maximum}, else 503 with C{Retry-After}.

    @param clients: the open connections (the hub factory: its C{len()}
        counts them; a handshake completes within the render, so the count
        is current for the next request).
    """

    isLeaf = True

    def __init__(self, wrapped: IResource, clients: Sized, maximum: int) -> None:
        super().__init__()
        self._wrapped = wrapped
        self._clients = clients
        self.maximum = maximum

    def render(self, request: Request) -> bytes:
        if len(self._clients) >= self.maximum:
            return JSONError(
                503,
                f"the feed is full ({self.maximum} clients); try again later",
                {b"retry-after": str(RETRY_AFTER).encode("ascii")},
            ).render(request)
        return self._wrapped.render(request)
