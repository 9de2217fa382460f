"""
C{/api/deployment}: C{POST} deploys the topology in the body, C{DELETE}
tears the deployment down.  Both answer at once with the picture (the work
goes on; the feed tells how it ends).
"""

from __future__ import annotations

import json
from typing import Any

from twisted.logger import Logger
from twisted.web.resource import Resource
from twisted.web.server import Request

from statushub.deploy.manager import DeploymentConflict, DeploymentManager
from statushub.deploy.topology import TopologyError, validateTopology
from statushub.interfaces import IStatusSource
from statushub.web.jsonresource import respondJSON

MAX_BODY = 256 * 1024


class DeploymentResource(Resource):
    isLeaf = True
    log = Logger()

    def __init__(self, manager: DeploymentManager, source: IStatusSource) -> None:
        super().__init__()
        self._manager = manager
        self._source = source

    def render_POST(self, request: Request) -> bytes:
        body = request.content.read(MAX_BODY + 1) if request.content else b""
        if len(body) > MAX_BODY:
            return respondJSON(
                request, 413, {"error": f"body: larger than {MAX_BODY} bytes", "field": "body"}
            )
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError) as e:
            return respondJSON(
                request, 400, {"error": f"body: not valid JSON: {e}", "field": "body"}
            )
        try:
            topology = validateTopology(data)
        except TopologyError as e:
            return respondJSON(request, 400, {"error": str(e), "field": e.field})
        try:
            working = self._manager.deploy(topology)
        except DeploymentConflict as e:
            return respondJSON(request, 409, {"error": str(e)})
        working.addErrback(self._logFailure, "deploy")
        return respondJSON(request, 202, self._source.current())

    def render_DELETE(self, request: Request) -> bytes:
        try:
            working = self._manager.teardown()
        except DeploymentConflict as e:
            return respondJSON(request, 409, {"error": str(e)})
        if working is None:
            return respondJSON(request, 200, self._source.current())
        working.addErrback(self._logFailure, "teardown")
        return respondJSON(request, 202, self._source.current())

    def _logFailure(self, failure: Any, what: str) -> None:
        self.log.failure("{what} failed unexpectedly", failure, what=what)
