"""Mentor matching: who mentors whom, and why. A pure domain rule, no I/O.

Hard constraints (the programme's rules) decide whether a pair is possible at
all: the mentor has a free slot, both share a working language, and a pearl
city never mentors its own city. Preferences decide which possible pair is
best, in points whose weights come from settings:

* ``theme_overlap``: the share of the participant's themes the mentor covers;
* ``cross_border``: the mentor is from another country (cross-border learning);
* ``balanced_load``: the slot taken is an early one, so work spreads over the
  mentor pool instead of filling the first mentors found.

The whole cohort is matched at once as one assignment problem over mentor
*slots*, so the result is optimal rather than greedy: first as many
participants as possible get a mentor, then the total score is as high as
possible. Every match carries an :class:`Explanation` (points per criterion,
constraints met, one English sentence) and every participant left over an
:class:`Unmatched` with the reasons, so coordinators can see why and act.
"""

from __future__ import annotations

import itertools
import math
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import numpy.typing as npt
from scipy.optimize import linear_sum_assignment

CRITERIA: tuple[str, ...] = ("theme_overlap", "cross_border", "balanced_load")
CONSTRAINTS: tuple[str, ...] = ("capacity", "shared_language", "not_own_city")
UNMATCHED_REASONS: tuple[str, ...] = (
    "no_active_mentor",
    "no_shared_language",
    "only_own_city",
    "all_full",
)

# Explanation points are rounded so events and screens show clean numbers; the
# score is the sum of the rounded points, so the two always agree exactly.
_DIGITS = 6

_LANGUAGE_NAMES = {
    "da": "Danish",
    "de": "German",
    "en": "English",
    "et": "Estonian",
    "fi": "Finnish",
    "is": "Icelandic",
    "lt": "Lithuanian",
    "lv": "Latvian",
    "nb": "Norwegian Bokmål",
    "nn": "Norwegian Nynorsk",
    "no": "Norwegian",
    "pl": "Polish",
    "sv": "Swedish",
}

_BROKEN = {
    "capacity": "over the mentor's capacity",
    "shared_language": "no shared language",
    "not_own_city": "the mentor is its own city",
}

_Bools = npt.NDArray[np.bool_]
_Floats = npt.NDArray[np.float64]
_Ints = npt.NDArray[np.intp]
_T = TypeVar("_T", "Participant", "Mentor")


@dataclass(frozen=True, slots=True)
class Weights:
    """Points per preference (from settings); 0 switches a preference off.

    ``theme_overlap`` is earned in full when the mentor covers all of the
    participant's themes, pro rata otherwise; ``cross_border`` when the countries
    differ; ``balanced_load`` times ``1 - k / capacity`` for the mentor's slot
    ``k`` (0-based), so the first slot of an idle mentor earns the most.
    """

    theme_overlap: float = 3.0
    cross_border: float = 1.0
    balanced_load: float = 1.0

    def __post_init__(self) -> None:
        for name in CRITERIA:
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"weight {name} must be a finite number >= 0, got {value!r}")

    @property
    def best_pair(self) -> float:
        """The most points one match can earn."""
        return self.theme_overlap + self.cross_border + self.balanced_load


@dataclass(frozen=True, slots=True)
class Participant:
    """What matching needs to know about an accepted participant."""

    id: uuid.UUID
    country: str
    city_key: str  # normalised identity key of the city
    languages: frozenset[str]
    themes: frozenset[str]


@dataclass(frozen=True, slots=True)
class Mentor:
    """What matching needs to know about an active mentor.

    ``load`` counts the participants already assigned (settled); they keep
    their slots ``0 .. load-1`` and a new participant takes slot ``load`` or
    later. A load above the capacity (the capacity was lowered) means no free slot.
    """

    id: uuid.UUID
    country: str
    city_key: str | None  # the pearl city's own city; None for a national expert
    languages: frozenset[str]
    themes: frozenset[str]
    capacity: int
    load: int = 0

    def __post_init__(self) -> None:
        if self.capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {self.capacity}")
        if self.load < 0:
            raise ValueError(f"load must be >= 0, got {self.load}")


