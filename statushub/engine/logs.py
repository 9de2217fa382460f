"""
Lines from the engine's log frames, and resource samples from its stats.

Both are pure: the Docker and Swarm engines read the bytes (blocking, off
the reactor thread) and hand them here.

The engine sends a container's log as frames, each C{(stream, payload)};
with timestamps asked for, each payload is C{TIME SP TEXT}.  A line the
engine had to split (Docker cuts a line at 16 KiB) comes as several frames
whose payloads end without a newline: they are joined, and the line keeps
the time of its first part.  However long it grows, a line is kept to
L{MAX_LINE_CHARACTERS}; bytes that are not UTF-8 are replaced, never fatal.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

from statushub.engine import MAX_LINE_CHARACTERS, LogLine, ResourceSample

#: the engine's stream numbers (0 would be stdin, never sent)
STREAMS = {1: "stdout", 2: "stderr"}

# a Go zero time: what the engine says when a container is not running
_ZERO_TIME = "0001-01-01"


class LineAssembler:
    """
    Turns one log's frames into L{LogLine}s, one stream's partial line at a
    time.

    @param maxCharacters: longer lines are cut to this many characters.
    """

    def __init__(self, maxCharacters: int = MAX_LINE_CHARACTERS) -> None:
        self.maxCharacters = maxCharacters
        # UTF-8 takes at most 4 bytes a character: enough bytes for the
        # characters kept, and no more, whatever the line's length
        self._maxBytes = 4 * maxCharacters + 4
        # stream -> (time of the line's first part, its bytes so far)
        self._partial: dict[str, tuple[str, bytearray]] = {}

    def feed(self, streamId: int, payload: bytes) -> list[LogLine]:
        """
        The lines that C{payload}, one frame of stream C{streamId}, ends.
        """
        stream = STREAMS.get(streamId, "stdout")
        time, separator, text = payload.partition(b" ")
        if not separator or not _looksLikeTime(time):
            # no timestamp (an engine that sends none): the text as it is
            time, text = b"", payload
        stamp = time.decode("ascii", "replace")
        lines = []
        pieces = text.split(b"\n")
        for index, piece in enumerate(pieces):
            last = index == len(pieces) - 1
            if last and not piece:
                break  # the payload ended with its newline
            started, kept = self._partial.pop(stream, (stamp, bytearray()))
            room = self._maxBytes - len(kept)
            if room > 0:
                kept += piece[:room]
            if last:
                self._partial[stream] = (started, kept)  # to be continued
            else:
                lines.append(self._line(started, stream, kept))
        return lines

    def flush(self) -> list[LogLine]:
        """
        The partial lines left when the log ends, as lines.
        """
        lines = [self._line(time, stream, kept) for stream, (time, kept) in self._partial.items()]
        self._partial.clear()
        lines.sort(key=lambda line: line.time)
        return lines

    def _line(self, time: str, stream: str, kept: bytes) -> LogLine:
        text = bytes(kept).decode("utf-8", "replace")
        return LogLine(time, stream, text[: self.maxCharacters])


def _looksLikeTime(word: bytes) -> bool:
    # 2026-11-26T08:00:00.123456789Z: cheap, and enough to tell it from text
    return len(word) >= 20 and word[4:5] == b"-" and word[10:11] == b"T"


def assemble(frames: Any, maxCharacters: int = MAX_LINE_CHARACTERS) -> list[LogLine]:
    """
    Every line of a finished log: C{frames} yields C{(stream, payload)}.
    """
    assembler = LineAssembler(maxCharacters)
    lines: list[LogLine] = []
    for streamId, payload in frames:
        lines.extend(assembler.feed(streamId, payload))
    lines.extend(assembler.flush())
    return lines


class SampleReader:
    """
    Resource samples from the engine's stats readings (C{GET
    /containers/ID/stats}), one container's, in order.

    CPU is a difference: the engine gives the previous reading with each one
    except the first of a stream, so a stream's first reading is kept for
    the second to be compared with.
    """

    def __init__(self) -> None:
        self._previous: Optional[tuple[int, int]] = None

    def read(self, raw: Mapping[str, Any]) -> tuple[bool, Optional[ResourceSample]]:
        """
        @return: C{(running, sample)}: C{running} is false once the engine
            says the container is not running (its stream has nothing more
            to tell); C{sample} is L{None} for a reading that cannot give a
            CPU figure yet.
        """
        time = str(raw.get("read") or "")
        if not time or time.startswith(_ZERO_TIME):
            return False, None
        cpuStats = raw.get("cpu_stats") or {}
        total = int((cpuStats.get("cpu_usage") or {}).get("total_usage") or 0)
        system = int(cpuStats.get("system_cpu_usage") or 0)
        before = self._previous
        pre = raw.get("precpu_stats") or {}
        if pre.get("system_cpu_usage"):
            before = (int((pre.get("cpu_usage") or {}).get("total_usage") or 0),
                      int(pre["system_cpu_usage"]))
        self._previous = (total, system)
        if before is None or system <= before[1] or total < before[0]:
            return True, None
        cores = cpuStats.get("online_cpus") or len(
            (cpuStats.get("cpu_usage") or {}).get("percpu_usage") or ()
        ) or 1
        cpu = (total - before[0]) / (system - before[1]) * cores * 100.0
        return True, ResourceSample(
            cpu=round(cpu, 2),
            memoryBytes=memoryInUse(raw.get("memory_stats") or {}),
            memoryLimitBytes=int((raw.get("memory_stats") or {}).get("limit") or 0),
            time=time,
        )


def memoryInUse(memory: Mapping[str, Any]) -> int:
    """
    Memory used, without the inactive page cache, as C{docker stats}
    counts it (cgroup v1 says C{total_inactive_file}, v2 C{inactive_file}).
    """
    usage = int(memory.get("usage") or 0)
    stats = memory.get("stats") or {}
    inactive = stats.get("total_inactive_file", stats.get("inactive_file", 0)) or 0
    return usage - int(inactive) if int(inactive) < usage else usage
