"""Mentor matching: hard constraints, optimality against independent solvers, explanations.

The optimum is recomputed here without the production code: the programme's
points are re-derived from the rules (``points``), and the best assignment is
found by an integer programme (HiGHS through ``scipy.optimize.milp``, two
stages: most matches, then most points) and by brute force on small cohorts.
"""

from __future__ import annotations

import itertools
import random
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.optimize import LinearConstraint, milp
from scipy.sparse import coo_array

from pearls_mentoring.domain.matching import (
    CONSTRAINTS,
    CRITERIA,
    Match,
    MatchResult,
    Mentor,
    Participant,
    Weights,
    explain,
    match,
    violations,
)
from pearls_shared.events.common import BSR_COUNTRIES, DEFAULT_THEMES

W = Weights()
LANGUAGES = ("en", "de", "et", "lv", "lt", "pl", "sv", "fi", "da")
RARE = "nn"  # spoken by some participants, by no mentor


# --- the rules, restated independently of the production code -------------------------------


def allowed(p: Participant, m: Mentor) -> bool:
    own_city = m.city_key is not None and (m.country, m.city_key) == (p.country, p.city_key)
    return bool(p.languages & m.languages) and not own_city


def pair_points(p: Participant, m: Mentor, w: Weights) -> float:
    """Points of the pair before the slot: theme share and border crossing, unrounded."""
    themes = len(p.themes & m.themes) / len(p.themes) if p.themes else 0.0
    border = 1.0 if p.country != m.country else 0.0
    return w.theme_overlap * themes + w.cross_border * border


def slot_points(m: Mentor, position: int, w: Weights) -> float:
    """Points for taking mentor m's absolute slot ``position`` (0-based)."""
    return w.balanced_load * (1.0 - position / m.capacity)


def points(p: Participant, m: Mentor, position: int, w: Weights) -> float:
    return pair_points(p, m, w) + slot_points(m, position, w)


def free_slots(m: Mentor) -> range:
    return range(m.load, m.capacity)


def milp_optimum(ps: Sequence[Participant], ms: Sequence[Mentor], w: Weights) -> tuple[int, float]:
    """(most participants matched, most points among those) via binary x[p, m, k]."""
    variables = [
        (i, j, k)
        for i, p in enumerate(ps)
        for j, m in enumerate(ms)
        if allowed(p, m)
        for k in free_slots(m)
    ]
    if not variables:
        return 0, 0.0
    slot_row = {(j, k): n for n, (j, k) in enumerate({(j, k) for _, j, k in variables})}
    n_vars = len(variables)
    rows = [i for i, _, _ in variables] + [len(ps) + slot_row[j, k] for _, j, k in variables]
    cols = list(range(n_vars)) * 2
    a = coo_array((np.ones(2 * n_vars), (rows, cols)), shape=(len(ps) + len(slot_row), n_vars))
    at_most_one = LinearConstraint(a.tocsr(), -np.inf, 1)
    options = {"mip_rel_gap": 0.0}
    ones = np.ones(n_vars)

    first = milp(-ones, constraints=[at_most_one], integrality=ones, bounds=(0, 1), options=options)
    assert first.success
    count = round(-first.fun)
    score = np.array([points(ps[i], ms[j], k, w) for i, j, k in variables])
    exactly = LinearConstraint(ones.reshape(1, -1), count, count)
    second = milp(
        -score, constraints=[at_most_one, exactly], integrality=ones, bounds=(0, 1), options=options
    )
    assert second.success
    return count, -second.fun


def brute_force(ps: Sequence[Participant], ms: Sequence[Mentor], w: Weights) -> tuple[int, float]:
    """(most matched, most points) by trying every mentor choice (or none) for everyone."""
    best = (0, 0.0)
    for choice in itertools.product([None, *range(len(ms))], repeat=len(ps)):
        taken = Counter(j for j in choice if j is not None)
        if any(ms[j].load + c > ms[j].capacity for j, c in taken.items()):
            continue
        if any(j is not None and not allowed(p, ms[j]) for p, j in zip(ps, choice, strict=True)):
            continue
        # The mentor's c newcomers take its slots load .. load+c-1, in whatever order.
        total = sum(
            pair_points(p, ms[j], w) for p, j in zip(ps, choice, strict=True) if j is not None
        ) + sum(
            slot_points(ms[j], k, w)
            for j, c in taken.items()
            for k in range(ms[j].load, ms[j].load + c)
        )
        count = sum(taken.values())
        if count > best[0] or (count == best[0] and total > best[1] + 1e-12):
            best = (count, total)
    return best


