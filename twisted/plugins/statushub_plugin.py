"""
The C{twistd statushub} plugin: a stub, so that listing plugins stays cheap.
The service itself is built in L{statushub.tap}.
"""

from twisted.application.service import ServiceMaker

statushub = ServiceMaker(
    "statushub",
    "statushub.tap",
    "Deploy container topologies and stream their health over WebSocket",
    "statushub",
)
