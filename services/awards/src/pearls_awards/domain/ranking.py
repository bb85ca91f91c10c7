"""The ranking and granting rule of the BSR Cultural Pearls Award. A pure domain rule, no I/O.

The rule, as the programme states it and as :func:`rank` applies it:

1. **Score.** A juror's weighted score of a nominee is
   ``Σ weight·(value - scale_min)/(scale_max - scale_min) / Σ weight * 100``,
   on 0-100. Only complete score sets count: a juror who left any criterion of
   a nominee unscored contributes nothing for that nominee (partial sets are
   ignored, not filled in). Scores of a (juror, nominee) pair in ``excluded``
   (conflicts of interest: the juror mentored it or comes from its city) are
   ignored even if present; so are scores for criteria or participants the
   round does not have. A nominee's score is the mean over the jurors who
   scored it. Computed exactly (rational arithmetic, one rounding at the end),
   so it depends neither on the order scores arrive in nor on float noise.
   With ``Rules.normalise`` each juror's weighted scores are first z-scored
   (see :func:`normalise`); ``raw_score`` keeps the un-normalised mean.
   Nominees nobody scored rank last, with score 0, and cannot win.
2. **Order.** Score descending; equal scores by :data:`TIE_BREAK_RULE`.
3. **Regular awards.** Walking the order, a nominee wins a regular award
   unless its country (ISO code, compared case-insensitively) already has
   ``per_country`` regular winners; the walk stops once ``awards_count``
   regular awards are given.
4. **The one additional award** (only if allowed and all ``awards_count``
   regular awards were given): the best nominee not yet winning, whatever its
   country, wins it if its score is at least the last regular winner's score
   minus ``tight_margin`` (the boundary counts as within); otherwise nobody
   gets it. Never more than one.
5. **Winners** are ranked 1..n in the order of 2; the additional one is flagged.

Every winner and every runner-up carries one English sentence with the numbers
(score, quota, margin) so a coordinator can read why.
"""

from __future__ import annotations

import math
import uuid
from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction
from typing import Literal

from pearls_shared.errors import Invalid

RunnerUpReason = Literal[
    "country_quota",
    "below_margin",
    "tie_break",
    "awards_exhausted",
    "no_scores",
    "additional_used",
]
RUNNER_UP_REASONS: tuple[RunnerUpReason, ...] = (
    "country_quota",
    "below_margin",
    "tie_break",
    "awards_exhausted",
    "no_scores",
    "additional_used",
)

TIE_BREAK_RULE = (
    "Nominees with equal scores (to 9 decimal places) are ordered by the higher raw, "
    "un-normalised score, then by more jurors who scored them, then by the earlier nomination "
    "time, then by the participant id as a lowercase hyphenated UUID string, ascending. "
    "Nominees no juror scored come last, in the same order."
)

# Scores equal to this many decimals count as tied; the additional award's margin is compared
# with the same tolerance, so float rounding never decides a boundary case.
_DIGITS = 9
_EPSILON = 10.0**-_DIGITS

# Normalised weighted score = 50 + 10·z, clamped to 0-100 (a T-score).
_NORMAL_CENTRE = 50.0
_NORMAL_SPREAD = 10.0


@dataclass(frozen=True, slots=True)
class Criterion:
    """One criterion of the round: its weight (> 0) and its integer scale (max > min)."""

    criterion_id: str
    weight: float
    scale_min: int
    scale_max: int


@dataclass(frozen=True, slots=True)
class Nominee:
    """A nominated participant; ``nominated_at`` is timezone-aware."""

    participant_id: uuid.UUID
    city_name: str
    country: str
    nominated_at: datetime


@dataclass(frozen=True, slots=True)
class Score:
    """One juror's score of one nominee on one criterion."""

    juror_id: str
    participant_id: uuid.UUID
    criterion_id: str
    value: int