# --- checks on a result --------------------------------------------------------------------


def check_result(result: MatchResult, ps: Sequence[Participant], ms: Sequence[Mentor]) -> None:
    """Every hard constraint holds, everyone is accounted for once, slots are consistent."""
    by_p = {p.id: p for p in ps}
    by_m = {m.id: m for m in ms}
    seen = [x.participant_id for x in result.matches] + [x.participant_id for x in result.unmatched]
    assert sorted(seen) == sorted(by_p)
    slots: dict[uuid.UUID, list[int]] = {}
    for x in result.matches:
        p, m = by_p[x.participant_id], by_m[x.mentor_id]
        assert p.languages & m.languages, "shared language"
        assert not (m.city_key == p.city_key and m.country == p.country), "own city"
        assert violations(p, m, extra_load=x.slot) == ()
        slots.setdefault(m.id, []).append(x.slot)
    for mentor_id, taken in slots.items():
        m = by_m[mentor_id]
        assert m.load + len(taken) <= m.capacity, "capacity, including the existing load"
        assert sorted(taken) == list(range(len(taken))), "slots are the next free ones"
    for u in result.unmatched:
        assert len(u.reasons) >= 1 and u.summary


def independent_total(
    result: MatchResult, ps: Sequence[Participant], ms: Sequence[Mentor], w: Weights
) -> float:
    by_p = {p.id: p for p in ps}
    by_m = {m.id: m for m in ms}
    return sum(
        points(by_p[x.participant_id], by_m[x.mentor_id], by_m[x.mentor_id].load + x.slot, w)
        for x in result.matches
    )


def check_explanations(
    result: MatchResult, ps: Sequence[Participant], ms: Sequence[Mentor], w: Weights
) -> None:
    by_p = {p.id: p for p in ps}
    by_m = {m.id: m for m in ms}
    for x in result.matches:
        e = x.explanation
        assert tuple(e.criteria) == CRITERIA
        assert e.score == sum(e.criteria.values())
        assert e.constraints_met == CONSTRAINTS
        p, m = by_p[x.participant_id], by_m[x.mentor_id]
        assert e == explain(p, m, w, x.slot)
        assert e.score == pytest.approx(points(p, m, m.load + x.slot, w), abs=2e-6)
        assert e.shared_languages == tuple(sorted(p.languages & m.languages))
        assert e.shared_themes == tuple(sorted(p.themes & m.themes))
        assert e.cross_border == (p.country != m.country)
    assert result.total_score == pytest.approx(sum(x.explanation.score for x in result.matches))


# --- cohorts ---------------------------------------------------------------------------------


