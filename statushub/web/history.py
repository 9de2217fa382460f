"""
C{GET /api/deployments/NAME/history?since=SEQ&limit=N&after=TIME}: the kept
messages of a deployment (current or torn down) after C{SEQ} and, with
C{after}, stamped after C{TIME} (ISO 8601), oldest first, read from the
L{IHistory}.

    {"deployment": NAME, "epoch": E, "first": F, "last": L, "messages": [...]}

C{first} is the oldest seq still kept (what came before it was pruned),
C{last} the deployment's last seq.  404 for a name never seen; 503 while the
history cannot be read.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any, Optional

from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.server import Request

from statushub.historypage import HistoryUnavailable, Page
from statushub.interfaces import IHistory
from statushub.web.jsonresource import JSONResource, respondJSON, respondWhenFired

DEFAULT_LIMIT = 1000
_DIGITS = re.compile(r"[0-9]{1,19}")
MAX_LIMIT = 10_000

log = Logger()


def _number(request: Request, name: str, default: int, highest: int) -> int:
    """
    The non-negative integer query argument C{name}.

    @raise ValueError: with the text of the 400 that says what is wrong.
    """
    values = request.args.get(name.encode("ascii"))
    if not values:
        return default
    text = values[0].decode("utf-8", "replace")
    # ASCII digits: str.isdigit() takes "²", which int() then refuses
    if len(values) > 1 or not _DIGITS.fullmatch(text) or int(text) > highest:
        raise ValueError(f"{name}: {text[:32]!r} is not a whole number from 0 to {highest}")
    return int(text)


# an offset's "+" comes as a space when the URL did not encode it
_SPACED_OFFSET = re.compile(r" (\d\d(:?\d\d)?)$")
# what an ISO 8601 time is written with, at a length one may be
_TIME_CHARACTERS = re.compile(r"[0-9A-Za-z:.,+\- ]{1,64}")


def _moment(request: Request, name: str) -> Optional[float]:
    """
    The ISO 8601 time in query argument C{name} (with a time zone: C{Z}
    or an offset), as POSIX seconds; L{None} when it is not given.

    @raise ValueError: with the text of the 400 that says what is wrong.
    """
    values = request.args.get(name.encode("ascii"))
    if not values:
        return None
    text = values[0].decode("utf-8", "replace")
    if len(values) > 1:
        raise ValueError(f"{name}: give it once, not {len(values)} times")
    try:
        # fromisoformat stops at a NUL ("...Z\x00" is a time to it)
        if not _TIME_CHARACTERS.fullmatch(text):
            raise ValueError(text)
        moment = datetime.fromisoformat(_SPACED_OFFSET.sub(r"+\1", text.strip()))
    except ValueError:
        raise ValueError(
            f"{name}: {text[:40]!r} is not an ISO 8601 time, e.g. 2026-11-26T08:00:00Z"
        ) from None
    if moment.tzinfo is None:
        raise ValueError(
            f"{name}: {text[:40]!r} has no time zone: end it with Z (UTC) or an offset "
            "such as +01:00"
        )
    return moment.timestamp()


class HistoryResource(JSONResource):
    isLeaf = True

    def __init__(self, history: IHistory, name: str, epoch: str) -> None:
        super().__init__()
        self._history = history
        self._name = name
        self._epoch = epoch

    def render_GET(self, request: Request) -> Any:
        try:
            since = _number(request, "since", 0, 2**62)
            limit = _number(request, "limit", DEFAULT_LIMIT, MAX_LIMIT)
            after = _moment(request, "after")
        except ValueError as e:
            field = str(e).split(":", 1)[0]
            return respondJSON(request, 400, {"error": str(e), "field": field})

        def answer(page: Page) -> bytes:
            if page.last == 0:
                return respondJSON(request, 404, {"error": f"no deployment named {self._name!r}"})
            return _pageJSON(request, self._name, self._epoch, page)

        def failed(failure: Failure) -> bytes:
            if not failure.check(HistoryUnavailable):
                log.failure("reading the history of {name} failed", failure, name=self._name)
            return respondJSON(
                request, 503, {"error": f"the history cannot be read: {failure.value}"}
            )

        read = self._history.page(self._name, since, limit, after)
        return respondWhenFired(request, read.addCallbacks(answer, failed))


def _pageJSON(request: Request, name: Optional[str], epoch: str, page: Page) -> bytes:
    respondJSON(request, 200, None)  # the code and headers
    # the kept bodies are JSON already: joined, not parsed and dumped again
    head = json.dumps({"deployment": name, "epoch": epoch, "first": page.first,
                       "last": page.last})
    return (head[:-1] + ', "messages": [' + ",".join(page.bodies) + "]}\n").encode("utf-8")
