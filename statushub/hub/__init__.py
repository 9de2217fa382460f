"""
The WebSocket hub: an Autobahn server factory that keeps the connected
clients and sends each of them every status message.
"""

from statushub.hub.factory import StatusHubFactory
from statushub.hub.protocol import StatusProtocol

__all__ = ["StatusHubFactory", "StatusProtocol"]