def uid(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


def cohort(
    seed: int, participants: int = 220, mentors: int = 45
) -> tuple[list[Participant], list[Mentor]]:
    """A BSR cohort: pearl cities among the mentors, a few rare-language participants."""
    rng = random.Random(seed)
    cities = {c: [f"{c.lower()}-city-{i}" for i in range(5)] for c in BSR_COUNTRIES}

    def speaks(most: int) -> frozenset[str]:
        langs = set(rng.sample(LANGUAGES[1:], rng.randint(1, most)))
        if rng.random() < 0.5:
            langs.add("en")
        return frozenset(langs)

    ms = []
    for _ in range(mentors):
        country = rng.choice(BSR_COUNTRIES)
        capacity = rng.randint(1, 8)
        ms.append(
            Mentor(
                id=uid(rng),
                country=country,
                city_key=rng.choice(cities[country]) if rng.random() < 0.4 else None,
                languages=speaks(2),
                themes=frozenset(rng.sample(DEFAULT_THEMES, rng.randint(1, 4))),
                capacity=capacity,
                load=rng.randint(0, capacity) if rng.random() < 0.3 else 0,
            )
        )
    ps = []
    for _ in range(participants):
        country = rng.choice(BSR_COUNTRIES)
        rare = rng.random() < 0.04
        ps.append(
            Participant(
                id=uid(rng),
                country=country,
                city_key=rng.choice(cities[country]),
                languages=frozenset({RARE}) if rare else speaks(1),
                themes=frozenset(rng.sample(DEFAULT_THEMES, rng.randint(1, 3))),
            )
        )
    return ps, ms


def participant(
    country: str = "LV",
    city: str = "valmiera",
    languages: str = "en",
    themes: str = "culture_creative_industries",
    n: int = 0,
) -> Participant:
    return Participant(
        id=uuid.UUID(int=0x1000 + n),
        country=country,
        city_key=city,
        languages=frozenset(languages.split()),
        themes=frozenset(themes.split()),
    )


def mentor(
    country: str = "EE",
    city: str | None = None,
    languages: str = "en",
    themes: str = "culture_creative_industries",
    capacity: int = 3,
    load: int = 0,
    n: int = 0,
) -> Mentor:
    return Mentor(
        id=uuid.UUID(int=0x2000 + n),
        country=country,
        city_key=city,
        languages=frozenset(languages.split()),
        themes=frozenset(themes.split()),
        capacity=capacity,
        load=load,
    )


# --- the whole cohort against the integer programme -----------------------------------------


@pytest.mark.parametrize(
    ("seed", "n_participants", "n_mentors"),
    [(1, 220, 45), (2, 200, 60), (3, 240, 40)],
)
def test_cohort_is_feasible_and_optimal(seed: int, n_participants: int, n_mentors: int) -> None:
    ps, ms = cohort(seed, n_participants, n_mentors)
    result = match(ps, ms, W)

    check_result(result, ps, ms)
    check_explanations(result, ps, ms, W)
    count, best = milp_optimum(ps, ms, W)
    assert len(result.matches) == count
    assert independent_total(result, ps, ms, W) == pytest.approx(best, abs=1e-6)
    # The reported total is made of rounded points (6 decimals, three per match).
    assert result.total_score == pytest.approx(best, abs=2e-6 * max(count, 1))
    # The cohort exercises what it should: leftovers, pearl cities speaking their cities' language.
    reasons = Counter(r for u in result.unmatched for r in u.reasons)
    assert reasons["no_shared_language"] > 0
    slots = sum(max(0, m.capacity - m.load) for m in ms)
    if slots < len(ps) - reasons["no_shared_language"] - reasons["only_own_city"]:
        assert reasons["all_full"] > 0
    assert any(
        "not_own_city" in violations(p, m) for p in ps for m in ms if p.languages & m.languages
    )


def test_cohort_with_other_weights_is_optimal() -> None:
    ps, ms = cohort(4, 200, 40)
    w = Weights(theme_overlap=0.5, cross_border=4.0, balanced_load=0.0)
    result = match(ps, ms, w)
    check_result(result, ps, ms)
    check_explanations(result, ps, ms, w)
    count, best = milp_optimum(ps, ms, w)
    assert len(result.matches) == count
    assert independent_total(result, ps, ms, w) == pytest.approx(best, abs=1e-6)


def test_small_sub_cohorts_match_brute_force() -> None:
    ps, ms = cohort(5, 220, 45)
    rng = random.Random(55)
    for _ in range(25):
        sub_ps = rng.sample(ps, 5)
        # Few slots, so participants compete for them.
        sub_ms = [replace(m, capacity=rng.randint(1, 2), load=0) for m in rng.sample(ms, 3)]
        result = match(sub_ps, sub_ms, W)
        check_result(result, sub_ps, sub_ms)
        check_explanations(result, sub_ps, sub_ms, W)
        count, best = brute_force(sub_ps, sub_ms, W)
        assert len(result.matches) == count
        assert independent_total(result, sub_ps, sub_ms, W) == pytest.approx(best, abs=1e-9)


# --- newcomers ------------------------------------------------------------------------------


def test_newcomers_never_move_settled_pairs_and_use_remaining_capacity() -> None:
    ps, ms = cohort(6, 260, 45)
    first_ps, newcomers = ps[:180], ps[180:]
    first = match(first_ps, ms, W)
    settled = {x.participant_id: x.mentor_id for x in first.matches}
    snapshot = dict(settled)
    taken = Counter(settled.values())

    now = [replace(m, load=m.load + taken[m.id]) for m in ms]
    second = match(newcomers, now, W)

    check_result(second, newcomers, now)
    check_explanations(second, newcomers, now, W)
    assert {x.participant_id for x in second.matches} <= {p.id for p in newcomers}
    assert settled == snapshot  # the first round's pairs are not inputs, so they stay
    combined = taken + Counter(x.mentor_id for x in second.matches)
    for m in ms:
        assert m.load + combined[m.id] <= m.capacity
    # Newcomers take slots after the settled ones (slot is counted from the current load).
    by_m = {m.id: m for m in now}
    for x in second.matches:
        original = next(m for m in ms if m.id == x.mentor_id)
        assert by_m[x.mentor_id].load + x.slot >= original.load + taken[x.mentor_id]
    count, best = milp_optimum(newcomers, now, W)
    assert len(second.matches) == count
    assert independent_total(second, newcomers, now, W) == pytest.approx(best, abs=1e-6)


# --- the rules on hand-made cases -----------------------------------------------------------


def test_cardinality_comes_before_score() -> None:
    # A alone with M1 would score most; but then B (English only) gets nobody.
    a = participant(languages="en lv", n=1)
    b = participant(languages="en", country="LT", city="utena", themes="ecology_health", n=2)
    m1 = mentor(country="EE", languages="en", capacity=1, n=1)
    m2 = mentor(country="LV", languages="lv", themes="ecology_health", capacity=1, n=2)
    result = match([a, b], [m1, m2], W)
    assert {(x.participant_id, x.mentor_id) for x in result.matches} == {
        (a.id, m2.id),
        (b.id, m1.id),
    }
    assert result.unmatched == ()


def test_explanation_of_a_cross_border_match() -> None:
    p = participant(themes="culture_creative_industries ecology_health")
    m = mentor(themes="culture_creative_industries ecology_health innovation_economy", capacity=3)
    e = explain(p, m, W, 0)
    assert e.criteria == {"theme_overlap": 3.0, "cross_border": 1.0, "balanced_load": 1.0}
    assert e.score == 5.0
    assert e.cross_border and e.shared_languages == ("en",)
    assert e.shared_themes == ("culture_creative_industries", "ecology_health")
    assert e.constraints_met == CONSTRAINTS
    assert e.summary == (
        "Shares English and 2 of 2 themes (culture_creative_industries, ecology_health),"
        " mentors across the border (EE→LV), slot 1 of 3."
    )
    later = explain(p, replace(m, load=1), W, 1)
    assert later.criteria["balanced_load"] == pytest.approx(1 / 3, abs=1e-6)
    assert "slot 3 of 3" in later.summary
    other = explain(participant(country="EE", themes="digital_participation"), m, W, 2)
    assert other.summary == (
        "Shares English but none of its 1 theme, mentors within EE, slot 3 of 3."
    )
    assert other.criteria == {
        "theme_overlap": 0.0,
        "cross_border": 0.0,
        "balanced_load": pytest.approx(1 / 3, abs=1e-6),
    }


def test_explain_previews_an_override_that_breaks_rules() -> None:
    p = participant(themes="ecology_health digital_participation")
    own = mentor(country="LV", city="valmiera", languages="lv", capacity=1, load=1)
    e = explain(p, own, W, 0)
    assert e.constraints_met == ()
    assert violations(p, own) == CONSTRAINTS
    assert e.criteria == {"theme_overlap": 0.0, "cross_border": 0.0, "balanced_load": 0.0}
    assert e.score == 0.0
    assert "Shares no working language and none of its 2 themes" in e.summary
    assert "against the rules" in e.summary
    with pytest.raises(ValueError, match="slot"):
        explain(p, own, W, -1)


def test_same_city_name_in_another_country_is_not_own_city() -> None:
    p = participant(country="LV", city="valga")
    m = mentor(country="EE", city="valga")
    assert violations(p, m) == ()
    assert match([p], [m], W).matches[0].mentor_id == m.id


def test_unmatched_reasons() -> None:
    rare = participant(languages="nn", n=1)
    own_only = participant(languages="lv", n=2)
    full = participant(languages="lt", country="LT", city="utena", n=3)
    ms = [
        mentor(languages="en", n=1),
        mentor(country="LV", city="valmiera", languages="lv en", n=2),
        mentor(languages="lt", capacity=2, load=2, n=3),
    ]
    result = match([rare, own_only, full], ms, W)
    assert result.matches == ()
    reasons = {u.participant_id: u.reasons for u in result.unmatched}
    assert reasons == {
        rare.id: ("no_shared_language",),
        own_only.id: ("only_own_city",),
        full.id: ("all_full",),
    }
    summaries = {u.participant_id: u.summary for u in result.unmatched}
    assert "Norwegian Nynorsk" in summaries[rare.id]
    assert "own city" in summaries[own_only.id]
    assert "no free slot" in summaries[full.id]


def test_taken_by_a_better_match_is_all_full() -> None:
    p1 = participant(themes="ecology_health", n=1)
    p2 = participant(themes="innovation_economy", n=2)
    m = mentor(themes="ecology_health", capacity=1)
    result = match([p2, p1], [m], W)
    assert [(x.participant_id, x.mentor_id) for x in result.matches] == [(p1.id, m.id)]
    assert [(u.participant_id, u.reasons) for u in result.unmatched] == [(p2.id, ("all_full",))]


def test_no_mentors_and_no_participants() -> None:
    ps = [participant(n=1), participant(n=2)]
    result = match(ps, [], W)
    assert result.matches == () and result.total_score == 0.0
    assert [u.reasons for u in result.unmatched] == [("no_active_mentor",)] * 2
    assert match([], [mentor()], W) == MatchResult((), (), 0.0)


def test_mentor_over_capacity_has_no_slot() -> None:
    # A lowered capacity leaves the mentor with more participants than slots.
    m = mentor(capacity=2, load=3)
    result = match([participant()], [m], W)
    assert result.unmatched[0].reasons == ("all_full",)


def test_same_input_in_any_order_gives_the_same_result() -> None:
    ps, ms = cohort(7, 200, 40)
    expected = match(ps, ms, W)
    rng = random.Random(77)
    for _ in range(3):
        shuffled_ps, shuffled_ms = ps[:], ms[:]
        rng.shuffle(shuffled_ps)
        rng.shuffle(shuffled_ms)
        assert match(shuffled_ps, shuffled_ms, W) == expected


def test_invalid_inputs() -> None:
    with pytest.raises(ValueError, match="theme_overlap"):
        Weights(theme_overlap=-1)
    with pytest.raises(ValueError, match="cross_border"):
        Weights(cross_border=float("nan"))
    with pytest.raises(ValueError, match="capacity"):
        mentor(capacity=0)
    with pytest.raises(ValueError, match="load"):
        mentor(load=-1)
    with pytest.raises(ValueError, match="duplicate participant"):
        match([participant(), participant()], [mentor()], W)
    with pytest.raises(ValueError, match="duplicate mentor"):
        match([participant()], [mentor(), mentor()], W)


def test_match_is_a_value_object() -> None:
    result = match([participant()], [mentor()], W)
    assert isinstance(result.matches[0], Match)
    assert result.matches[0].slot == 0


# --- property: small random cohorts ---------------------------------------------------------


@st.composite
def small_cohorts(draw: st.DrawFn) -> tuple[list[Participant], list[Mentor], Weights]:
    langs = st.frozensets(st.sampled_from(("en", "lv", "et")), min_size=1, max_size=2)
    themes = st.frozensets(st.sampled_from(DEFAULT_THEMES[:3]), max_size=3)
    countries = st.sampled_from(("EE", "LV"))
    cities = st.sampled_from(("a", "b"))
    n_p = draw(st.integers(0, 5))
    n_m = draw(st.integers(0, 3))
    ids = draw(st.lists(st.uuids(), min_size=n_p + n_m, max_size=n_p + n_m, unique=True))
    ps = [
        Participant(ids[i], draw(countries), draw(cities), draw(langs), draw(themes))
        for i in range(n_p)
    ]
    ms = []
    for i in range(n_m):
        capacity = draw(st.integers(1, 3))
        ms.append(
            Mentor(
                ids[n_p + i],
                draw(countries),
                draw(st.none() | cities),
                draw(langs),
                draw(themes),
                capacity,
                draw(st.integers(0, capacity)),
            )
        )
    weight = st.sampled_from((0.0, 0.5, 1.0, 3.0))
    return ps, ms, Weights(draw(weight), draw(weight), draw(weight))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(small_cohorts())
def test_property_small_cohorts_are_feasible_and_optimal(
    data: tuple[list[Participant], list[Mentor], Weights],
) -> None:
    ps, ms, w = data
    result = match(ps, ms, w)
    check_result(result, ps, ms)
    check_explanations(result, ps, ms, w)
    count, best = brute_force(ps, ms, w)
    assert len(result.matches) == count
    assert independent_total(result, ps, ms, w) == pytest.approx(best, abs=1e-9)
