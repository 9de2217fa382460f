"""
C{GET /api/status}: one deployment's picture, as the feed sends it.
"""

from __future__ import annotations

from twisted.web.server import Request

from statushub.interfaces import IStatusSource
from statushub.names import SAFE_NAME
from statushub.web.jsonresource import JSONResource, respondJSON


class StatusResource(JSONResource):
    """
    C{GET /api/status}: the same JSON as the feed's latest message about the
    only deployment (the idle picture when there is none), or about the one
    C{?deployment=NAME} names.  With several deployments and no name it is
    ambiguous: 409, naming them.
    """

    isLeaf = True

    def __init__(self, source: IStatusSource) -> None:
        super().__init__()
        self._source = source

    def render_GET(self, request: Request) -> bytes:
        asked = request.args.get(b"deployment")
        if asked:
            name = asked[0].decode("utf-8", "replace")
            if len(asked) > 1 or not SAFE_NAME.match(name):
                return respondJSON(
                    request, 400,
                    {"error": f"deployment: {name!r} is not one deployment name",
                     "field": "deployment"},
                )
            return respondJSON(request, 200, self._source.current(name))
        names = self._source.names()
        if len(names) > 1:
            return respondJSON(
                request, 409,
                {"error": f"several deployments ({', '.join(names)}): "
                          "name one with ?deployment=NAME",
                 "deployments": names},
            )
        return respondJSON(request, 200, self._source.current(names[0] if names else None))
