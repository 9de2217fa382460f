"""
Who a request is, and what that lets it do.

Two bearer tokens: C{[server] token} is the operator's, who may do
everything; C{[server] viewer_token} is a viewer's, who may only read
(C{GET}, and so the feeds).  With no token configured, anyone may do
anything (the hub then listens on loopback only, by default).

A resource is mounted readable by either role, and changeable by the
operator only, in one line::

    root.putChild(b"metrics", roles.guard(MetricsResource()))
"""

from __future__ import annotations

import hmac
from typing import Any, Mapping, Optional

from twisted.web.resource import IResource
from twisted.web.server import Request

from statushub.web.audit import Refusal, isChange
from statushub.web.guard import Guard

OPERATOR = "operator"
VIEWER = "viewer"
#: no token is configured: everyone may do everything
ANONYMOUS = "anonymous"
#: tokens are configured, and the request has none of them
UNAUTHENTICATED = "unauthenticated"


def presentedToken(request: Request) -> Optional[bytes]:
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


class Roles:
    """
    The configured tokens, and the role each one grants.
    """

    def __init__(self, operatorToken: str, viewerToken: str = "") -> None:
        if viewerToken and not operatorToken:
            # read-only access with full access open to all makes no sense
            raise ValueError("a viewer token needs an operator token beside it")
        self._operator = operatorToken.encode("utf-8")
        self._viewer = viewerToken.encode("utf-8")

    @classmethod
    def fromConfig(cls, server: Mapping[str, Any]) -> "Roles":
        """
        The roles of the C{[server]} section.
        """
        return cls(server["token"], server["viewer_token"])

    def identify(self, request: Request) -> str:
        """
        The role of C{request}: L{OPERATOR}, L{VIEWER}, L{ANONYMOUS} (no
        tokens configured) or L{UNAUTHENTICATED}.
        """
        if not self._operator:
            return ANONYMOUS
        token = presentedToken(request)
        if token is None:
            return UNAUTHENTICATED
        # both compared, whichever matches, so the time says nothing
        isOperator = hmac.compare_digest(token, self._operator)
        isViewer = bool(self._viewer) and hmac.compare_digest(token, self._viewer)
        if isOperator:
            return OPERATOR
        if isViewer:
            return VIEWER
        return UNAUTHENTICATED

    def guard(self, resource: IResource) -> IResource:
        """
        C{resource} (and everything under it) readable by a viewer or the
        operator, changeable by the operator only.
        """
        return RoleGuard(resource, self)


class RoleGuard(Guard):
    """
    Lets a request through to what its role may do: 401 without a valid
    token, 403 for a viewer's change request.
    """

    def __init__(self, wrapped: IResource, roles: Roles) -> None:
        super().__init__(wrapped)
        self._roles = roles

    def refusal(self, request: Request) -> Optional[IResource]:
        role = self._roles.identify(request)
        if role == UNAUTHENTICATED:
            return Refusal(
                401,
                "a valid token is required: send 'Authorization: Bearer <token>' "
                "or ?token=<token>",
                role,
                {b"www-authenticate": b'Bearer realm="statushub"'},
            )
        if role == VIEWER and isChange(request):
            return Refusal(
                403,
                "the viewer token may only read: this request changes something "
                "and needs the operator token ([server] token)",
                role,
            )
        return None
