"""
The rules for names and addresses that several rooms check (a leaf module:
it imports nothing of statushub's).

A deployment's or a node's name is checked by the topology, the feed's
C{?deployment=}, C{/api/status}, the API's paths and WAMP's C{get_status};
the WAMP router's address and URI prefix by the configuration and the WAMP
publisher.  One rule each, here.
"""

from __future__ import annotations

import re
from typing import Optional

# Every pattern ends in \Z, not $: $ also matches before a final newline, so
# "abc\n" would pass.  Check with fullmatch all the same.

#: a deployment's or a node's name: safe in a container name and a label
#: value, short, no separators to abuse
SAFE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}\Z")

#: an image reference: registry/name:tag, no whitespace or shell characters
IMAGE_REFERENCE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9._/:@-]{0,254}\Z")

#: an environment variable's name
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}\Z")

#: Swarm's placement constraint syntax, and nothing more: an attribute of the
#: node or its engine, == or !=, a plain value
CONSTRAINT = re.compile(
    r"^(node\.(id|hostname|role|platform\.os|platform\.arch)"
    r"|(node|engine)\.labels\.[A-Za-z0-9][A-Za-z0-9_.-]{0,127})"
    r"[ ]*(==|!=)[ ]*[A-Za-z0-9][A-Za-z0-9_.:/-]{0,127}\Z"
)

#: what can be done to one node of a deployment: the last part of the API's
#: C{POST /api/deployments/NAME/nodes/NODE/ACTION}, the command's verbs, the
#: page's C{data-action}
NODE_ACTIONS = ("restart", "stop", "start", "recreate")

#: a host name or an IP literal, with an optional port: what a Host header
#: carries
HOST_NAME = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(:[0-9]{1,5})?")


def checkWampURL(url: str) -> Optional[str]:
    """
    Why C{url} cannot be a WAMP router's address, or L{None} if it can.
    """
    # imported here: Autobahn takes a tenth of a second to import, and the
    # command line's verbs that read a topology need none of it
    from autobahn.websocket.util import parse_url

    try:
        parse_url(url)
    except Exception as e:
        return f"not a ws:// or wss:// URL ({e})"
    return None


def checkWampPrefix(prefix: str) -> Optional[str]:
    """
    Why C{prefix} cannot start WAMP URIs, or L{None} if it can.
    """
    from autobahn.wamp import message as wampmessage

    try:
        wampmessage.check_or_raise_uri(prefix + ".status", strict=True)
    except Exception:
        return "must be dot-separated words of lowercase letters, digits and _"
    return None
