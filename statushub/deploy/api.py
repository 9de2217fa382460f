"""
The deployments' HTTP API.  Changes answer at once with the picture (the
work goes on; the feed tells how it ends).

    GET    /api/deployments         every current deployment
    POST   /api/deployments         deploy the topology in the body
    GET    /api/deployments/NAME    one deployment; 404 if none has that name
    GET    /api/deployments/NAME/history  its kept messages (statushub.history.api)
    DELETE /api/deployments/NAME    tear it down; 404 if none has that name
    POST   /api/deployment          as POST /api/deployments
    DELETE /api/deployment          tear down the only deployment; 409 when
                                    there are several (the body names them)
"""

from __future__ import annotations

import json
from typing import Any, Optional, Union

from twisted.logger import Logger
from twisted.web.resource import IResource
from twisted.web.server import Request

from statushub.deploy.manager import DeploymentConflict, DeploymentManager, UnknownDeployment
from statushub.deploy.topology import SAFE_NAME, Topology, TopologyError, validateTopology
from statushub.history.api import HistoryResource
from statushub.interfaces import IStatusSource
from statushub.resources import ResourcePolicy
from statushub.web.jsonresource import JSONError, JSONResource, respondJSON

MAX_BODY = 256 * 1024

log = Logger()


def severalDeployments(request: Request, names: list[str], what: str) -> bytes:
    """
    409 for a request that needs one deployment when there are several.
    """
    return respondJSON(
        request,
        409,
        {
            "error": f"several deployments ({', '.join(names)}): {what}",
            "deployments": names,
        },
    )


def unknownDeployment(request: Request, name: str) -> bytes:
    return respondJSON(request, 404, {"error": f"no deployment named {name!r}"})


def _readTopology(request: Request, policy: ResourcePolicy) -> Union[Topology, bytes]:
    """
    The valid topology in the body, or the rendered error that says why not.
    """
    body = request.content.read(MAX_BODY + 1) if request.content else b""
    if len(body) > MAX_BODY:
        return respondJSON(
            request, 413, {"error": f"body: larger than {MAX_BODY} bytes", "field": "body"}
        )
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        return respondJSON(request, 400, {"error": f"body: not valid JSON: {e}", "field": "body"})
    try:
        return validateTopology(data, policy)
    except TopologyError as e:
        return respondJSON(request, 400, {"error": str(e), "field": e.field})


def _logFailure(failure: Any, what: str, name: str) -> None:
    log.failure("{what} of {name} failed unexpectedly", failure, what=what, name=name)


def deployFromBody(request: Request, manager: DeploymentManager, source: IStatusSource) -> bytes:
    topology = _readTopology(request, manager.resources)
    if isinstance(topology, bytes):
        return topology
    try:
        working = manager.deploy(topology)
    except DeploymentConflict as e:
        return respondJSON(request, 409, {"error": str(e), "deployments": e.deployments})
    working.addErrback(_logFailure, "deploy", topology.name)
    return respondJSON(request, 202, source.current(topology.name))


def teardownByName(
    request: Request, manager: DeploymentManager, source: IStatusSource, name: str
) -> bytes:
    try:
        working = manager.teardown(name)
    except UnknownDeployment:
        return unknownDeployment(request, name)
    except DeploymentConflict as e:
        return respondJSON(request, 409, {"error": str(e), "deployments": [name]})
    working.addErrback(_logFailure, "teardown", name)
    return respondJSON(request, 202, source.current(name))


class DeploymentsResource(JSONResource):
    """
    C{/api/deployments} and, below it, one resource per name.
    """

    def __init__(self, manager: DeploymentManager, source: IStatusSource) -> None:
        super().__init__()
        self._manager = manager
        self._source = source
        self._history: Optional[Any] = None

    def putHistory(self, store: Any) -> None:
        """
        Serve C{NAME/history} from C{store} (a L{statushub.history.store.HistoryStore}).
        """
        self._history = store

    def getChild(self, path: bytes, request: Request) -> IResource:
        if path == b"":
            return self  # /api/deployments/
        name = path.decode("utf-8", "replace")
        if not SAFE_NAME.match(name):
            return JSONError(404, f"no deployment named {name!r}")
        if request.postpath == [b"history"]:
            if self._history is None:
                return JSONError(404, "no history is kept ([history] enabled = false)")
            return HistoryResource(self._history, name, self._source.epoch)
        return OneDeploymentResource(self._manager, self._source, name)

    def render_GET(self, request: Request) -> bytes:
        return respondJSON(
            request,
            200,
            {"deployments": [self._source.current(name) for name in self._source.names()]},
        )

    def render_POST(self, request: Request) -> bytes:
        return deployFromBody(request, self._manager, self._source)


class OneDeploymentResource(JSONResource):
    """
    C{/api/deployments/NAME}.
    """

    isLeaf = True

    def __init__(self, manager: DeploymentManager, source: IStatusSource, name: str) -> None:
        super().__init__()
        self._manager = manager
        self._source = source
        self.name = name

    def _unknown(self, request: Request) -> Optional[bytes]:
        if request.postpath and request.postpath != [b""]:
            return respondJSON(request, 404, {"error": "no such resource"})
        if self.name not in self._source.names():
            return unknownDeployment(request, self.name)
        return None

    def render_GET(self, request: Request) -> bytes:
        return self._unknown(request) or respondJSON(
            request, 200, self._source.current(self.name)
        )

    def render_DELETE(self, request: Request) -> bytes:
        return self._unknown(request) or teardownByName(
            request, self._manager, self._source, self.name
        )


class DeploymentResource(JSONResource):
    """
    C{/api/deployment}, kept for one-deployment use.
    """

    isLeaf = True

    def __init__(self, manager: DeploymentManager, source: IStatusSource) -> None:
        super().__init__()
        self._manager = manager
        self._source = source

    def render_POST(self, request: Request) -> bytes:
        return deployFromBody(request, self._manager, self._source)

    def render_DELETE(self, request: Request) -> bytes:
        names = self._manager.names()
        if not names:
            return respondJSON(request, 200, self._source.current(None))
        if len(names) > 1:
            return severalDeployments(
                request, names, "tear one down with DELETE /api/deployments/NAME"
            )
        return teardownByName(request, self._manager, self._source, names[0])
