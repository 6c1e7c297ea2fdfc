"""Timestamps and ages as kube-apiserver prints them (apimachinery `duration.HumanDuration`)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

UNKNOWN = "<unknown>"

# RFC 3339 as Go's time.Parse(time.RFC3339, ...) accepts it: a full date-time, optional fraction,
# and "Z" or a numeric offset. Python's fromisoformat alone would also take date-only strings.
_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$"
)

_NS_PER_SECOND = 1_000_000_000
_NS_PER_MINUTE = 60 * _NS_PER_SECOND
_NS_PER_HOUR = 60 * _NS_PER_MINUTE


def parse_time(value: object) -> datetime | None:
    """Parse an RFC 3339 timestamp (metav1.Time or MicroTime); None when absent or malformed."""
    if not isinstance(value, str):
        return None
    m = _RFC3339.match(value)
    if m is None:
        return None
    year, month, day, hour, minute, second = (int(m.group(i)) for i in range(1, 7))
    fraction = (m.group(7) or "").ljust(6, "0")[:6]
    try:
        result = datetime(year, month, day, hour, minute, second, int(fraction), tzinfo=UTC)
    except ValueError:
        return None
    if m.group(9):
        offset = timedelta(hours=int(m.group(10)), minutes=int(m.group(11)))
        result = result - offset if m.group(9) == "+" else result + offset
    return result


def is_zero(ts: datetime) -> bool:
    """Go's zero time (0001-01-01T00:00:00Z) is how an unset metav1.Time serialises in some clients."""
    return ts == datetime(1, 1, 1, tzinfo=UTC)


def _trunc_div(a: int, b: int) -> int:
    """Integer division truncating toward zero, as Go's `/` on durations does."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def human_duration_ns(ns: int) -> str:
    """`duration.HumanDuration`: ~2-3 significant figures ("45s", "3m20s", "10m", "3h10m", "5d", "2y")."""
    seconds = _trunc_div(ns, _NS_PER_SECOND)
    # A little clock skew (under 2s) counts as "now"; more than that in the future is invalid.
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    if seconds < 60 * 2:
        return f"{seconds}s"
    minutes = ns // _NS_PER_MINUTE
    if minutes < 10:
        s = (ns // _NS_PER_SECOND) % 60
        return f"{minutes}m" if s == 0 else f"{minutes}m{s}s"
    if minutes < 60 * 3:
        return f"{minutes}m"
    hours = ns // _NS_PER_HOUR
    if hours < 8:
        m = minutes % 60
        return f"{hours}h" if m == 0 else f"{hours}h{m}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        h = hours % 24
        return f"{hours // 24}d" if h == 0 else f"{hours // 24}d{h}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        dy = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if dy == 0 else f"{hours // 24 // 365}y{dy}d"
    return f"{hours // 24 // 365}y"


def human_duration(delta: timedelta) -> str:
    ns = ((delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds) * 1000
    return human_duration_ns(ns)


def age(timestamp: object, now: datetime) -> str:
    """`translateTimestampSince`: the age of a timestamp, or <unknown> when it is missing."""
    ts = parse_time(timestamp)
    if ts is None or is_zero(ts):
        return UNKNOWN
    return human_duration(now - ts)


def created_at(timestamp: object) -> str:
    """The default table convertor's "Created At" cell: RFC 3339 in UTC, Go's zero time when unset."""
    ts = parse_time(timestamp)
    if ts is None:
        return "0001-01-01T00:00:00Z"
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