@dataclass(frozen=True, slots=True)
class Rules:
    """How many awards, the country quota, the additional award and its margin, normalisation.

    ``tight_margin`` is on the 0-100 scale; ``per_country`` applies to regular awards only.
    """

    awards_count: int = 3
    per_country: int = 1
    additional_award_allowed: bool = True
    tight_margin: float = 2.0
    normalise: bool = False


@dataclass(frozen=True, slots=True)
class Standing:
    """One nominee's result: score 0-100 (0 with ``jurors == 0``), position 1-based in the order."""

    participant_id: uuid.UUID
    city_name: str
    country: str
    score: float
    raw_score: float
    jurors: int
    position: int


@dataclass(frozen=True, slots=True)
class Winner:
    """An award: rank 1 = best among winners; ``additional_award`` for the quota-exempt one."""

    participant_id: uuid.UUID
    rank: int
    score: float
    additional_award: bool
    reason: str


@dataclass(frozen=True, slots=True)
class RunnerUp:
    """A nominee without an award, with why: the first of these that applies.

    ``no_scores`` nobody scored it; ``tie_break`` it would have won had the
    tie-break put it first among its equal scores; ``below_margin`` it was the
    best nominee left for the additional award but outside the margin;
    ``additional_used`` it was within the margin but the one additional award
    went to a better nominee; ``country_quota`` its country had its quota of
    regular awards; ``awards_exhausted`` the regular awards ran out before it.
    """

    participant_id: uuid.UUID
    score: float
    reason_code: RunnerUpReason
    reason: str


@dataclass(frozen=True, slots=True)
class Result:
    """Everyone in final order, the winners in rank order, every other nominee with why."""

    standings: tuple[Standing, ...]
    winners: tuple[Winner, ...]
    runners_up: tuple[RunnerUp, ...]
    tie_break_rule: str


# --- scores ----------------------------------------------------------------------------------


def weighted_score(scores_of_one_juror: Mapping[str, int], criteria: Sequence[Criterion]) -> float:
    """One juror's score of one nominee on 0-100: Σ w·(v-min)/(max-min) / Σ w * 100.

    Needs a value for every criterion (else :class:`Invalid`); values outside a
    criterion's scale are refused; keys naming no criterion are ignored.
    """
    _check_criteria(criteria)
    return float(_weighted(scores_of_one_juror, criteria))


def normalise(
    scores: Sequence[Score], criteria: Sequence[Criterion]
) -> dict[tuple[str, uuid.UUID], float]:
    """Each juror's weighted scores z-scored and mapped back onto 0-100, per (juror, participant).

    Only complete score sets count (as in :func:`rank`). For each juror, over
    the participants they scored: z = (s - mean) / sd with the population sd;
    a juror with one participant, or who gave all the same weighted score,
    gets z = 0. The mapping is the T-score 50 + 10·z, clamped to 0-100, so a
    harsh and a lenient juror weigh the same and only each juror's relative
    preferences count. Exclusions are the caller's business: pass only the
    scores that count.
    """
    _check_criteria(criteria)
    return _normalised(_complete_sets(scores, criteria))


def _weighted(values: Mapping[str, int], criteria: Sequence[Criterion]) -> Fraction:
    total = Fraction(0)
    weights = Fraction(0)
    for criterion in criteria:
        if criterion.criterion_id not in values:
            raise Invalid(
                ("scores", criterion.criterion_id),
                "partial_scores",
                f"no value for criterion {criterion.criterion_id!r}; "
                "a weighted score needs every criterion",
            )
        value = values[criterion.criterion_id]
        if not criterion.scale_min <= value <= criterion.scale_max:
            raise Invalid(
                ("scores", criterion.criterion_id),
                "out_of_scale",
                f"value {value} for criterion {criterion.criterion_id!r} is outside its scale "
                f"{criterion.scale_min}-{criterion.scale_max}",
            )
        weight = Fraction(criterion.weight)
        total += weight * Fraction(
            value - criterion.scale_min, criterion.scale_max - criterion.scale_min
        )
        weights += weight
    return total / weights * 100


