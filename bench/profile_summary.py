"""
Summarise a py-spy "raw" profile (collapsed stacks: frames joined by ';',
then a space and the sample count): the functions with the most samples,
by self time and by inclusive time.

    .venv/bin/python bench/profile_summary.py bench/results/profile/hub-10000-1.txt [TOP]
"""

from __future__ import annotations

import sys
from collections import Counter


def summarise(path: str, top: int = 25) -> str:
    own: Counter = Counter()
    inclusive: Counter = Counter()
    total = 0
    with open(path) as raw:
        for line in raw:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            if not stack:
                continue
            samples = int(count)
            total += samples
            frames = stack.split(";")
            own[frames[-1]] += samples
            for frame in set(frames):
                inclusive[frame] += samples
    lines = [f"{path}: {total} samples"]
    for title, counter in (("self", own), ("inclusive", inclusive)):
        lines.append(f"-- by {title} time")
        for frame, samples in counter.most_common(top):
            lines.append(f"{100 * samples / max(total, 1):5.1f}%  {frame}")
    return "\n".join(lines)


if __name__ == "__main__":
    print(summarise(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 25))
