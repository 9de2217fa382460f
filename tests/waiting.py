"""
Wait for a condition with a deadline instead of sleeping a guessed time.
"""

from __future__ import annotations

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