def _complete_sets(
    scores: Sequence[Score], criteria: Sequence[Criterion]
) -> dict[tuple[str, uuid.UUID], Fraction]:
    """Exact weighted score per (juror, participant) with a value for every criterion."""
    known = {c.criterion_id for c in criteria}
    sets: dict[tuple[str, uuid.UUID], dict[str, int]] = defaultdict(dict)
    for s in scores:
        if s.criterion_id not in known:
            continue
        given = sets[(s.juror_id, s.participant_id)]
        if given.get(s.criterion_id, s.value) != s.value:
            raise Invalid(
                ("scores",),
                "conflicting_scores",
                f"juror {s.juror_id!r} gave participant {s.participant_id} two different "
                f"values for criterion {s.criterion_id!r}",
            )
        given[s.criterion_id] = s.value
    return {
        pair: _weighted(values, criteria)
        for pair, values in sets.items()
        if len(values) == len(known)
    }


def _normalised(
    weighted: Mapping[tuple[str, uuid.UUID], Fraction],
) -> dict[tuple[str, uuid.UUID], float]:
    by_juror: dict[str, dict[uuid.UUID, Fraction]] = defaultdict(dict)
    for (juror, participant), value in weighted.items():
        by_juror[juror][participant] = value
    result: dict[tuple[str, uuid.UUID], float] = {}
    for juror, values in by_juror.items():
        mean = sum(values.values(), Fraction(0)) / len(values)
        variance = sum(((v - mean) ** 2 for v in values.values()), Fraction(0)) / len(values)
        sd = math.sqrt(variance)
        for participant, value in values.items():
            z = float(value - mean) / sd if variance else 0.0
            mapped = _NORMAL_CENTRE + _NORMAL_SPREAD * z
            result[(juror, participant)] = min(100.0, max(0.0, mapped))
    return result


# --- ranking and granting --------------------------------------------------------------------


def rank(
    nominees: Sequence[Nominee],
    criteria: Sequence[Criterion],
    scores: Sequence[Score],
    rules: Rules,
    *,
    excluded: Collection[tuple[str, uuid.UUID]] = (),
) -> Result:
    """Score, order and grant a round by the rule in this module's docstring.

    ``excluded`` holds (juror_id, participant_id) pairs whose scores never
    count. The result depends neither on the order of ``nominees``, ``criteria``
    nor ``scores``. Refuses (:class:`Invalid`) bad criteria or rules, duplicate
    nominees, naive nomination times, values outside a scale and one juror
    giving two different values for the same nominee and criterion.
    """
    _check_criteria(criteria)
    _check_rules(rules)
    _check_nominees(nominees)
    standings = _standings(nominees, criteria, scores, rules, frozenset(excluded))
    scored = [s for s in standings if s.jurors]
    grant = _grant(scored, rules)

    by_id = {s.participant_id: s for s in standings}
    last_regular = by_id[grant.regular[-1]] if grant.regular else None
    winners = tuple(
        Winner(
            participant_id=s.participant_id,
            rank=number,
            score=s.score,
            additional_award=s.participant_id == grant.additional,
            reason=_winner_reason(s, grant, by_id, rules),
        )
        for number, s in enumerate(
            (s for s in standings if s.participant_id in grant.winners), start=1
        )
    )
    runners_up = tuple(
        _runner_up(s, scored, grant, last_regular, by_id, rules)
        for s in standings
        if s.participant_id not in grant.winners
    )
    return Result(
        standings=standings,
        winners=winners,
        runners_up=runners_up,
        tie_break_rule=TIE_BREAK_RULE,
    )


