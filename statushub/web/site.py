"""
The site: which resource answers which path.

    /            the dashboard (statushub/static)
    /ws/status   the WebSocket feed             token, origin
    /api/status  the only deployment's picture  token
    /api/...     resources the orchestrator adds token
    /healthz     the hub's own health           open: it tells nothing private
"""

from __future__ import annotations

import os
from typing import Iterable, Mapping

from autobahn.twisted.resource import WebSocketResource
from twisted.web.resource import IResource, Resource
from twisted.web.server import Request, Site
from twisted.web.static import File

from statushub.config import Config
from statushub.deploy.topology import SAFE_NAME
from statushub.hub import StatusHubFactory
from statushub.interfaces import IHealthCheck, IStatusSource
from statushub.web.guard import OriginGuard, TokenGuard
from statushub.web.jsonresource import JSONError, respondJSON

STATIC_DIR = os.path.join(os.path.dirname(os.path.dirname(__file__)), "static")


class StatusResource(Resource):
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


class HealthResource(Resource):
    """
    C{GET /healthz}: always 200 while the hub serves; each component says
    how it is (C{"engine": "unreachable"} is news, not an outage of the hub).
    """

    isLeaf = True

    def __init__(self, hub: StatusHubFactory, checks: Iterable[IHealthCheck]) -> None:
        super().__init__()
        self._hub = hub
        self._checks = list(checks)

    def render_GET(self, request: Request) -> bytes:
        body: dict[str, object] = {"status": "ok"}
        for check in self._checks:
            body[check.name] = check.health()
        body["clients"] = len(self._hub)
        return respondJSON(request, 200, body)


class NotFound(JSONError):
    def __init__(self) -> None:
        super().__init__(404, "no such resource")


class APIRoot(Resource):
    """
    C{/api}: JSON 404s for unknown paths instead of twisted.web's HTML page.
    """

    def getChild(self, path: bytes, request: Request) -> IResource:
        return NotFound()


def makeSite(
    source: IStatusSource,
    hub: StatusHubFactory,
    config: Config,
    api: Mapping[str, IResource] = {},
    healthChecks: Iterable[IHealthCheck] = (),
    staticDir: str = STATIC_DIR,
) -> Site:
    """
    Build the site.  C{api} maps names to resources mounted under C{/api}
    (the orchestrator's C{deployment}, for one).
    """
    token = config["server"]["token"]

    root = File(staticDir)

    apiRoot = APIRoot()
    apiRoot.putChild(b"status", StatusResource(source))
    for name, resource in api.items():
        apiRoot.putChild(name.encode("ascii"), resource)
    root.putChild(b"api", TokenGuard(apiRoot, token))

    feeds = Resource()
    feeds.putChild(
        b"status",
        OriginGuard(WebSocketResource(hub), config["server"]["allowed_origins"]),
    )
    root.putChild(b"ws", TokenGuard(feeds, token))

    root.putChild(b"healthz", HealthResource(hub, healthChecks))

    site = Site(root)
    # no access log line per request: the feed and the dashboard poll
    site.log = lambda request: None
    return site
