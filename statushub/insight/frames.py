"""
A message of the insight feeds as the bytes of one WebSocket text frame:
encoded and framed once, written as they are to every client it goes to.
"""

from __future__ import annotations

import json
from typing import Any

from autobahn.websocket.protocol import PreparedMessage


def encode(message: dict[str, Any]) -> bytes:
    """
    Compact JSON text of one message.
    """
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def textFrame(message: dict[str, Any]) -> bytes:
    """
    One unmasked, uncompressed server text frame holding C{message}.
    """
    return PreparedMessage(encode(message), False, False, True).payloadHybi