@dataclass(frozen=True, slots=True)
class Explanation:
    """Why this mentor: points per criterion (adding up to ``score``) and the rules met."""

    score: float
    criteria: dict[str, float]  # keys: CRITERIA, in that order
    shared_languages: tuple[str, ...]
    shared_themes: tuple[str, ...]
    cross_border: bool
    constraints_met: tuple[str, ...]  # the subset of CONSTRAINTS the pair meets
    summary: str


@dataclass(frozen=True, slots=True)
class Match:
    """A proposed match; ``explain(p, m, weights, slot)`` gives back its explanation.

    ``slot`` is counted from the mentor's input ``load`` (0 = the first free
    slot), like the ``slot`` argument of :func:`explain`.
    """

    participant_id: uuid.UUID
    mentor_id: uuid.UUID
    explanation: Explanation
    slot: int = 0


@dataclass(frozen=True, slots=True)
class Unmatched:
    """A participant no mentor can take now, with the reasons (UNMATCHED_REASONS)."""

    participant_id: uuid.UUID
    reasons: tuple[str, ...]
    summary: str


@dataclass(frozen=True, slots=True)
class MatchResult:
    """Matches and unmatched participants, each in participant-id order."""

    matches: tuple[Match, ...]
    unmatched: tuple[Unmatched, ...]
    total_score: float  # sum of the matches' scores


def _own_city(p: Participant, m: Mentor) -> bool:
    # City keys are only unique within a country ("Valga" may exist twice).
    return m.city_key is not None and m.city_key == p.city_key and m.country == p.country


def _slot_share(position: int, capacity: int) -> float:
    # Beyond the capacity (an override) a slot earns nothing rather than negative points.
    return max(0.0, 1.0 - position / capacity)


def violations(p: Participant, m: Mentor, *, extra_load: int = 0) -> tuple[str, ...]:
    """The hard constraints the pair breaks, in CONSTRAINTS order (empty: the pair is allowed).

    ``capacity``: the mentor has no free slot (``load + extra_load >= capacity``);
    ``shared_language``: no common working language; ``not_own_city``: the
    mentor is the participant's own city (same city key and country).
    """
    broken: list[str] = []
    if m.load + extra_load >= m.capacity:
        broken.append("capacity")
    if not p.languages & m.languages:
        broken.append("shared_language")
    if _own_city(p, m):
        broken.append("not_own_city")
    return tuple(broken)


def _language_list(codes: Iterable[str]) -> str:
    names = [_LANGUAGE_NAMES.get(c, c) for c in codes]
    if len(names) <= 1:
        return "".join(names)
    return f"{', '.join(names[:-1])} and {names[-1]}"


def explain(p: Participant, m: Mentor, weights: Weights, slot: int = 0) -> Explanation:
    """Score and explanation of ``p`` taking mentor ``m``'s free slot number ``slot``.

    ``slot`` is 0-based and counted from ``m.load``: 0 is the next free slot,
    the absolute slot index is ``m.load + slot`` (shown 1-based in the summary).
    Used for the proposed matches and for previewing a coordinator's override;
    an override may break hard constraints, which then are missing from
    ``constraints_met`` and named in the summary.
    """
    if slot < 0:
        raise ValueError(f"slot must be >= 0, got {slot}")
    position = m.load + slot
    languages = tuple(sorted(p.languages & m.languages))
    themes = tuple(sorted(p.themes & m.themes))
    cross = p.country != m.country
    share = len(themes) / len(p.themes) if p.themes else 0.0
    points = (
        weights.theme_overlap * share,
        weights.cross_border if cross else 0.0,
        weights.balanced_load * _slot_share(position, m.capacity),
    )
    criteria = {name: round(value, _DIGITS) for name, value in zip(CRITERIA, points, strict=True)}
    broken = violations(p, m, extra_load=slot)

    text = f"Shares {_language_list(languages)}" if languages else "Shares no working language"
    wanted = f"{len(p.themes)} theme{'s' if len(p.themes) != 1 else ''}"
    if themes:
        text += f" and {len(themes)} of {wanted} ({', '.join(themes)})"
    elif p.themes:
        text += f" {'but' if languages else 'and'} none of its {wanted}"
    if cross:
        text += f", mentors across the border ({m.country}→{p.country})"
    else:
        text += f", mentors within {p.country}"
    text += f", slot {position + 1} of {m.capacity}"
    if broken:
        text += f"; against the rules: {', '.join(_BROKEN[b] for b in broken)}"
    return Explanation(
        score=sum(criteria.values()),
        criteria=criteria,
        shared_languages=languages,
        shared_themes=themes,
        cross_border=cross,
        constraints_met=tuple(c for c in CONSTRAINTS if c not in broken),
        summary=text + ".",
    )


