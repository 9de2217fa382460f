"""
Small helpers for resources that answer JSON.
"""

from __future__ import annotations

import json
from typing import Any

from twisted.internet.defer import Deferred
from twisted.python.components import proxyForInterface
from twisted.web.error import UnsupportedMethod
from twisted.web.resource import IResource, Resource
from twisted.web.server import NOT_DONE_YET, Request

from statushub.errors import DeploymentConflict, RequestError


def respondJSON(request: Request, code: int, body: Any) -> bytes:
    """
    Set the status code and content type; return the body to render.
    """
    request.setResponseCode(code)
    request.setHeader(b"content-type", b"application/json")
    request.setHeader(b"cache-control", b"no-store")
    return json.dumps(body).encode("utf-8") + b"\n"


def refusal(request: Request, error: RequestError) -> bytes:
    """
    The answer to a refused change: its code, its text, and the deployments
    a conflict is about.
    """
    body: dict[str, Any] = {"error": str(error)}
    if isinstance(error, DeploymentConflict):
        body["deployments"] = error.deployments
    return respondJSON(request, error.code, body)


def respondWhenFired(request: Request, answer: "Deferred[bytes]") -> Any:
    """
    What a render method returns for the body C{answer} fires with: the
    body itself when it has fired already, else L{NOT_DONE_YET}, and the
    body is written when it fires (unless the client has gone meanwhile).
    C{answer} must not fail: it fires with the error's body instead.
    """
    rendered = False
    now: list[bytes] = []
    gone: list[bool] = []

    def deliver(body: bytes) -> None:
        if not rendered:
            now.append(body)
        elif not gone:
            request.write(body)
            request.finish()

    answer.addCallback(deliver)
    rendered = True
    if now:
        return now[0]
    request.notifyFinish().addErrback(lambda _: gone.append(True))
    return NOT_DONE_YET


class JSONError(Resource):
    """
    Answers any request with one error code and C{{"error": text}}.
    """

    isLeaf = True

    def __init__(self, code: int, text: str, headers: dict[bytes, bytes] | None = None):
        super().__init__()
        self._code = code
        self._text = text
        self._headers = headers or {}

    def render(self, request: Request) -> bytes:
        for name, value in self._headers.items():
            request.setHeader(name, value)
        return respondJSON(request, self._code, {"error": self._text})


def methodNotAllowed(request: Request, error: UnsupportedMethod) -> bytes:
    """
    The JSON 405 for a method the resource has no C{render_METHOD} for,
    naming the allowed ones.
    """
    methods = {m.decode("ascii") for m in error.allowedMethods}
    if "GET" not in methods:
        methods.discard("HEAD")  # twisted.web lists it always
    allowed = ", ".join(sorted(methods))
    request.setHeader(b"allow", allowed.encode("ascii"))
    method = request.method.decode("ascii", "replace")
    return respondJSON(
        request, 405, {"error": f"{method} is not allowed here (allowed: {allowed})"}
    )


class JSONResource(Resource):
    """
    A resource of the API: a method it has no C{render_METHOD} for gets a
    JSON 405 that names the allowed ones (twisted.web's own is an HTML page).
    """

    def render(self, request: Request) -> bytes:
        try:
            return super().render(request)
        except UnsupportedMethod as e:
            return methodNotAllowed(request, e)

    def render_HEAD(self, request: Request) -> bytes:
        # twisted.web's answers a HEAD with render_GET, which a resource
        # that only changes things has not: an AttributeError, a 500
        if getattr(self, "render_GET", None) is None:
            raise UnsupportedMethod(
                [name[len("render_"):].encode("ascii") for name in dir(self)
                 if name.startswith("render_")]
            )
        return self.render_GET(request)


class AnyMethodAnswered(proxyForInterface(IResource)):  # type: ignore[misc]
    """
    C{original}, with a method it does not take answered by
    L{methodNotAllowed}: twisted.web answers a method it does not know
    (C{DELETE} or C{BREW} on a static file) 501, as if the server were at
    fault.  A C{HEAD} where C{GET} is taken goes on to twisted.web, which
    answers it with the headers of the C{GET}.
    """

    def render(self, request: Request) -> bytes:
        try:
            return self.original.render(request)
        except UnsupportedMethod as e:
            if request.method == b"HEAD" and b"GET" in e.allowedMethods:
                raise
            return methodNotAllowed(request, e)
