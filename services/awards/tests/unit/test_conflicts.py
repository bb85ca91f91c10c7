"""Conflicts of interest are derived from the events, never declared."""

from __future__ import annotations

import uuid

import pytest

from pearls_awards.domain.rounds import Juror, conflicts
from pearls_awards.domain.view import ParticipantView


def viljandi() -> ParticipantView:
    return ParticipantView(
        uuid.uuid4(),
        city_name="Viljandi",
        country="EE",
        mentors={str(uuid.uuid4()): {"email": "Kadri@Viljandi.example", "name": "Kadri"}},
    )


def juror(**fields: object) -> Juror:
    values: dict[str, object] = {
        "juror_id": uuid.uuid4(),
        "name": "Juror",
        "email": "juror@jury.example",
        "language": "en",
        "city_name": "Lund",
        "country": "SE",
    }
    values.update(fields)
    return Juror(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("fields", "reasons"),
    [
        ({}, []),
        ({"email": "kadri@viljandi.example"}, ["mentored"]),  # the mentor's address, any case
        ({"city_name": " VILJANDI ", "country": "EE"}, ["same_city"]),
        ({"city_name": "Viljandi", "country": None}, ["same_city"]),  # no country: city alone
        ({"city_name": "Viljandi", "country": "LV"}, []),  # a namesake elsewhere
        (
            {"email": "kadri@viljandi.example", "city_name": "Viljandi", "country": "EE"},
            ["mentored", "same_city"],
        ),
    ],
)
def test_conflicts(fields: dict[str, object], reasons: list[str]) -> None:
    assert [r for r, _ in conflicts(juror(**fields), viljandi())] == reasons


def test_a_juror_named_as_the_mentor_by_id_is_in_conflict() -> None:
    view = viljandi()
    [mentor_id] = view.mentors
    assert conflicts(juror(mentor_id=uuid.UUID(mentor_id)), view)[0][0] == "mentored"
