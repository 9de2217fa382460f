"""
A request's JSON body, read one way wherever it is read (the API, the audit
line): anything JSON allows but nothing here can use is an error that names
the problem, never an exception that turns into a 500.

Refused: what is not UTF-8 or not JSON; C{NaN}, C{Infinity} and numbers too
large for a float (Python's json takes them, JSON does not); nesting deeper
than L{MAX_DEPTH}; a NUL character in any string or key (no name, command
or value here may hold one; C strings, the engine's among them, end there),
and a lone surrogate (C{"\\ud800"}: an escape JSON allows, of no character).
Where the value is, the error's C{field} names it as a topology's errors do
(C{nodes[0].healthcheck.interval}); else it is C{body}.
"""

from __future__ import annotations

import json
import math
from typing import Any, Union

#: levels of nesting at most (a topology needs four)
MAX_DEPTH = 32

Path = list[Union[str, int]]


class BodyError(ValueError):
    """
    The body cannot be used; the message says why, starting with C{body}.

    @ivar field: where in the body, or C{body}.
    """

    def __init__(self, message: str, field: str = "body") -> None:
        super().__init__(message)
        self.field = field


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
        # NaN and Infinity are read (as Python's json does) to be refused
        # below, where their place in the body is known
        value = json.loads(text, parse_float=_finiteFloat)
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
                raise BodyError(f"body: {problem} in {_name(path)}", _name(path))
        elif isinstance(item, float) and not math.isfinite(item):
            constant = "NaN" if math.isnan(item) else ("Infinity" if item > 0 else "-Infinity")
            raise BodyError(
                f"body: {_name(path)} is {constant}, not a number JSON allows", _name(path)
            )
        elif isinstance(item, dict):
            for key, child in item.items():
                problem = _badText(key)
                if problem:
                    raise BodyError(f"body: {problem} in a key of {_name(path)}", _name(path))
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


def _name(path: Path) -> str:
    """
    C{nodes[0].command[1]}, as the topology's errors name a field; a long
    key is cut, so that the answer and its audit line hold no essay (the
    log escapes what is left: L{statushub.logtext}).
    """
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
            continue
        if len(part) > 32:
            part = part[:32] + "..."
        text += f".{part}" if text else part
    return text or "body"