def _standings(
    nominees: Sequence[Nominee],
    criteria: Sequence[Criterion],
    scores: Sequence[Score],
    rules: Rules,
    excluded: frozenset[tuple[str, uuid.UUID]],
) -> tuple[Standing, ...]:
    ids = {n.participant_id for n in nominees}
    counted = [
        s
        for s in scores
        if s.participant_id in ids and (s.juror_id, s.participant_id) not in excluded
    ]
    weighted = _complete_sets(counted, criteria)
    normalised = _normalised(weighted) if rules.normalise else {}

    raw: dict[uuid.UUID, list[Fraction]] = defaultdict(list)
    mapped: dict[uuid.UUID, list[float]] = defaultdict(list)
    for (juror, participant), value in weighted.items():
        raw[participant].append(value)
        if rules.normalise:
            mapped[participant].append(normalised[(juror, participant)])

    unordered: list[tuple[Nominee, float, float, int]] = []
    for n in nominees:
        values = raw.get(n.participant_id, [])
        raw_score = float(sum(values, Fraction(0)) / len(values)) if values else 0.0
        if rules.normalise and values:
            score = math.fsum(mapped[n.participant_id]) / len(values)
        else:
            score = raw_score
        unordered.append((n, score, raw_score, len(values)))

    def order(item: tuple[Nominee, float, float, int]) -> tuple[object, ...]:
        n, score, raw_score, jurors = item
        return (
            jurors == 0,
            -round(score, _DIGITS),
            -round(raw_score, _DIGITS),
            -jurors,
            n.nominated_at,
            str(n.participant_id),
        )

    return tuple(
        Standing(
            participant_id=n.participant_id,
            city_name=n.city_name,
            country=n.country,
            score=score,
            raw_score=raw_score,
            jurors=jurors,
            position=position,
        )
        for position, (n, score, raw_score, jurors) in enumerate(
            sorted(unordered, key=order), start=1
        )
    )


@dataclass(frozen=True, slots=True)
class _Grant:
    regular: tuple[uuid.UUID, ...]  # in order
    additional: uuid.UUID | None
    candidate: uuid.UUID | None  # the nominee considered for the additional award
    quota_blocked: frozenset[uuid.UUID]

    @property
    def winners(self) -> frozenset[uuid.UUID]:
        extra = () if self.additional is None else (self.additional,)
        return frozenset((*self.regular, *extra))


def _grant(scored: Sequence[Standing], rules: Rules) -> _Grant:
    """Steps 3 and 4 of the rule over the scored nominees in final order."""
    regular: list[Standing] = []
    per_country: dict[str, int] = defaultdict(int)
    blocked: set[uuid.UUID] = set()
    for s in scored:
        country = _country(s.country)
        if per_country[country] >= rules.per_country:
            blocked.add(s.participant_id)  # also after the awards ran out: the sharper reason
        elif len(regular) < rules.awards_count:
            per_country[country] += 1
            regular.append(s)

    candidate: Standing | None = None
    additional: uuid.UUID | None = None
    if rules.additional_award_allowed and len(regular) == rules.awards_count:
        chosen = {s.participant_id for s in regular}
        candidate = next((s for s in scored if s.participant_id not in chosen), None)
        if candidate is not None and _within_margin(candidate, regular[-1], rules):
            additional = candidate.participant_id
    return _Grant(
        regular=tuple(s.participant_id for s in regular),
        additional=additional,
        candidate=None if candidate is None else candidate.participant_id,
        quota_blocked=frozenset(blocked),
    )


def _within_margin(candidate: Standing, last_regular: Standing, rules: Rules) -> bool:
    return candidate.score >= last_regular.score - rules.tight_margin - _EPSILON


def _country(country: str) -> str:
    return country.strip().upper()


