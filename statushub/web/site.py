"""
The site: which resource answers which path.

    /            the dashboard (statushub/static)
    /ws/status   the WebSocket feed (feed.py)         role, origin
    /ws/logs     a node's log, live (insight.py)      role, origin ([logs] viewer)
    /ws/stats    resource use, live (insight.py)      role, origin ([logs] viewer)
    /api/status  one deployment's picture (status.py) role
    /api/whoami  what the token may do (whoami.py)     role
    /api/...     the API's resources (deployments.py) role, audited
    /healthz     the hub's own health (health.py)     open: it tells nothing private
    /metrics     Prometheus metrics                   role (a viewer may read it)
    /examples/   the WAMP example page (examples.py)  role (a viewer may read it)

Every request passes the L{RequestGuard} first (Host, cross-site, content
type); "role" is L{statushub.web.roles}: any token to read, the operator's
to change.  The connections keep the request limits of L{statushub.web.limits}
(the guards and the roles answer there before a body is read), and every
answer carries L{ANSWER_HEADERS}.
"""

from __future__ import annotations

import os
from typing import Any, Iterable, Mapping, Optional

from twisted.web.resource import IResource
from twisted.web.server import Request
from twisted.web.static import File

from statushub.config import Config
from statushub.hub import StatusHubFactory
from statushub.interfaces import IHealthCheck, IStatusSource
from statushub.web.audit import Audited
from statushub.web.feed import feedResource
from statushub.web.guard import Hosts, Origins, RequestGuard
from statushub.web.health import HealthResource
from statushub.web.insight import NodeReaders
from statushub.web.jsonresource import JSONError, JSONResource
from statushub.web.limits import LimitedSite, RequestLimits
from statushub.web.roles import Roles, TokenFailures
from statushub.web.status import StatusResource
from statushub.web.whoami import WhoAmIResource

STATIC_DIR = os.path.join(os.path.dirname(os.path.dirname(__file__)), "static")


#: sent with every answer: no page of another site may frame one of ours
#: (and trick a click on the dashboard), and no browser may take an answer
#: for another type than the one it is sent as
ANSWER_HEADERS = {
    b"x-frame-options": b"DENY",
    b"content-security-policy": b"frame-ancestors 'none'",
    b"x-content-type-options": b"nosniff",
}


class NotFound(JSONError):
    def __init__(self) -> None:
        super().__init__(404, "no such resource")


class APIRoot(JSONResource):
    """
    C{/api}: JSON 404s for unknown paths instead of twisted.web's HTML page
    (and a JSON 405 for C{/api} itself, a C{HEAD} too).
    """

    def getChild(self, path: bytes, request: Request) -> IResource:
        return NotFound()


class StatusHubSite(LimitedSite):
    """
    The hub's site, whose connections keep the request limits of
    C{[server]} (L{statushub.web.limits}).

    @ivar roles: the L{Roles} guarding it, for what is mounted later: with
        C{site.resource.putChild(b"metrics", site.roles.guard(resource))}
        C{/metrics} is readable by a viewer or the operator.
    """

    def __init__(
        self, resource: IResource, roles: Roles, limits: RequestLimits, **kwargs: Any
    ) -> None:
        super().__init__(resource, limits, roles.identify, **kwargs)
        self.roles = roles

    def getResourceFor(self, request: Request) -> IResource:
        # every answer, whoever gives it (a page, a guard's refusal, a 404)
        for name, value in ANSWER_HEADERS.items():
            request.setHeader(name, value)
        return super().getResourceFor(request)


def makeSite(
    source: IStatusSource,
    hub: StatusHubFactory,
    config: Config,
    api: Mapping[str, IResource] = {},
    healthChecks: Iterable[IHealthCheck] = (),
    staticDir: str = STATIC_DIR,
    reactor: Optional[Any] = None,
    metrics: Optional[IResource] = None,
    webMetrics: Optional[Any] = None,
    readers: Optional[NodeReaders] = None,
) -> StatusHubSite:
    """
    Build the site.  C{api} maps names to resources mounted under C{/api}
    (L{statushub.web.deployments.deploymentsAPI}'s, for one); C{metrics},
    when given, is served at C{/metrics}.

    @param reactor: the clock of the requests' deadlines and of the wrong
        tokens' window (default: the global reactor).
    @param webMetrics: what counts wrong tokens and the connections the
        request limits close (a L{statushub.metrics.WebMetrics}).
    @param readers: the insight room's feeds, mounted at C{/ws/logs} and
        C{/ws/stats} (its API children come through C{api}).
    """
    if reactor is None:
        from twisted.internet import reactor
    server = config["server"]
    roles = Roles.fromConfig(
        server, TokenFailures(reactor, None if webMetrics is None else webMetrics.authFailed)
    )
    origins = Origins(server["allowed_origins"])

    root = File(staticDir)

    apiRoot = APIRoot()
    apiRoot.putChild(b"status", StatusResource(source))
    apiRoot.putChild(b"whoami", WhoAmIResource(roles))
    for name, resource in api.items():
        # what the orchestrator adds changes things: every change is audited
        apiRoot.putChild(name.encode("ascii"), Audited(resource, roles.identify))
    root.putChild(b"api", roles.guard(apiRoot))

    # a JSON 405 for /ws itself (a plain Resource answered a HEAD with a 500)
    feeds = JSONResource()
    feeds.putChild(b"status", feedResource(hub, origins, config["feed"]["max_clients"]))
    if readers is not None:
        for path, resource in readers.feeds(origins, config["feed"]["max_clients"]).items():
            feeds.putChild(path, resource)
    root.putChild(b"ws", roles.guard(feeds))

    root.putChild(b"healthz", HealthResource(hub, healthChecks))
    if metrics is not None:
        # what the clients and the engine do is nobody's business without a token
        root.putChild(b"metrics", roles.guard(metrics))

    site = StatusHubSite(
        RequestGuard(root, Hosts(server["allowed_hosts"]), origins, roles.identify),
        roles,
        RequestLimits.fromConfig(server),
        reactor=reactor,
        metrics=webMetrics,
    )
    # no access log line per request: the feed and the dashboard poll
    site.log = lambda request: None
    return site
