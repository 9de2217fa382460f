"""
Acting on one node (PRODUCT.md, "Acting on one node"):

    POST /api/deployments/NAME/nodes/NODE/restart   stop it (grace), start it again
    POST /api/deployments/NAME/nodes/NODE/stop      stop it, and keep it stopped
    POST /api/deployments/NAME/nodes/NODE/start     start a stopped node
    POST /api/deployments/NAME/nodes/NODE/recreate  a new container from its topology entry

Each goes through L{IDeploymentControl.act} and is answered when it is
accepted: 202 with the deployment's picture (200 when there was nothing to
do), or the refusal's code (404 unknown deployment or node, 409 naming the
conflict).  The body may be empty or C{{}}.  The site's guards (Host,
cross-site, content type, the operator's role) and the audit line come
before, as for a deploy.
"""

from __future__ import annotations

from typing import Any

from twisted.python.failure import Failure
from twisted.web.resource import IResource
from twisted.web.server import Request

from statushub.errors import RequestError
from statushub.interfaces import IDeploymentControl
from statushub.names import NODE_ACTIONS, SAFE_NAME
from statushub.web.jsonbody import BodyError, parseBody
from statushub.web.jsonresource import (
    JSONError,
    JSONResource,
    refusal,
    respondJSON,
    respondWhenFired,
)

# an action's body is empty or {}: this much is read, and no more
_BODY_LIMIT = 1024


def nodeActionChild(control: IDeploymentControl, name: str, postpath: list[bytes]) -> IResource:
    """
    The resource for C{nodes/NODE/ACTION} below C{/api/deployments/NAME}
    (C{postpath}), or a JSON 404 naming what is wrong.
    """
    if len(postpath) != 3 or postpath[0] != b"nodes":
        return JSONError(404, "no such resource")
    node = postpath[1].decode("utf-8", "replace")
    action = postpath[2].decode("utf-8", "replace")
    if not SAFE_NAME.fullmatch(node):
        return JSONError(404, f"deployment {name!r} has no node {node!r}")
    if action not in NODE_ACTIONS:
        return JSONError(
            404, f"{action!r} is not a node action (one of: {', '.join(NODE_ACTIONS)})"
        )
    return NodeActionResource(control, name, node, action)


def _bodyProblem(request: Request) -> str | None:
    """
    Why the body is not empty or C{{}}, or L{None}.
    """
    body = request.content.read(_BODY_LIMIT + 1) if request.content else b""
    if not body.strip():
        return None
    try:
        data = parseBody(body)
    except BodyError as e:
        # deep nesting among them: json.loads would raise RecursionError
        return f"{e}; a node action takes an empty body or {{}}"
    if data != {}:
        return "body: a node action takes an empty body or {}, nothing more"
    return None


class NodeActionResource(JSONResource):
    """
    C{POST /api/deployments/NAME/nodes/NODE/ACTION}.
    """

    isLeaf = True

    def __init__(self, control: IDeploymentControl, name: str, node: str, action: str) -> None:
        super().__init__()
        self._control = control
        self.name = name
        self.node = node
        self.action = action

    def render_POST(self, request: Request) -> Any:
        problem = _bodyProblem(request)
        if problem is not None:
            return respondJSON(request, 400, {"error": problem, "field": "body"})

        def answered(result: Any) -> bytes:
            started, picture = result
            return respondJSON(request, 202 if started else 200, picture)

        def refused(failure: Failure) -> bytes:
            if failure.check(RequestError):
                return refusal(request, failure.value)
            return respondJSON(
                request, 500, {"error": f"{self.action} of node {self.node!r} failed: see the hub's log"}
            )

        answer = self._control.act(self.name, self.node, self.action)
        return respondWhenFired(request, answer.addCallbacks(answered, refused))
