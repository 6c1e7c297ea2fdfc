"""Accept-header negotiation: the media ranges a client asks for, most preferred first."""

from __future__ import annotations

from dataclasses import dataclass, field

JSON_RANGES = ("application/json", "application/*", "*/*")


@dataclass(frozen=True)
class MediaRange:
    media: str
    q: float = 1.0
    #: Parameters other than q, lower-cased names (`as`, `g`, `v` select Tables and discovery documents).
    params: dict[str, str] = field(default_factory=dict)

    @property
    def is_json(self) -> bool:
        return self.media in JSON_RANGES


def media_ranges(accept: str | None) -> list[MediaRange]:
    """Ranges with q > 0, highest q first; the client's own order breaks ties (kubectl relies on that order)."""
    ranges: list[tuple[float, int, MediaRange]] = []
    for index, clause in enumerate((accept or "").split(",")):
        parts = [p.strip() for p in clause.split(";")]
        media = parts[0].lower()
        if not media:
            continue
        params: dict[str, str] = {}
        for p in parts[1:]:
            key, _, value = p.partition("=")
            params[key.strip().lower()] = value.strip().strip('"')
        try:
            q = float(params.pop("q", "1"))
        except ValueError:
            q = 1.0
        if q > 0:
            ranges.append((-q, index, MediaRange(media, q, params)))
    ranges.sort(key=lambda r: (r[0], r[1]))
    return [r[2] for r in ranges]