def _lost_on_tie_break(
    standing: Standing, scored: Sequence[Standing], grant: _Grant, rules: Rules
) -> tuple[Standing, ...]:
    """The winners tied with ``standing`` that beat it only by the tie-break (empty if none).

    Counterfactual: move the nominee to the front of its group of equal scores
    and grant again; if it then wins, it lost on the tie-break.
    """
    key = round(standing.score, _DIGITS)
    group = [s for s in scored if round(s.score, _DIGITS) == key]
    if group[0].participant_id == standing.participant_id:
        return ()
    start = next(i for i, s in enumerate(scored) if s.participant_id == group[0].participant_id)
    others = [s for s in scored if s.participant_id != standing.participant_id]
    moved = [*others[:start], standing, *others[start:]]
    if standing.participant_id not in _grant(moved, rules).winners:
        return ()
    return tuple(
        s for s in group if s.participant_id in grant.winners and s.position < standing.position
    )


# --- reasons ---------------------------------------------------------------------------------


def _winner_reason(
    s: Standing, grant: _Grant, by_id: Mapping[uuid.UUID, Standing], rules: Rules
) -> str:
    if s.participant_id == grant.additional:
        last = by_id[grant.regular[-1]]
        return (
            f"Additional award, exempt from the country rule: score {_f(s.score)} "
            f"{_against_last(s, last, rules.tight_margin)}, "
            f"within the margin of {_f(rules.tight_margin)}."
        )
    place = grant.regular.index(s.participant_id) + 1
    country = _country(s.country)
    in_country = sum(1 for pid in grant.regular[:place] if _country(by_id[pid].country) == country)
    best = "Highest" if in_country == 1 else f"{_ordinal(in_country)} highest"
    return (
        f"{best} score in {s.country} ({_f(s.score)}), place {place} of "
        f"{rules.awards_count} regular awards (at most {rules.per_country} per country)."
    )


def _runner_up(
    s: Standing,
    scored: Sequence[Standing],
    grant: _Grant,
    last_regular: Standing | None,
    by_id: Mapping[uuid.UUID, Standing],
    rules: Rules,
) -> RunnerUp:
    code: RunnerUpReason
    if not s.jurors:
        code = "no_scores"
        reason = "No juror scored it on every criterion, so it cannot win an award."
    elif tied := _lost_on_tie_break(s, scored, grant, rules):
        code = "tie_break"
        names = ", ".join(f"{w.city_name} ({w.country})" for w in tied)
        reason = (
            f"Tied at {_f(s.score)} (raw {_f(s.raw_score)}, {_count(s.jurors, 'juror')}) "
            f"with {names}, which the tie-break rule puts first."
        )
    elif s.participant_id == grant.candidate and last_regular is not None:
        code = "below_margin"
        reason = (
            f"Best nominee without a regular award, but its score {_f(s.score)} "
            f"{_against_last(s, last_regular, rules.tight_margin)}, more than the margin of "
            f"{_f(rules.tight_margin)} for the additional award."
        )
    elif (
        grant.additional is not None
        and last_regular is not None
        and _within_margin(s, last_regular, rules)
    ):
        code = "additional_used"
        extra = by_id[grant.additional]
        quota = (
            f"; {s.country} already has {_count(rules.per_country, 'regular award')}, the quota"
            if s.participant_id in grant.quota_blocked
            else ""
        )
        reason = (
            f"Score {_f(s.score)} {_against_last(s, last_regular, rules.tight_margin)}, "
            f"within the margin of {_f(rules.tight_margin)}, but the one additional award went to "
            f"{extra.city_name} ({extra.country}, {_f(extra.score)}){quota}."
        )
    elif s.participant_id in grant.quota_blocked:
        code = "country_quota"
        reason = (
            f"Score {_f(s.score)} (position {s.position}), but {s.country} already has "
            f"{_count(rules.per_country, 'regular award')}, the quota per country"
            f"{_why_no_additional(grant, by_id, rules)}."
        )
    else:
        code = "awards_exhausted"
        last = f", the last with {_f(last_regular.score)}" if last_regular else ""
        reason = (
            f"Score {_f(s.score)} (position {s.position}) came after all "
            f"{rules.awards_count} regular awards were given{last}"
            f"{_why_no_additional(grant, by_id, rules)}."
        )
    return RunnerUp(participant_id=s.participant_id, score=s.score, reason_code=code, reason=reason)


