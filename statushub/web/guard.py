"""
Access control in front of the API and the feed: the bearer token, and the
origins a browser may open the feed from.
"""

from __future__ import annotations

import hmac
from typing import Iterable
from urllib.parse import urlsplit

from twisted.web.resource import IResource, Resource
from twisted.web.server import Request

from statushub.web.jsonresource import JSONError


def presentedToken(request: Request) -> bytes | None:
    """
    The token from C{Authorization: Bearer ...}, else from C{?token=}
    (browsers cannot set headers on a WebSocket).
    """
    header = request.getHeader(b"authorization")
    if header is not None:
        scheme, _, credentials = header.partition(b" ")
        if scheme.lower() == b"bearer":
            return credentials.strip()
        return None
    values = request.args.get(b"token")
    return values[0] if values else None


class TokenGuard(Resource):
    """
    Lets a request through to C{wrapped} (and everything under it) only with
    the right token.  With an empty token, everything passes.
    """

    def __init__(self, wrapped: IResource, token: str) -> None:
        super().__init__()
        self._wrapped = wrapped
        self._token = token.encode("utf-8")

    def _refusal(self, request: Request) -> IResource | None:
        if not self._token:
            return None
        token = presentedToken(request)
        if token is not None and hmac.compare_digest(token, self._token):
            return None
        return JSONError(
            401,
            "a valid token is required: send 'Authorization: Bearer <token>' or ?token=<token>",
            {b"www-authenticate": b'Bearer realm="statushub"'},
        )

    def getChildWithDefault(self, path: bytes, request: Request) -> IResource:
        return self._refusal(request) or self._wrapped.getChildWithDefault(path, request)

    def render(self, request: Request) -> bytes:
        return (self._refusal(request) or self._wrapped).render(request)


def isSameOrigin(origin: str, host: str) -> bool:
    parts = urlsplit(origin)
    return parts.scheme in ("http", "https") and parts.netloc.lower() == host.lower()


def _text(header: bytes | None) -> str | None:
    return None if header is None else header.decode("latin-1")


class OriginGuard(Resource):
    """
    Refuses a WebSocket upgrade from a browser page of another origin, unless
    that origin is allowed.  Programs that send no C{Origin} pass: the token,
    not the origin, is what keeps them out.
    """

    isLeaf = True

    def __init__(self, wrapped: IResource, allowedOrigins: Iterable[str]) -> None:
        super().__init__()
        self._wrapped = wrapped
        self._allowed = {origin.rstrip("/").lower() for origin in allowedOrigins}

    def allows(self, origin: str | None, host: str | None) -> bool:
        if origin is None or "*" in self._allowed:
            return True
        if host is not None and isSameOrigin(origin, host):
            return True
        return origin.rstrip("/").lower() in self._allowed

    def render(self, request: Request) -> bytes:
        origin = _text(request.getHeader(b"origin"))
        host = _text(request.getHeader(b"host"))
        if not self.allows(origin, host):
            return JSONError(403, f"origin {origin!r} is not allowed").render(request)
        return self._wrapped.render(request)
