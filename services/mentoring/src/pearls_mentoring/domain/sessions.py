"""Co-learning sessions: proposing groups by shared themes, and local start times.

The service proposes, a person confirms: ``propose_groups`` suggests who could
learn together; a coordinator or mentor then schedules a session with the
participants they choose.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pearls_shared.errors import Invalid


@dataclass(frozen=True, slots=True)
class Member:
    participant_id: uuid.UUID
    city_name: str
    themes: frozenset[str]
    languages: frozenset[str]


@dataclass(frozen=True, slots=True)
class Group:
    theme: str
    language: str | None  # a working language every member shares, if any
    participant_ids: tuple[uuid.UUID, ...]
    why: str


def propose_groups(
    members: Sequence[Member], *, min_size: int = 2, max_size: int = 8
) -> list[Group]:
    """Groups of participants sharing a theme, each participant in one group at most.

    The most common themes are grouped first, so that the largest communities
    of practice form; a theme with fewer than ``min_size`` ungrouped members
    yields no group. Deterministic: members are taken in city-name order.
    """
    if min_size < 2 or max_size < min_size:
        raise ValueError("need 2 <= min_size <= max_size")
    ordered = sorted(members, key=lambda m: (m.city_name.casefold(), m.participant_id))
    popularity = Counter(t for m in ordered for t in m.themes)
    grouped: set[uuid.UUID] = set()
    groups: list[Group] = []
    for theme, _ in sorted(popularity.items(), key=lambda kv: (-kv[1], kv[0])):
        free = [m for m in ordered if theme in m.themes and m.participant_id not in grouped]
        while len(free) >= min_size:
            # Split evenly rather than leaving a runt group behind.
            chunks = -(-len(free) // max_size)
            size = -(-len(free) // chunks)
            chunk, free = free[:size], free[size:]
            if len(chunk) < min_size:
                break
            grouped.update(m.participant_id for m in chunk)
            groups.append(_group(theme, chunk))
    return groups


def _group(theme: str, chunk: Sequence[Member]) -> Group:
    common = frozenset.intersection(*(m.languages for m in chunk))
    language = "en" if "en" in common else (min(common) if common else None)
    cities = ", ".join(m.city_name for m in chunk)
    tongue = f"all work in {language}" if language else "no language shared by all"
    return Group(
        theme=theme,
        language=language,
        participant_ids=tuple(m.participant_id for m in chunk),
        why=f"{cities} all work on {theme}; {tongue}",
    )


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise Invalid(
            ("body", "time_zone"), "iana_time_zone", f"{name!r} is not an IANA time zone"
        ) from None


def local_to_aware(moment: datetime, time_zone: str, field: str) -> datetime:
    """A wall-clock time in the session's zone (or an explicit offset) as an aware time."""
    tz = zone(time_zone)
    if moment.tzinfo is not None:
        return moment
    aware = moment.replace(tzinfo=tz)
    # A wall-clock time skipped by a daylight-saving change does not exist there.
    if aware.astimezone(UTC).astimezone(tz).replace(tzinfo=None) != moment:
        raise Invalid(
            ("body", field), "existing_local_time", f"{moment} does not exist in {time_zone}"
        )
    return aware