def _vocabulary(*groups: Iterable[frozenset[str]]) -> dict[str, int]:
    """Column index of every item, in sorted order so the matrices never depend on input order."""
    items: set[str] = set()
    for group in groups:
        for group_items in group:
            items |= group_items
    return {item: i for i, item in enumerate(sorted(items))}


def _incidence(rows: Sequence[frozenset[str]], vocabulary: dict[str, int]) -> _Floats:
    """0/1 matrix: row i has a 1 in the column of each of its items."""
    out = np.zeros((len(rows), max(len(vocabulary), 1)), dtype=np.float64)
    r = [i for i, items in enumerate(rows) for _ in items]
    c = [vocabulary[item] for items in rows for item in items]
    out[r, c] = 1.0
    return out


def _codes(values: Sequence[object], table: dict[object, int]) -> _Ints:
    return np.fromiter((table.setdefault(v, len(table)) for v in values), np.intp, len(values))


def _pairs(
    ps: Sequence[Participant], ms: Sequence[Mentor], weights: Weights
) -> tuple[_Bools, _Bools, _Floats]:
    """Per (participant, mentor): shares a language, own city, score without the slot term.

    Vectorised so a cohort of thousands costs a few matrix products: sets become
    0/1 incidence matrices and intersections become their products.
    """
    p_langs, m_langs = [p.languages for p in ps], [m.languages for m in ms]
    langs = _vocabulary(p_langs, m_langs)
    shared = (_incidence(p_langs, langs) @ _incidence(m_langs, langs).T) > 0

    p_themes, m_themes = [p.themes for p in ps], [m.themes for m in ms]
    themes = _vocabulary(p_themes, m_themes)
    covered = _incidence(p_themes, themes) @ _incidence(m_themes, themes).T
    wanted = np.array([len(p.themes) for p in ps], dtype=np.float64)[:, None]
    share = np.divide(covered, wanted, out=np.zeros_like(covered), where=wanted > 0)

    countries: dict[object, int] = {}
    p_country = _codes([p.country for p in ps], countries)
    m_country = _codes([m.country for m in ms], countries)
    cross = p_country[:, None] != m_country[None, :]

    cities: dict[object, int] = {None: -1}
    p_city = _codes([(p.country, p.city_key) for p in ps], cities)
    m_city = _codes([None if m.city_key is None else (m.country, m.city_key) for m in ms], cities)
    own = (p_city[:, None] == m_city[None, :]) & (m_city[None, :] >= 0)

    score = weights.theme_overlap * share + np.where(cross, weights.cross_border, 0.0)
    return shared, own, score


