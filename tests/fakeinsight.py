"""
What the insight room's unit tests stand on: a node locator over the fake
engine's containers, a pump that reads the fake engine's streams in the
reactor thread, and a follower that keeps what it is sent.
"""

from __future__ import annotations

import json
import struct
from typing import Any, Callable, Optional

from twisted.internet.defer import ensureDeferred
from zope.interface import implementer

from statushub.engine import DEPLOYMENT_LABEL, NODE_LABEL, ContainerSpec, NodeLocation
from statushub.errors import Unavailable, UnknownDeployment
from statushub.insight.logs import ILogFollower
from statushub.insight.pumps import IStreamPump
from statushub.insight.stats import IStatsWatcher
from statushub.interfaces import INodeLocator
from tests.fakeengine import FakeEngine


@implementer(INodeLocator)
class FakeLocator:
    """
    Deployments as the test sets them: C{deployments[name]} is a list of
    C{(nodeId, containerId)}; a node's status is its container's in the
    fake engine.
    """

    def __init__(self, engine: FakeEngine) -> None:
        self.engine = engine
        self.nodes: dict[str, list[tuple[str, str]]] = {}

    def deploy(self, name: str, *nodeIds: str) -> dict[str, str]:
        """
        Make a deployment of running containers; return node -> container.
        """
        made = []
        for nodeId in nodeIds:
            spec = ContainerSpec(
                name=f"{name}-{nodeId}", image="statushub/busybox",
                labels=((DEPLOYMENT_LABEL, name), (NODE_LABEL, nodeId)),
            )
            # the fake answers at once
            containerId = self.engine.createContainer(spec).result
            self.engine.startContainer(containerId)
            made.append((nodeId, containerId))
        self.nodes[name] = made
        return dict(made)

    def deployments(self) -> list[str]:
        return sorted(self.nodes)

    def locate(self, deployment: str) -> list[NodeLocation]:
        if deployment not in self.nodes:
            raise UnknownDeployment(deployment)
        located = []
        for nodeId, containerId in self.nodes[deployment]:
            container = self.engine.containers.get(containerId)
            status = container["status"] if container else "missing"
            located.append(NodeLocation(nodeId, containerId if container else "", status))
        return located


@implementer(IStreamPump)
class DeferredPump:
    """
    Reads a fake stream (whose C{next} returns a Deferred) in the reactor
    thread, as many at once as C{maximum}.
    """

    def __init__(self, maximum: int = 100) -> None:
        self.maximum = maximum
        self.running = 0

    def pump(self, stream: Any, onItem: Callable[[Any], None], onEnd: Callable[[], None]) -> None:
        if self.running >= self.maximum:
            raise Unavailable(f"{self.maximum} streams already")
        self.running += 1

        async def read() -> None:
            try:
                while (item := await stream.next()) is not None:
                    onItem(item)
            finally:
                self.running -= 1
                stream.close()
                onEnd()

        ensureDeferred(read())


def callNow(function: Callable[..., Any], *args: Any) -> None:
    """
    C{callFromThread} for a pump that reads in the reactor thread.
    """
    function(*args)


def unframe(frame: bytes) -> dict[str, Any]:
    """
    The message in one server text frame.
    """
    length = frame[1] & 0x7F
    offset = 2
    if length == 126:
        (length,) = struct.unpack("!H", frame[2:4])
        offset = 4
    elif length == 127:
        (length,) = struct.unpack("!Q", frame[2:10])
        offset = 10
    return json.loads(frame[offset : offset + length])


@implementer(ILogFollower, IStatsWatcher)
class RecordingFollower:
    """
    Keeps every message it is sent, and how it ended.
    """

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.ended = False
        self.failed: Optional[str] = None

    def send(self, frame: bytes, lines: int) -> None:
        self.messages.append(unframe(frame))

    def end(self) -> None:
        self.ended = True

    def fail(self, reason: str) -> None:
        self.failed = reason

    def texts(self) -> list[str]:
        """
        The text of every line sent, in order.
        """
        return [line["text"] for m in self.messages if m["type"] == "log" for line in m["lines"]]

    def take(self) -> list[dict[str, Any]]:
        taken, self.messages = self.messages, []
        return taken
