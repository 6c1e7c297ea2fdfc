"""The mount table: which mount (point, filesystem type, source) holds a path, from /proc/self/mountinfo."""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

MOUNTINFO = Path("/proc/self/mountinfo")


class Mount(NamedTuple):
    point: Path
    fstype: str
    source: str


def unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo octal.
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and i + 4 <= len(field) and field[i + 1:i + 4].isdigit():
            out.append(chr(int(field[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def mount_of(path: str | os.PathLike[str]) -> Mount:
    """The mount holding `path` (the longest matching mount point); OSError when the table cannot be read."""
    target = os.path.realpath(path)
    best = Mount(Path("/"), "unknown", "")
    best_len = -1
    for line in MOUNTINFO.read_text().splitlines():
        left, _, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if len(fields) < 5 or len(tail) < 2:
            continue
        point = unescape(fields[4])
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        # Later lines are mounted over earlier ones at the same point, so >= keeps the topmost.
        if inside and len(point) >= best_len:
            best, best_len = Mount(Path(point), tail[0], unescape(tail[1])), len(point)
    return best
