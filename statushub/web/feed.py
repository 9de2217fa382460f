"""
C{/ws/status}: the WebSocket feed's resource, in front of the hub factory.
"""

from __future__ import annotations

from autobahn.twisted.resource import WebSocketResource
from autobahn.twisted.websocket import WebSocketServerFactory
from twisted.web.resource import IResource

from statushub.web.clientlimit import ClientLimit
from statushub.web.guard import OriginGuard, Origins


def feedResource(hub: WebSocketServerFactory, origins: Origins, maxClients: int) -> IResource:
    """
    The feed: an upgrade from a browser page of another origin is refused,
    one past C{maxClients} (the hub's C{len()}) gets 503, the rest are the
    hub's.
    """
    return OriginGuard(ClientLimit(WebSocketResource(hub), hub, maxClients), origins)
