"""
The WAMP publisher: the status on a realm of a WAMP router (Crossbar.io), for
Autobahn JS clients and for fanning out past one process.
"""

from __future__ import annotations

import os
from typing import Any, Optional

from statushub.interfaces import IStatusSource
from statushub.wamp.sink import DEFAULT_PREFIX, WampStatusSink

__all__ = ["DEFAULT_PREFIX", "WampStatusSink", "fromConfig"]

#: the hub's WAMP-ticket secret, when the config file should not hold it
TICKET_VARIABLE = "STATUSHUB_WAMP_TICKET"


def fromConfig(
    wamp: dict[str, Any], reactor: Any, source: IStatusSource
) -> Optional[WampStatusSink]:
    """
    The sink the C{[wamp]} config section asks for, or L{None} when it has no
    C{url} (WAMP is off unless configured).
    """
    if not wamp.get("url"):
        return None
    return WampStatusSink(
        reactor,
        source,
        url=wamp["url"],
        realm=wamp.get("realm") or "statushub",
        prefix=wamp.get("prefix") or DEFAULT_PREFIX,
        authid=wamp.get("authid", ""),
        ticket=wamp.get("ticket") or os.environ.get(TICKET_VARIABLE, ""),
    )
