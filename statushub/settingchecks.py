"""
The checks of single configuration values (L{statushub.config}'s
L{Setting.check}): each returns an error text that names the problem, or
L{None}.
"""

from __future__ import annotations

from typing import Any, Optional

from statushub import resources
from statushub.names import HOST_NAME, SAFE_NAME, checkWampURL


def positive(value: Any) -> Optional[str]:
    return None if value > 0 else "must be greater than 0"


def notNegative(value: Any) -> Optional[str]:
    return None if value >= 0 else "must be 0 or more"


def stringList(value: Any) -> Optional[str]:
    if all(isinstance(item, str) for item in value):
        return None
    return "must be a list of strings"


def hostNames(value: Any) -> Optional[str]:
    problem = stringList(value)
    if problem:
        return problem
    for name in value:
        if name != "*" and not HOST_NAME.fullmatch(name):
            return f"{name!r} is not a host name (with or without :port, no scheme or path)"
    return None


def wampURL(value: Any) -> Optional[str]:
    if value == "":
        return None
    return checkWampURL(value)


def engineKind(value: Any) -> Optional[str]:
    return None if value in ("docker", "swarm") else f"{value!r} is not docker or swarm"


def engineAddresses(value: Any) -> Optional[str]:
    bad = [name for name, address in value.items() if not (isinstance(address, str) and address)]
    return f"{bad[0]!r}: expected an engine address (unix:///path or tcp://host:port)" if bad else None


def nonEmpty(value: Any) -> Optional[str]:
    return None if value else "must not be empty"


def endpoint(value: Any) -> Optional[str]:
    from statushub.listen import EndpointError, parse

    try:
        parse(value)
    except EndpointError as e:
        return str(e)
    return None


def memory(value: Any) -> Optional[str]:
    try:
        resources.checkMemory(value)
    except resources.ResourceError as e:
        return str(e)
    return None


def cpus(value: Any) -> Optional[str]:
    try:
        resources.checkCpus(value)
    except resources.ResourceError as e:
        return str(e)
    return None


def name(value: Any) -> Optional[str]:
    if SAFE_NAME.fullmatch(value):
        return None
    return f"{value!r} is not a name: 1-32 of a-z, 0-9, '_', '-', starting with a letter or digit"


LOG_FORMATS = ("text", "json")

REDIS_SCHEMES = ("redis", "rediss", "unix")


def redisURL(value: Any) -> Optional[str]:
    if value == "":
        return None
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(value)
        parts.port  # a port that is not a number raises here
    except ValueError as e:
        return f"not a Redis URL ({e})"
    if parts.scheme not in REDIS_SCHEMES:
        return "must be redis://HOST:PORT/DB (or rediss://, or unix:///path)"
    if parts.scheme != "unix" and not parts.hostname:
        return "names no host: redis://HOST:PORT/DB"
    database = parts.path.strip("/")
    if parts.scheme != "unix" and database and not database.isdigit():
        return f"the database must be a number, got {database!r}"
    return None


def lease(value: Any) -> Optional[str]:
    # renewed every third of it, given up a fifth before its end: below a
    # second, a slow Redis command would end a healthy leadership
    return None if value >= 1 else "must be at least 1 second"


def logFormat(value: Any) -> Optional[str]:
    if value in LOG_FORMATS:
        return None
    return f"must be one of {', '.join(map(repr, LOG_FORMATS))}, got {value!r}"
