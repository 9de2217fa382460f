"""
Wait for a condition with a deadline instead of sleeping a guessed time.
"""

from __future__ import annotations

import threading
import time
from typing import Awaitable, Callable, TypeVar, Union

from twisted.internet import reactor
from twisted.internet.task import deferLater

T = TypeVar("T")


class Timeout(AssertionError):
    """
    The condition did not hold before the deadline.
    """


async def waitUntil(
    predicate: Callable[[], Union[T, Awaitable[T]]],
    timeout: float = 10.0,
    interval: float = 0.02,
    what: str = "condition",
) -> T:
    """
    Call C{predicate} every C{interval} seconds, letting the reactor run in
    between, until it returns something true; return that.

    @raise Timeout: C{timeout} seconds passed first.
    """
    deadline = reactor.seconds() + timeout
    while True:
        result = predicate()
        if hasattr(result, "__await__"):
            result = await result
        if result:
            return result
        if reactor.seconds() >= deadline:
            raise Timeout(f"{what} did not hold within {timeout} s")
        await deferLater(reactor, interval, lambda: None)


def blockUntil(
    predicate: Callable[[], T],
    timeout: float = 10.0,
    interval: float = 0.2,
    what: str = "condition",
) -> T:
    """
    L{waitUntil} for code that runs outside the reactor (fixtures that set up
    a process before a test starts): call C{predicate} every C{interval}
    seconds, blocking in between, until it returns something true.

    @raise Timeout: C{timeout} seconds passed first.
    """
    deadline = time.monotonic() + timeout
    pause = threading.Event()  # never set: its wait is the interval
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise Timeout(f"{what} did not hold within {timeout} s")
        pause.wait(interval)
