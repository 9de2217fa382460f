"""
The audit log: one line for every request that would change something (a
deploy, a teardown, an action on one node), accepted or refused, with who
asked, from where, for which deployment (and node), and why it was refused.

Lines go to twisted.logger in the namespace C{statushub.audit}, with the
fields as event keys (C{action}, C{role}, C{peer}, C{deployment}, C{node}
for a node action, C{outcome}, C{reason}, C{code}, C{method}, C{path}), so
that a JSON log
observer keeps them apart.  Two things write them: L{Refusal}, the answer of
every guard that refuses a request, and L{Audited}, which the API's
resources are mounted in.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Optional

from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.resource import IResource, Resource
from twisted.web.server import NOT_DONE_YET, Request

from statushub.names import NODE_ACTIONS
from statushub.web.jsonbody import BodyError, parseBody
from statushub.web.jsonresource import respondJSON

log = Logger(namespace="statushub.audit")

#: methods that only read; everything else is a change, and audited
SAFE_METHODS = frozenset([b"GET", b"HEAD", b"OPTIONS"])

#: what a change request is called in the log, by method
ACTIONS = {b"POST": "deploy", b"DELETE": "teardown"}

ACCEPTED = "accepted"
REFUSED = "refused"

# a body is read this far for the deployment's name, and no further
_NAME_SEARCH_LIMIT = 256 * 1024


def isChange(request: Request) -> bool:
    """
    Would C{request} change something if it were let through?
    """
    return request.method not in SAFE_METHODS


def record(
    request: Request,
    outcome: str,
    role: str,
    reason: Optional[str] = None,
    deployment: Optional[str] = None,
) -> None:
    """
    Log one audit line for C{request}.
    """
    action = ACTIONS.get(request.method, request.method.decode("ascii", "replace").lower())
    node = None
    onNode = _nodeActionInPath(request)
    if onNode is not None:
        name, node, action = onNode
        deployment = deployment or name
    if deployment is None:
        deployment = _deploymentInPath(request) or _deploymentInBody(request)
    text = (
        "audit: {action} of "
        + ("node {node!r} of " if node is not None else "")
        + "{deployment!r} by {role} from {peer}: {outcome} ({code})"
        + (": {reason}" if reason else "")
    )
    log.info(
        text,
        action=action,
        node=node,
        role=role,
        peer=_peer(request),
        deployment=deployment,
        outcome=outcome,
        reason=reason,
        code=request.code,
        method=request.method.decode("ascii", "replace"),
        path=request.path.decode("utf-8", "replace"),
    )


def _peer(request: Request) -> str:
    address = request.getClientAddress()
    host = getattr(address, "host", None)
    if host is None:
        return str(address)
    return f"[{host}]:{address.port}" if ":" in host else f"{host}:{address.port}"


def _deploymentInPath(request: Request) -> Optional[str]:
    """
    The C{NAME} of C{/api/deployments/NAME}, if that is the path.
    """
    parts = request.path.split(b"/")
    if len(parts) == 4 and parts[:3] == [b"", b"api", b"deployments"] and parts[3]:
        return parts[3].decode("utf-8", "replace")
    return None


def _nodeActionInPath(request: Request) -> Optional[tuple[str, str, str]]:
    """
    C{(NAME, NODE, ACTION)} of C{/api/deployments/NAME/nodes/NODE/ACTION},
    if that is the path (an action that is none is called C{node action}).
    """
    parts = request.path.split(b"/")
    if len(parts) != 7 or parts[:3] != [b"", b"api", b"deployments"] or parts[4] != b"nodes":
        return None
    name, node, action = (p.decode("utf-8", "replace") for p in (parts[3], parts[5], parts[6]))
    return name, node, action if action in NODE_ACTIONS else "node action"


def _deploymentInBody(request: Request) -> Optional[str]:
    """
    The C{name} of the topology in the body, if it has one: worth knowing
    even of a deploy that was refused before anyone looked at it.
    """
    content = request.content
    if content is None or request.method != b"POST":
        return None
    position = content.tell()
    try:
        content.seek(0)
        data = parseBody(content.read(_NAME_SEARCH_LIMIT + 1))
    except BodyError:
        return None
    finally:
        content.seek(position)
    name = data.get("name") if isinstance(data, dict) else None
    return name if isinstance(name, str) else None


class Refusal(Resource):
    """
    A guard's answer to a request it refuses: C{{"error": text}} with
    C{code}; a refused change request is also an audit line.
    """

    isLeaf = True

    def __init__(
        self,
        code: int,
        text: str,
        role: str = "unknown",
        headers: Optional[dict[bytes, bytes]] = None,
    ) -> None:
        super().__init__()
        self.code = code
        self.text = text
        self._role = role
        self._headers = headers or {}

    def render(self, request: Request) -> bytes:
        for name, value in self._headers.items():
            request.setHeader(name, value)
        body = respondJSON(request, self.code, {"error": self.text})
        if isChange(request):
            record(request, REFUSED, self._role, self.text)
        return body


class Audited(Resource):
    """
    C{wrapped} (and everything under it), with an audit line for every
    change request it answers: accepted when it answers below 400, else
    refused with the error it gave.

    @param identify: names the role of a request, for the line.
    """

    def __init__(self, wrapped: IResource, identify: Callable[[Request], str]) -> None:
        super().__init__()
        self._wrapped = wrapped
        self._identify = identify
        self.isLeaf = getattr(wrapped, "isLeaf", False)

    def getChildWithDefault(self, path: bytes, request: Request) -> IResource:
        return Audited(self._wrapped.getChildWithDefault(path, request), self._identify)

    def render(self, request: Request) -> Any:
        if not isChange(request):
            return self._wrapped.render(request)
        # An answer given later (NOT_DONE_YET) is written, not returned:
        # keep what is written, so that its line says why as well.
        written: list[bytes] = []
        write = request.write

        def keep(data: bytes) -> None:
            written.append(data)
            write(data)

        request.write = keep  # type: ignore[method-assign]
        body = self._wrapped.render(request)
        if body is NOT_DONE_YET:
            request.notifyFinish().addBoth(self._recordFinished, request, written)
        else:
            self._record(request, body)
        return body

    def _recordFinished(
        self, result: Optional[Failure], request: Request, written: list[bytes]
    ) -> None:
        gone = "the client went away before the answer" if isinstance(result, Failure) else None
        self._record(request, b"".join(written), gone)

    def _record(self, request: Request, body: bytes, note: Optional[str] = None) -> None:
        try:
            answer = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            answer = None
        if not isinstance(answer, dict):
            answer = {}
        role = self._identify(request)
        if request.code < 400:
            deployment = answer.get("deployment")
            record(request, ACCEPTED, role, note, deployment=deployment or None)
        else:
            reason = answer.get("error") or note or f"HTTP {request.code}"
            record(request, REFUSED, role, reason)
