"""
C{/examples/}: the browser example of a WAMP client, served by the hub.

    /examples/wamp.html        the live status through the router
    /examples/wamp.js          its script
    /examples/autobahn.min.js  the Autobahn JS browser bundle (npm
                               autobahn-browser 22.11.1, vendored)
    /examples/wamp.json        where the router is: url, realm, prefix

The page is plain static files; C{wamp.json} tells it the router the hub
itself joins (never the hub's ticket: the page joins as an anonymous client).
With tokens set, all of it needs one (the viewer's will do): the page is
opened with C{?token=}, and passes it on to its scripts and C{wamp.json}.
"""

from __future__ import annotations

import json
import os
from typing import Any, Mapping

from twisted.web.resource import Resource
from twisted.web.server import Request, Site
from twisted.web.static import File

EXAMPLES_DIR = os.path.join(os.path.dirname(os.path.dirname(__file__)), "static_wamp")

#: sha256 of autobahn.min.js in npm autobahn-browser 22.11.1 (its CHECKSUM.SHA256)
AUTOBAHN_MIN_JS_SHA256 = "11dbee872612291599f7ccf1338ef6b0da4c685eee0b9f2add58c978a3ad8ee3"


class RouterInfo(Resource):
    """
    C{/examples/wamp.json}: the router, realm and prefix, for the page.
    """

    isLeaf = True

    def __init__(self, wamp: Mapping[str, Any]) -> None:
        super().__init__()
        self._body = json.dumps(
            {
                # where clients go: the scale-out layout has the hub join a
                # router worker's own port, clients the proxies'
                "url": wamp.get("client_url") or wamp.get("url") or None,
                "realm": wamp.get("realm") or "statushub",
                "prefix": wamp.get("prefix") or "io.statushub",
            }
        ).encode("utf-8")

    def render_GET(self, request: Request) -> bytes:
        request.setHeader(b"content-type", b"application/json")
        request.setHeader(b"cache-control", b"no-store")
        return self._body


def examplesResource(wamp: Mapping[str, Any]) -> Resource:
    """
    The C{/examples} directory: the static files and C{wamp.json}.
    """
    examples = File(EXAMPLES_DIR)
    examples.contentTypes = dict(examples.contentTypes, **{".js": "text/javascript"})
    # /examples/ is the page, not a directory listing
    examples.indexNames = ["wamp.html"]
    examples.putChild(b"wamp.json", RouterInfo(wamp))
    return examples


def mountExamples(site: Site, wamp: Mapping[str, Any]) -> None:
    """
    Serve the examples at C{/examples/} on C{site} (a
    L{statushub.web.site.StatusHubSite}), for the viewer or the operator:
    what the page shows is the feed's, and the feed needs a token.
    """
    site.resource.putChild(b"examples", site.roles.guard(examplesResource(wamp)))