def _why_no_additional(grant: _Grant, by_id: Mapping[uuid.UUID, Standing], rules: Rules) -> str:
    if not rules.additional_award_allowed:
        return "; this round gives no additional award"
    if len(grant.regular) < rules.awards_count:
        return (
            f"; only {len(grant.regular)} of {rules.awards_count} regular awards could be "
            "given, so there is no additional award"
        )
    if grant.additional is not None:
        extra = by_id[grant.additional]
        return (
            f"; the one additional award went to {extra.city_name} "
            f"({extra.country}, {_f(extra.score)})"
        )
    return f"; nobody was within the margin of {_f(rules.tight_margin)} for the additional award"


def _against_last(s: Standing, last: Standing, margin: float) -> str:
    gap = last.score - s.score
    if gap < -_EPSILON:
        return f"is above the last regular winner's {_f(last.score)}"
    if gap <= _EPSILON:
        return f"equals the last regular winner's {_f(last.score)}"
    return f"is {_gap(gap, margin)} below the last regular winner's {_f(last.score)}"


def _gap(gap: float, margin: float) -> str:
    """The gap with 2 decimals, more (up to 6) if 2 would print a different gap as the margin."""
    shown = _f(gap)
    for digits in range(2, 7):
        shown = _f(gap, digits)
        if abs(gap - margin) <= _EPSILON or shown != _f(margin, digits):
            break
    return shown


def _f(value: float, digits: int = 2) -> str:
    return f"{value:.{digits}f}"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


# --- checks ----------------------------------------------------------------------------------


def _check_criteria(criteria: Sequence[Criterion]) -> None:
    if not criteria:
        raise Invalid(("criteria",), "no_criteria", "a round needs at least one criterion")
    seen: set[str] = set()
    for i, c in enumerate(criteria):
        if c.criterion_id in seen:
            raise Invalid(
                ("criteria", i, "criterion_id"),
                "duplicate_criterion",
                f"criterion {c.criterion_id!r} appears twice",
            )
        seen.add(c.criterion_id)
        if not (math.isfinite(c.weight) and c.weight > 0):
            raise Invalid(
                ("criteria", i, "weight"),
                "weight_not_positive",
                f"criterion {c.criterion_id!r} needs a finite weight > 0, not {c.weight}",
            )
        if c.scale_max <= c.scale_min:
            raise Invalid(
                ("criteria", i, "scale_max"),
                "empty_scale",
                f"criterion {c.criterion_id!r}: scale_max {c.scale_max} must exceed "
                f"scale_min {c.scale_min}",
            )


def _check_rules(rules: Rules) -> None:
    if rules.awards_count < 1:
        raise Invalid(("awards_count",), "too_few_awards", "a round gives at least one award")
    if rules.per_country < 1:
        raise Invalid(("per_country",), "quota_not_positive", "the country quota is at least 1")
    if not (math.isfinite(rules.tight_margin) and rules.tight_margin >= 0):
        raise Invalid(
            ("tight_margin",),
            "margin_negative",
            f"the margin must be a finite number >= 0, not {rules.tight_margin}",
        )


def _check_nominees(nominees: Sequence[Nominee]) -> None:
    seen: set[uuid.UUID] = set()
    for i, n in enumerate(nominees):
        if n.participant_id in seen:
            raise Invalid(
                ("nominees", i, "participant_id"),
                "duplicate_nominee",
                f"participant {n.participant_id} is nominated twice",
            )
        seen.add(n.participant_id)
        if n.nominated_at.utcoffset() is None:
            raise Invalid(
                ("nominees", i, "nominated_at"),
                "naive_datetime",
                "nominated_at must carry a timezone",
            )
