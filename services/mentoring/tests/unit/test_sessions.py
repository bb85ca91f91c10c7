"""Co-learning groups by shared themes, and wall-clock times in a session's zone."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pearls_mentoring.domain.sessions import Member, local_to_aware, propose_groups
from pearls_shared.errors import Invalid

THEMES = ("culture", "youth", "ecology", "digital")


def member(city: str, themes: tuple[str, ...], languages: tuple[str, ...] = ("en",)) -> Member:
    return Member(uuid.uuid4(), city, frozenset(themes), frozenset(languages))


def test_members_sharing_the_most_common_theme_are_grouped_first() -> None:
    a = member("Kuldīga", ("culture", "youth"), ("lv", "en"))
    b = member("Viljandi", ("culture",), ("et", "en"))
    c = member("Ystad", ("youth",), ("sv",))
    d = member("Husum", ("ecology",), ("de",))
    groups = propose_groups([a, b, c, d])
    assert [(g.theme, set(g.participant_ids)) for g in groups] == [
        ("culture", {a.participant_id, b.participant_id})
    ]
    assert groups[0].language == "en"


def test_large_themes_split_evenly() -> None:
    members = [member(f"City {i:02}", ("culture",)) for i in range(10)]
    sizes = [len(g.participant_ids) for g in propose_groups(members, max_size=4)]
    assert sizes == [4, 3, 3]


@given(
    st.lists(
        st.tuples(
            st.sets(st.sampled_from(THEMES), min_size=1),
            st.sets(st.sampled_from(("en", "de", "lv")), min_size=1),
        ),
        max_size=30,
    ),
    st.integers(2, 4),
    st.integers(0, 4),
)
def test_groups_share_their_theme_and_nobody_is_in_two(
    specs: list[tuple[set[str], set[str]]], min_size: int, extra: int
) -> None:
    members = [member(f"C{i}", tuple(t), tuple(lang)) for i, (t, lang) in enumerate(specs)]
    by_id = {m.participant_id: m for m in members}
    groups = propose_groups(members, min_size=min_size, max_size=min_size + extra)
    seen: list[uuid.UUID] = [pid for g in groups for pid in g.participant_ids]
    assert len(seen) == len(set(seen))
    for g in groups:
        assert min_size <= len(g.participant_ids) <= min_size + extra
        assert all(g.theme in by_id[p].themes for p in g.participant_ids)
        if g.language is not None:
            assert all(g.language in by_id[p].languages for p in g.participant_ids)


def test_wall_clock_time_in_the_sessions_zone() -> None:
    aware = local_to_aware(datetime(2026, 6, 10, 10, 0), "Europe/Riga", "starts_at")
    assert aware.astimezone(UTC) == datetime(2026, 6, 10, 7, 0, tzinfo=UTC)
    explicit = datetime(2026, 6, 10, 10, 0, tzinfo=UTC)
    assert local_to_aware(explicit, "Europe/Riga", "starts_at") == explicit


def test_unknown_zones_and_skipped_times_are_refused_naming_the_field() -> None:
    with pytest.raises(Invalid) as bad_zone:
        local_to_aware(datetime(2026, 6, 10, 10, 0), "Baltic/Atlantis", "starts_at")
    assert bad_zone.value.loc == ("body", "time_zone")
    with pytest.raises(Invalid) as gap:  # clocks jump from 03:00 to 04:00 in Riga
        local_to_aware(datetime(2026, 3, 29, 3, 30), "Europe/Riga", "starts_at")
    assert gap.value.loc == ("body", "starts_at")
