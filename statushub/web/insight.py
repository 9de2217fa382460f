"""
Why a node is in its state, over HTTP and WebSocket (the insight room's
resources):

    GET /api/deployments/NAME/nodes/NODE/logs?tail=N   the node's last N lines
    GET /api/deployments/NAME/stats                    its running nodes' use
    /ws/logs?deployment=NAME&node=NODE&tail=N          a node's log, live
    /ws/stats?deployment=NAME                          resource use, each second

Read access: the role guard lets the viewer in, unless C{[logs] viewer =
false} (then L{OperatorOnly} refuses it).  The two feeds sit behind the same
Origin and client-limit guards as C{/ws/status} (L{statushub.web.feed}).
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from autobahn.twisted.websocket import WebSocketServerFactory
from twisted.internet.defer import ensureDeferred
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.resource import IResource
from twisted.web.server import Request

from statushub.engine import EngineError
from statushub.errors import RequestError
from statushub.insight.feeds import checkTail
from statushub.insight.logs import DEFAULT_TAIL, LogHub
from statushub.insight.stats import StatsHub
from statushub.names import SAFE_NAME
from statushub.web.audit import Refusal
from statushub.web.feed import feedResource
from statushub.web.guard import Guard, Origins
from statushub.web.jsonresource import JSONError, JSONResource, respondJSON, respondWhenFired
from statushub.web.roles import VIEWER

log = Logger()


class OperatorOnly(Guard):
    """
    Refuses the viewer (403): what C{[logs] viewer = false} puts in front
    of logs and resource use.
    """

    def __init__(self, wrapped: IResource, identify: Callable[[Request], str]) -> None:
        super().__init__(wrapped)
        self._identify = identify

    def refusal(self, request: Request) -> Any:
        if self._identify(request) == VIEWER:
            return Refusal(
                403,
                "the viewer token may not read logs and resource use here "
                "([logs] viewer = false): use the operator token",
                VIEWER,
            )
        return None


def _answer(request: Request, read: Any, what: str) -> Any:
    """
    Answer 200 with what C{read} (a Deferred) fires with; a refused request
    with its code, an engine that cannot be asked with 503.
    """

    def failed(failure: Failure) -> bytes:
        if failure.check(RequestError):
            return respondJSON(request, failure.value.code, {"error": str(failure.value)})
        if failure.check(EngineError):
            return respondJSON(request, 503, {"error": f"{what}: {failure.value}"})
        log.failure("{what} failed unexpectedly", failure, what=what)
        return respondJSON(request, 500, {"error": f"{what} failed: see the hub's log"})

    return respondWhenFired(
        request, read.addCallbacks(lambda body: respondJSON(request, 200, body), failed)
    )


class LogsResource(JSONResource):
    """
    C{GET /api/deployments/NAME/nodes/NODE/logs?tail=N}: the node's newest
    N lines (default 100, at most 10,000), oldest first; a node that has
    exited too.
    """

    isLeaf = True

    def __init__(self, logs: LogHub, deployment: str, node: str) -> None:
        super().__init__()
        self._logs = logs
        self._deployment = deployment
        self._node = node

    def render_GET(self, request: Request) -> Any:
        values = request.args.get(b"tail") or []
        tail = DEFAULT_TAIL
        if values:
            try:
                if len(values) > 1:
                    raise ValueError("tail: give one, not several")
                tail = checkTail(values[0].decode("utf-8", "replace"), ValueError)
            except ValueError as e:
                return respondJSON(request, 400, {"error": str(e), "field": "tail"})

        async def read() -> dict[str, Any]:
            lines = await self._logs.tail(self._deployment, self._node, tail)
            return {
                "deployment": self._deployment,
                "node": self._node,
                "lines": [line.toJSON() for line in lines],
            }

        return _answer(request, ensureDeferred(read()), f"the log of {self._node}")


class StatsResource(JSONResource):
    """
    C{GET /api/deployments/NAME/stats}: CPU (percent of one core) and memory
    of each running node, read from the streams open (opened for a few
    seconds if none are).
    """

    isLeaf = True

    def __init__(self, stats: StatsHub, deployment: str) -> None:
        super().__init__()
        self._stats = stats
        self._deployment = deployment

    def render_GET(self, request: Request) -> Any:
        return _answer(
            request, ensureDeferred(self._stats.current(self._deployment)),
            f"the resource use of {self._deployment}",
        )


class NodeReaders:
    """
    What the site mounts for the insight room: the API's children of a
    deployment (L{apiChild}) and the two feeds (L{feeds}), each behind
    L{OperatorOnly} when C{viewerMayRead} is false.

    @param identify: names the role of a request (L{statushub.web.roles}).
    """

    def __init__(
        self,
        logs: LogHub,
        stats: StatsHub,
        logFeed: WebSocketServerFactory,
        statsFeed: WebSocketServerFactory,
        viewerMayRead: bool,
        identify: Callable[[Request], str],
    ) -> None:
        self.logs = logs
        self.stats = stats
        self.logFeed = logFeed
        self.statsFeed = statsFeed
        self.viewerMayRead = viewerMayRead
        self._identify = identify

    @classmethod
    def of(cls, insight: Any, identify: Callable[[Request], str]) -> "NodeReaders":
        """
        The readers of an L{statushub.insight.service.InsightService}.
        """
        return cls(insight.logHub, insight.statsHub, insight.logFeed, insight.statsFeed,
                   insight.viewerMayRead, identify)

    def _gated(self, resource: IResource) -> IResource:
        return resource if self.viewerMayRead else OperatorOnly(resource, self._identify)

    def apiChild(self, deployment: str, postpath: list[bytes]) -> Optional[IResource]:
        """
        The resource for C{/api/deployments/NAME/...postpath}, if it is one
        of ours: C{stats}, C{nodes/NODE/logs}.
        """
        if postpath == [b"stats"]:
            return self._gated(StatsResource(self.stats, deployment))
        if len(postpath) == 3 and postpath[0] == b"nodes" and postpath[2] == b"logs":
            node = postpath[1].decode("utf-8", "replace")
            if not SAFE_NAME.fullmatch(node):
                return JSONError(404, f"deployment {deployment!r} has no node {node!r}")
            return self._gated(LogsResource(self.logs, deployment, node))
        return None

    def feeds(self, origins: Origins, maxClients: int) -> dict[bytes, IResource]:
        """
        C{/ws/logs} and C{/ws/stats}: the guards of C{/ws/status} (origin,
        client limit, each counting its own clients), and the viewer's.
        """
        return {
            b"logs": self._gated(feedResource(self.logFeed, origins, maxClients)),
            b"stats": self._gated(feedResource(self.statsFeed, origins, maxClients)),
        }
