"""
How much of the host one node may take: its memory and CPU limits, how they
are written (C{"64m"}, C{0.5}), their defaults and maxima.

A leaf module (it imports nothing of statushub's): the configuration checks
C{[deploy] default_memory} with it, the topology a node's C{resources}, the
engines turn L{Resources} into the engine's limits.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB

#: the least memory a container may be given: the Docker engine refuses
#: less than 6 MiB
MIN_MEMORY = 6 * MIB
#: the finest CPU share the engine knows (a hundredth of a core)
MIN_CPUS = 0.01

_UNITS = {"": 1, "b": 1, "k": KIB, "m": MIB, "g": GIB}
# a number and a binary unit: 512m, 1.5g, 65536, 64k
_MEMORY = re.compile(r"([0-9]{1,12}(?:\.[0-9]{1,6})?)([kmgb]?)", re.IGNORECASE)

#: a node's limits when it gives none, and the most it may ask for
DEFAULT_MEMORY = "512m"
DEFAULT_CPUS = 1.0
MAX_MEMORY = "4g"
MAX_CPUS = 2.0

#: every container's log, at most: the engine keeps LOG_FILES files of
#: LOG_FILE_SIZE each, then drops the oldest
LOG_FILE_SIZE = "10m"
LOG_FILES = 3


class ResourceError(ValueError):
    """
    A memory size or CPU count cannot be used; C{str()} says why.
    """


def parseMemory(value: Any) -> int:
    """
    Bytes, from a whole number of bytes or a string: a number with an
    optional binary unit (C{k}, C{m}, C{g}; C{"64m"} is 64 MiB).

    @raise ResourceError: not a size.
    """
    if isinstance(value, bool):
        raise ResourceError("must be a size such as \"64m\" or a number of bytes, not a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        match = _MEMORY.fullmatch(value)
        if match is not None:
            number, unit = match.groups()
            return int(float(number) * _UNITS[unit.lower()])
        raise ResourceError(
            f"{value!r} is not a size: a number with an optional unit k, m or g "
            "(binary: 64m is 64 MiB), e.g. \"512m\""
        )
    if isinstance(value, float):
        raise ResourceError("must be a whole number of bytes or a string such as \"64m\"")
    raise ResourceError("must be a size such as \"64m\" or a number of bytes")


def checkMemory(value: Any) -> int:
    """
    L{parseMemory}, and at least L{MIN_MEMORY}.

    @raise ResourceError: not a size, or too small for the engine.
    """
    size = parseMemory(value)
    if size < MIN_MEMORY:
        raise ResourceError(f"must be at least {formatMemory(MIN_MEMORY)} (the engine's least)")
    return size


def formatMemory(size: int) -> str:
    """
    C{size} bytes as the shortest exact C{"512m"}-style text.
    """
    for unit, factor in (("g", GIB), ("m", MIB), ("k", KIB)):
        if size and size % factor == 0:
            return f"{size // factor}{unit}"
    return str(size)


def checkCpus(value: Any) -> float:
    """
    A CPU count as a float (C{0.5} is half a core).

    @raise ResourceError: not a finite number, or below L{MIN_CPUS}.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ResourceError("must be a number of CPUs, such as 0.5")
    if not math.isfinite(value) or value < MIN_CPUS:
        raise ResourceError(f"must be a number of CPUs of at least {MIN_CPUS}")
    return float(value)


@dataclass(frozen=True)
class Resources:
    """
    The limits one container runs under.

    @ivar memory: bytes of memory, swap included (a process that needs more
        is killed by the kernel's OOM killer).
    @ivar cpus: CPU time, in cores (C{0.5}: half of one core's time).
    """

    memory: int = 512 * MIB
    cpus: float = DEFAULT_CPUS

    @property
    def nanoCpus(self) -> int:
        """
        The CPU limit as the engine takes it: billionths of a core.
        """
        return round(self.cpus * 1e9)


@dataclass(frozen=True)
class ResourcePolicy:
    """
    What a node gets when it says nothing (C{default}), and the most it may
    ask for (C{maxMemory}, C{maxCpus}): C{[deploy]} in the configuration.
    """

    default: Resources = Resources()
    maxMemory: int = 4 * GIB
    maxCpus: float = MAX_CPUS

    def check(self) -> None:
        """
        @raise ResourceError: the defaults exceed the maxima.
        """
        if self.default.memory > self.maxMemory:
            raise ResourceError(
                f"default_memory ({formatMemory(self.default.memory)}) is above "
                f"max_memory ({formatMemory(self.maxMemory)})"
            )
        if self.default.cpus > self.maxCpus:
            raise ResourceError(
                f"default_cpus ({self.default.cpus:g}) is above max_cpus ({self.maxCpus:g})"
            )


#: no maxima: for a check made before the hub, which applies its own (the
#: command line's)
NO_MAXIMA = ResourcePolicy(maxMemory=2**63 - 1, maxCpus=math.inf)
