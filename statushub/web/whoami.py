"""
C{GET /api/whoami}: what the request's token may do, so that a page can show
only what it may use (the dashboard's node buttons).

    {"role": "operator", "canChange": true}

C{role} is C{operator}, C{viewer} or C{anonymous} (no token is configured:
anyone may change); without a valid token, when tokens are set, the role
guard in front answers 401 first.
"""

from __future__ import annotations

from twisted.web.server import Request

from statushub.web.jsonresource import JSONResource, respondJSON
from statushub.web.roles import ANONYMOUS, OPERATOR, Roles


class WhoAmIResource(JSONResource):
    isLeaf = True

    def __init__(self, roles: Roles) -> None:
        super().__init__()
        self._roles = roles

    def render_GET(self, request: Request) -> bytes:
        role = self._roles.identify(request)
        return respondJSON(
            request, 200, {"role": role, "canChange": role in (OPERATOR, ANONYMOUS)}
        )
