"""Reviewers, conflicts of interest and spreading work over the reviewer pool."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from pearls_applications.domain.model import Application, Call, normalise_city


@dataclass(frozen=True, slots=True)
class Reviewer:
    id: str
    name: str
    city_name: str
    country: str


def conflict_of_interest(reviewer: Reviewer, app: Application, call: Call) -> str | None:
    """Why ``reviewer`` must not review ``app``, or None when there is no conflict."""
    if reviewer.country == app.country and normalise_city(reviewer.city_name) == app.city_key:
        return "same_city"
    if call.conflict_same_country and reviewer.country == app.country:
        return "same_country"
    return None


@dataclass(frozen=True, slots=True)
class Spread:
    assigned: list[tuple[uuid.UUID, str]]
    refused: list[tuple[uuid.UUID, str, str]]
    short: dict[uuid.UUID, int]


def spread(
    call: Call,
    applications: Iterable[Application],
    reviewers: Iterable[Reviewer],
    existing: Mapping[uuid.UUID, set[str]],
    load: Mapping[str, int],
) -> Spread:
    """Give every application ``reviews_required`` reviewers, least-loaded first.

    ``existing`` holds who already reviews what, ``load`` how many applications
    each reviewer has. Conflicted reviewers are skipped and reported; an
    application left short (too few eligible reviewers) is reported too.
    """
    pool = sorted(reviewers, key=lambda r: r.id)
    counts = {r.id: load.get(r.id, 0) for r in pool}
    assigned: list[tuple[uuid.UUID, str]] = []
    refused: list[tuple[uuid.UUID, str, str]] = []
    short: dict[uuid.UUID, int] = {}
    for app in sorted(applications, key=lambda a: (a.submitted_at, str(a.id))):
        have = set(existing.get(app.id, set()))
        need = call.reviews_required - len(have)
        if need <= 0:
            continue
        candidates = []
        for reviewer in pool:
            if reviewer.id in have:
                continue
            reason = conflict_of_interest(reviewer, app, call)
            if reason:
                refused.append((app.id, reviewer.id, reason))
            else:
                candidates.append(reviewer)
        candidates.sort(key=lambda r: (counts[r.id], r.id))
        for reviewer in candidates[:need]:
            assigned.append((app.id, reviewer.id))
            counts[reviewer.id] += 1
        if len(candidates) < need:
            short[app.id] = need - len(candidates)
    return Spread(assigned, refused, short)