def _unmatched(p: Participant, shared: _Bools, own: _Bools) -> Unmatched:
    """Why no mentor was found, from this participant's row of the pair matrices."""
    spoken = _language_list(sorted(p.languages)) or "no language"
    if not shared.any():
        reason = "no_shared_language"
        summary = f"No mentor works in its languages ({spoken})."
    elif not (shared & ~own).any():
        reason = "only_own_city"
        summary = f"Every mentor working in its languages ({spoken}) is its own city."
    else:
        reason = "all_full"
        n = int((shared & ~own).sum())
        who = "The one mentor" if n == 1 else f"All {n} mentors"
        summary = (
            f"{who} working in its languages ({spoken}) and not from its own city"
            f" {'has' if n == 1 else 'have'} no free slot left for it."
        )
    return Unmatched(participant_id=p.id, reasons=(reason,), summary=summary)


def _sorted_unique(items: Sequence[_T], what: str) -> list[_T]:
    out = sorted(items, key=lambda o: o.id)
    for a, b in itertools.pairwise(out):
        if a.id == b.id:
            raise ValueError(f"duplicate {what} id {a.id}")
    return out


def match(
    participants: Sequence[Participant], mentors: Sequence[Mentor], weights: Weights
) -> MatchResult:
    """Optimal assignment of the whole cohort at once.

    An assignment problem over mentor slots: one column per free slot ``k`` of
    every mentor (``k = load .. capacity-1``), worth the pair's score plus
    ``balanced_load * (1 - k / capacity)``; infeasible pairs are worth 0 and
    every feasible pair gets a constant ``BIG`` on top, larger than any
    possible difference in total score. Maximising therefore matches as many
    participants as the hard constraints allow first, and maximises the total
    score second. Inputs are sorted by id, so ties break the same way whatever
    the input order. Within one mentor, slots go to its participants in id order
    (the total does not depend on it).

    Newcomers are matched by calling this with only the newcomers and the
    mentors carrying their current ``load``: settled pairs are never inputs,
    so they never move, and only the remaining capacity is handed out.
    """
    ps = _sorted_unique(participants, "participant")
    ms = _sorted_unique(mentors, "mentor")
    if not ps:
        return MatchResult(matches=(), unmatched=(), total_score=0.0)
    if not ms:
        return MatchResult(
            matches=(),
            unmatched=tuple(
                Unmatched(p.id, ("no_active_mentor",), "No active mentor is registered.")
                for p in ps
            ),
            total_score=0.0,
        )

    shared, own, score = _pairs(ps, ms, weights)
    feasible = shared & ~own

    # Columns: the free slots of every mentor; more than len(ps) per mentor can never be used.
    free = np.array([max(0, min(m.capacity - m.load, len(ps))) for m in ms], dtype=np.intp)
    col_mentor = np.repeat(np.arange(len(ms), dtype=np.intp), free)
    starts = np.cumsum(free) - free
    col_slot = np.arange(len(col_mentor), dtype=np.intp) - np.repeat(starts, free)
    load = np.array([m.load for m in ms], dtype=np.float64)
    capacity = np.array([m.capacity for m in ms], dtype=np.float64)
    col_bonus = weights.balanced_load * (1.0 - (load[col_mentor] + col_slot) / capacity[col_mentor])

    # One more match (+BIG) outweighs any score difference (at most best_pair each).
    big = weights.best_pair * len(ps) + 1.0
    value = np.where(
        feasible[:, col_mentor], (score + big)[:, col_mentor] + col_bonus[None, :], 0.0
    )
    rows, cols = linear_sum_assignment(value, maximize=True)

    chosen: dict[int, int] = {}
    for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
        if feasible[r, col_mentor[c]]:  # an infeasible pair is a place-holder, not a match
            chosen[r] = int(col_mentor[c])

    matches: list[Match] = []
    unmatched: list[Unmatched] = []
    taken = [0] * len(ms)
    for i, p in enumerate(ps):
        j = chosen.get(i)
        if j is None:
            unmatched.append(_unmatched(p, shared[i], own[i]))
            continue
        m = ms[j]
        slot = taken[j]
        taken[j] += 1
        matches.append(Match(p.id, m.id, explain(p, m, weights, slot), slot))
    return MatchResult(
        matches=tuple(matches),
        unmatched=tuple(unmatched),
        total_score=math.fsum(x.explanation.score for x in matches),
    )
