"""
A request's JSON body, read one way wherever it is read (the API, the audit
line): anything JSON allows but nothing here can use is an error that names
the problem, never an exception that turns into a 500.

Refused: what is not UTF-8 or not JSON; C{NaN}, C{Infinity} and numbers too
large for a float (Python's json takes them, JSON does not); nesting deeper
than L{MAX_DEPTH}; a NUL character in any string or key (no name, command
or value here may hold one; C strings, the engine's among them, end there),
and a lone surrogate (C{"\\ud800"}: an escape JSON allows, of no character).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, Union

#: levels of nesting at most (a topology needs four)
MAX_DEPTH = 32

Path = list[Union[str, int]]


class BodyError(ValueError):
    """
    The body cannot be used; the message says why, starting with C{body}.
    """

    field = "body"


def _refuseConstant(name: str) -> Any:
    raise BodyError(f"body: {name} is not a number JSON allows")


def _finiteFloat(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise BodyError(f"body: the number {text[:40]} is too large")
    return number


def parseBody(body: bytes) -> Any:
    """
    The JSON value of C{body}.

    @raise BodyError: see the module's docstring.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise BodyError(f"body: not UTF-8 ({e.reason} at byte {e.start})") from None
    try:
        value = json.loads(text, parse_constant=_refuseConstant, parse_float=_finiteFloat)
    except RecursionError:
        raise BodyError(f"body: nested more than {MAX_DEPTH} levels deep") from None
    except BodyError:
        raise
    except ValueError as e:
        raise BodyError(f"body: not valid JSON: {e}") from None
    _check(value)
    return value


def _check(value: Any) -> None:
    """
    Refuse nesting past L{MAX_DEPTH} and NUL characters; without recursion,
    so that no depth can exhaust the stack.
    """
    stack: list[tuple[Any, Path]] = [(value, [])]
    while stack:
        item, path = stack.pop()
        if len(path) > MAX_DEPTH:
            raise BodyError(f"body: nested more than {MAX_DEPTH} levels deep")
        if isinstance(item, str):
            problem = _badText(item)
            if problem:
                raise BodyError(f"body: {problem} in {_name(path)}")
        elif isinstance(item, dict):
            for key, child in item.items():
                problem = _badText(key)
                if problem:
                    raise BodyError(f"body: {problem} in a key of {_name(path)}")
                stack.append((child, path + [key]))
        elif isinstance(item, list):
            stack.extend((child, path + [index]) for index, child in enumerate(item))


def _badText(text: str) -> str:
    """
    What is wrong with a string of the body, or C{""}.
    """
    if "\x00" in text:
        return "a NUL character"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # \ud800 alone: JSON's escapes allow it, no UTF-8 text holds it
        return "a lone surrogate (not a character)"
    return ""


_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]{1,64}")


def _name(path: Path) -> str:
    """
    C{nodes[0].command[1]}, as the topology's errors name a field; a key
    that is not a plain word is quoted and cut, so that the message (and
    the log line it goes to) holds no control character and no essay.
    """
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
            continue
        if not _PLAIN_KEY.fullmatch(part):
            part = json.dumps(part[:32] + ("..." if len(part) > 32 else ""))
        text += f".{part}" if text else part
    return text or "the body"
