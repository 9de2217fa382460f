"""
The deployments' HTTP API.  Changes go through an L{IDeploymentControl} and
are answered when it accepts or refuses them (one hub: at once), with the
picture; the work goes on, and the feed tells how it ends.

    GET    /api/deployments         every current deployment
    POST   /api/deployments         deploy the topology in the body
    GET    /api/deployments/NAME    one deployment; 404 if none has that name
    GET    /api/deployments/NAME/history  its kept messages (statushub.web.history)
    GET    /api/deployments/NAME/stats    its running nodes' resource use (statushub.web.insight)
    GET    /api/deployments/NAME/nodes/NODE/logs  a node's last lines (statushub.web.insight)
    DELETE /api/deployments/NAME    tear it down; 404 if none has that name
    POST   /api/deployments/NAME/nodes/NODE/ACTION  act on one node
                                    (statushub.web.nodeactions)
    POST   /api/deployment          as POST /api/deployments
    DELETE /api/deployment          tear down the only deployment; 409 when
                                    there are several (the body names them)
"""

from __future__ import annotations

from typing import Any, Optional, Union

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.resource import IResource
from twisted.web.server import Request

from statushub.errors import RequestError
from statushub.interfaces import IDeploymentControl, IHistory, IStatusSource
from statushub.names import SAFE_NAME
from statushub.resources import ResourcePolicy
from statushub.topology import Topology, TopologyError, validateTopology
from statushub.web.history import HistoryResource
from statushub.web.insight import NodeReaders
from statushub.web.jsonbody import BodyError, parseBody
from statushub.web.jsonresource import (
    JSONError,
    JSONResource,
    refusal,
    respondJSON,
    respondWhenFired,
)
from statushub.web.nodeactions import nodeActionChild

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
    The site has kept the body within C{[server] max_body}.
    """
    try:
        data = parseBody(request.content.read() if request.content else b"")
    except BodyError as e:
        return respondJSON(request, 400, {"error": str(e), "field": e.field})
    try:
        return validateTopology(data, policy)
    except TopologyError as e:
        return respondJSON(request, 400, {"error": str(e), "field": e.field})


def answerChange(request: Request, change: "Deferred[dict[str, Any]]", what: str) -> Any:
    """
    Answer a change when C{change} (an L{IDeploymentControl} call) fires:
    202 with the picture, or the refusal's code and text.
    """

    def accepted(picture: dict[str, Any]) -> bytes:
        return respondJSON(request, 202, picture)

    def refused(failure: Failure) -> bytes:
        if failure.check(RequestError):
            return refusal(request, failure.value)
        log.failure("{what} failed unexpectedly", failure, what=what)
        return respondJSON(request, 500, {"error": f"{what} failed: see the hub's log"})

    return respondWhenFired(request, change.addCallbacks(accepted, refused))


def deployFromBody(request: Request, control: IDeploymentControl, policy: ResourcePolicy) -> Any:
    topology = _readTopology(request, policy)
    if isinstance(topology, bytes):
        return topology
    return answerChange(request, control.deploy(topology), "deploy")


def teardownByName(request: Request, control: IDeploymentControl, name: str) -> Any:
    return answerChange(request, control.teardown(name), "teardown")


class DeploymentsResource(JSONResource):
    """
    C{/api/deployments} and, below it, one resource per name.

    @param history: where C{NAME/history} is read; L{None}: no history is
        kept.
    @param resources: a node's resources when it sets none, and the most
        it may set (C{[deploy]}): topologies are checked against it.
    """

    def __init__(
        self,
        control: IDeploymentControl,
        source: IStatusSource,
        history: Optional[IHistory] = None,
        resources: ResourcePolicy = ResourcePolicy(),
        readers: Optional[NodeReaders] = None,
    ) -> None:
        super().__init__()
        self._control = control
        self._source = source
        self._history = history
        self._resources = resources
        self._readers = readers

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
        if self._readers is not None:
            child = self._readers.apiChild(name, request.postpath)
            if child is not None:
                return child  # stats, nodes/NODE/logs
        if request.postpath[:1] == [b"nodes"]:
            return nodeActionChild(self._control, name, request.postpath)
        return OneDeploymentResource(self._control, self._source, name)

    def render_GET(self, request: Request) -> bytes:
        return respondJSON(
            request,
            200,
            {"deployments": [self._source.current(name) for name in self._source.names()]},
        )

    def render_POST(self, request: Request) -> Any:
        return deployFromBody(request, self._control, self._resources)


class OneDeploymentResource(JSONResource):
    """
    C{/api/deployments/NAME}.
    """

    isLeaf = True

    def __init__(self, control: IDeploymentControl, source: IStatusSource, name: str) -> None:
        super().__init__()
        self._control = control
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

    def render_DELETE(self, request: Request) -> Any:
        return self._unknown(request) or teardownByName(request, self._control, self.name)


class DeploymentResource(JSONResource):
    """
    C{/api/deployment}, kept for one-deployment use.
    """

    isLeaf = True

    def __init__(
        self,
        control: IDeploymentControl,
        source: IStatusSource,
        resources: ResourcePolicy = ResourcePolicy(),
    ) -> None:
        super().__init__()
        self._control = control
        self._source = source
        self._resources = resources

    def render_POST(self, request: Request) -> Any:
        return deployFromBody(request, self._control, self._resources)

    def render_DELETE(self, request: Request) -> Any:
        names = self._source.names()
        if not names:
            return respondJSON(request, 200, self._source.current(None))
        if len(names) > 1:
            return severalDeployments(
                request, names, "tear one down with DELETE /api/deployments/NAME"
            )
        return teardownByName(request, self._control, names[0])


def deploymentsAPI(
    control: IDeploymentControl,
    source: IStatusSource,
    history: Optional[IHistory] = None,
    resources: ResourcePolicy = ResourcePolicy(),
    readers: Optional[NodeReaders] = None,
) -> dict[str, IResource]:
    """
    The resources to mount under C{/api}, by name: C{deployment} and
    C{deployments} (with a deployment's C{stats} and its nodes' C{logs}
    when C{readers} is given).

    @param resources: what a topology's nodes get and may ask for
        (C{[deploy]}).
    """
    return {
        "deployment": DeploymentResource(control, source, resources),
        "deployments": DeploymentsResource(control, source, history, resources, readers),
    }
