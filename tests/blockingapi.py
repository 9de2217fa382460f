"""
The hub's HTTP API for plain (non-twisted) tests: Playwright's sync API and
child processes run beside it, so one blocking request at a time is right.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any, Optional


def api(hub: Any, method: str, path: str, body: Any = None,
        token: Optional[str] = None) -> tuple[int, Any]:
    """
    C{(status, parsed JSON or raw text)} of one request to C{hub}; C{body}
    (bytes as they are, anything else as JSON) goes as C{application/json}.
    """
    if body is not None and not isinstance(body, bytes):
        body = json.dumps(body).encode("utf-8")
    request = urllib.request.Request(f"{hub.url}{path}", data=body, method=method)
    if body is not None:
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode("utf-8", "replace")
