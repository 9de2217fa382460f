"""
The pure parts of reading logs and resource use: frames to lines (joined,
cut, replaced), stats readings to samples.
"""

from __future__ import annotations

from hypothesis import given, strategies as st

from statushub.engine import MAX_LINE_CHARACTERS, LogLine, ResourceSample
from statushub.engine.logs import LineAssembler, SampleReader, assemble, memoryInUse

T1 = b"2026-11-26T08:00:00.000000001Z"
T2 = b"2026-11-26T08:00:00.000000002Z"


def test_linesOfFrames() -> None:
    assert assemble([(1, T1 + b" hello\n"), (2, T2 + b" oops\n")]) == [
        LogLine(T1.decode(), "stdout", "hello"),
        LogLine(T2.decode(), "stderr", "oops"),
    ]


def test_splitLineJoined() -> None:
    """
    A line the engine split comes as frames without a newline: one line,
    with the time of its first part; each stream keeps its own.
    """
    assembler = LineAssembler()
    assert assembler.feed(1, T1 + b" first ") == []
    assert assembler.feed(2, T1 + b" err\n") == [LogLine(T1.decode(), "stderr", "err")]
    assert assembler.feed(1, T2 + b" half\n") == [LogLine(T1.decode(), "stdout", "first half")]


def test_severalLinesInAFrame() -> None:
    lines = assemble([(1, T1 + b" a\nb\n\nc")])
    assert [line.text for line in lines] == ["a", "b", "", "c"]


def test_cutAndReplaced() -> None:
    lines = assemble([(1, T1 + b" " + b"y" * 50_000 + b"\n"), (1, T1 + b" \xff\xfe ok\n")])
    assert lines[0].text == "y" * MAX_LINE_CHARACTERS
    assert lines[1].text == "\ufffd\ufffd ok"


def test_withoutTimestamps() -> None:
    assert assemble([(1, b"plain text\n")]) == [LogLine("", "stdout", "plain text")]


@given(st.lists(st.tuples(st.sampled_from([1, 2]), st.binary(max_size=20_000)), max_size=8))
def test_anyBytes(frames) -> None:
    """
    Whatever the engine sends, lines come out, none longer than the cut.
    """
    for line in assemble(frames, maxCharacters=100):
        assert len(line.text) <= 100
        assert line.stream in ("stdout", "stderr")


def reading(total: int, system: int, pre: tuple[int, int] = (0, 0), usage: int = 10_000,
            inactive: int = 1_000, limit: int = 64 * 2**20, cpus: int = 2) -> dict:
    return {
        "read": "2026-11-26T08:00:01.5Z",
        "cpu_stats": {"cpu_usage": {"total_usage": total}, "system_cpu_usage": system,
                      "online_cpus": cpus},
        "precpu_stats": {"cpu_usage": {"total_usage": pre[0]}, "system_cpu_usage": pre[1]}
        if pre[1] else {},
        "memory_stats": {"usage": usage, "limit": limit,
                         "stats": {"total_inactive_file": inactive}},
    }


def test_samples() -> None:
    """
    CPU in percent of one core: the container's time over the host's, times
    the host's cores; the first reading of a stream only starts the count.
    Memory without the inactive page cache.
    """
    reader = SampleReader()
    assert reader.read(reading(1_000, 10_000)) == (True, None)
    # one busy core of two: half the host's time
    running, sample = reader.read(reading(1_000 + 500, 10_000 + 1_000))
    assert running
    assert sample == ResourceSample(100.0, 9_000, 64 * 2**20, "2026-11-26T08:00:01.5Z")
    # the engine's own previous reading wins when it gives one
    assert reader.read(reading(3_000, 20_000, pre=(2_900, 19_000)))[1].cpu == 20.0


def test_stoppedContainer() -> None:
    assert SampleReader().read({"read": "0001-01-01T00:00:00Z"}) == (False, None)


def test_memoryInUse() -> None:
    assert memoryInUse({"usage": 100, "stats": {"inactive_file": 30}}) == 70  # cgroup v2
    assert memoryInUse({"usage": 100, "stats": {"total_inactive_file": 300}}) == 100
    assert memoryInUse({}) == 0
