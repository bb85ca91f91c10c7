"""The BSR Cultural Pearls Award rule: scores, country quota, the one additional award, ties.

Example tests pin each part of the rule on small rounds whose scores are easy
to read (one criterion on a 0-1000 scale, so a value of 785 is a score of
78.50). Property tests run generated juries through :func:`rank` and check the
rule's invariants against a restatement of the rule written here, without the
production code.
"""

from __future__ import annotations

import itertools
import random
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pearls_awards.domain.ranking import (
    RUNNER_UP_REASONS,
    TIE_BREAK_RULE,
    Criterion,
    Nominee,
    Result,
    Rules,
    Score,
    normalise,
    rank,
    weighted_score,
)
from pearls_shared.errors import Invalid

T0 = datetime(2025, 5, 1, 9, 0, tzinfo=UTC)
POINTS = (Criterion("impact", 1.0, 0, 1000),)  # value v scores v / 10
EPS = 1e-9


def pid(n: int) -> uuid.UUID:
    return uuid.UUID(int=n)


def nominee(n: int, country: str, *, city: str | None = None, minutes: int = 0) -> Nominee:
    return Nominee(pid(n), city or f"City {n}", country, T0 + timedelta(minutes=minutes))


def points(table: Mapping[int, Sequence[float]]) -> list[Score]:
    """Scores on POINTS: nominee -> one score (0-100) per juror j1, j2, ..."""
    return [
        Score(f"j{j}", pid(n), "impact", round(score * 10))
        for n, scores in table.items()
        for j, score in enumerate(scores, start=1)
    ]


def by_id(result: Result) -> dict[uuid.UUID, tuple[str, str]]:
    """participant -> ("winner", "regular"/"additional") or ("runner_up", reason_code)."""
    out = {
        w.participant_id: ("winner", "additional" if w.additional_award else "regular")
        for w in result.winners
    }
    out.update({r.participant_id: ("runner_up", r.reason_code) for r in result.runners_up})
    return out


def winners(result: Result) -> list[tuple[uuid.UUID, bool]]:
    return [(w.participant_id, w.additional_award) for w in result.winners]


# --- scores ---------------------------------------------------------------------------------


def test_weights_and_scales_map_onto_0_to_100() -> None:
    criteria = (Criterion("a", 1.0, 0, 10), Criterion("b", 3.0, 1, 5))
    assert weighted_score({"a": 0, "b": 1}, criteria) == 0.0
    assert weighted_score({"a": 10, "b": 5}, criteria) == 100.0
    assert weighted_score({"a": 10, "b": 1}, criteria) == 25.0  # 1*1 + 3*0 over 4
    assert weighted_score({"a": 0, "b": 5}, criteria) == 75.0
    assert weighted_score({"a": 5, "b": 3}, criteria) == 50.0
    assert weighted_score({"a": 7, "b": 2, "unknown": 99}, criteria) == pytest.approx(36.25)

    scores = [
        Score("j1", pid(1), "a", 10),
        Score("j1", pid(1), "b", 1),
        Score("j2", pid(1), "a", 0),
        Score("j2", pid(1), "b", 5),
    ]
    result = rank([nominee(1, "DE")], criteria, scores, Rules())
    assert result.standings[0].score == 50.0  # mean of 25 and 75
    assert result.standings[0].jurors == 2


def test_weighted_score_refuses_a_partial_set_and_values_outside_the_scale() -> None:
    criteria = (Criterion("a", 1.0, 0, 10), Criterion("b", 1.0, 0, 10))
    with pytest.raises(Invalid) as partial:
        weighted_score({"a": 3}, criteria)
    assert partial.value.rule == "partial_scores"
    with pytest.raises(Invalid) as outside:
        weighted_score({"a": 3, "b": 11}, criteria)
    assert outside.value.rule == "out_of_scale"


def test_partial_score_sets_are_ignored() -> None:
    criteria = (Criterion("a", 1.0, 0, 10), Criterion("b", 1.0, 0, 10))
    scores = [
        Score("j1", pid(1), "a", 8),
        Score("j1", pid(1), "b", 8),
        Score("j2", pid(1), "a", 6),
        Score("j2", pid(1), "b", 6),
        Score("j3", pid(1), "a", 0),  # j3 never scored "b": its "a" does not count
        Score("j3", pid(2), "a", 10),  # the only score of nominee 2: a partial set
    ]
    result = rank([nominee(1, "DE"), nominee(2, "PL")], criteria, scores, Rules())
    first, second = result.standings
    assert (first.participant_id, first.score, first.jurors) == (pid(1), 70.0, 2)
    assert (second.participant_id, second.jurors) == (pid(2), 0)
    assert by_id(result)[pid(2)] == ("runner_up", "no_scores")


def test_excluded_jurors_scores_are_ignored_even_when_present() -> None:
    nominees = [nominee(1, "DE"), nominee(2, "PL")]
    # j2 mentored nominee 1 and gave it 100 anyway: without the exclusion 1 would lead
    scores = points({1: [60, 100], 2: [70, 70]})
    excluded = {("j2", pid(1))}
    rules = Rules(awards_count=1, additional_award_allowed=False)

    result = rank(nominees, POINTS, scores, rules, excluded=excluded)

    assert [(s.participant_id, s.score, s.jurors) for s in result.standings] == [
        (pid(2), 70.0, 2),
        (pid(1), 60.0, 1),
    ]
    assert winners(result) == [(pid(2), False)]
    without = [s for s in scores if (s.juror_id, s.participant_id) not in excluded]
    assert rank(nominees, POINTS, without, rules) == result
    assert winners(rank(nominees, POINTS, scores, rules)) == [(pid(1), False)]


def test_excluded_scores_do_not_shift_a_jurors_normalisation() -> None:
    nominees = [nominee(1, "DE"), nominee(2, "PL"), nominee(3, "LV")]
    scores = points({1: [90, 10], 2: [50, 60], 3: [10, 80]})
    excluded = {("j1", pid(1))}
    rules = Rules(normalise=True)
    without = [s for s in scores if (s.juror_id, s.participant_id) not in excluded]
    assert rank(nominees, POINTS, scores, rules, excluded=excluded) == rank(
        nominees, POINTS, without, rules
    )


# --- normalisation --------------------------------------------------------------------------


def test_normalisation_follows_each_jurors_relative_preferences_and_keeps_raw() -> None:
    # j1 is harsh and spreads widely (A 40 > C 20 > B 0); j2 is lenient and close
    # together (B 100 > A 95 > C 90). Raw means favour C over B (55 vs 50): j1's wide
    # spread dominates. Normalised, each juror counts the same: B is j2's first and
    # j1's last, C is j1's middle and j2's last, so B comes before C.
    a, b, c = nominee(1, "DE"), nominee(2, "PL"), nominee(3, "LV")
    scores = points({1: [40, 95], 2: [0, 100], 3: [20, 90]})
    rules = Rules(awards_count=3, additional_award_allowed=False)

    raw = rank([a, b, c], POINTS, scores, rules)
    normalised = rank([a, b, c], POINTS, scores, Rules(awards_count=3, normalise=True))

    assert [s.participant_id for s in raw.standings] == [pid(1), pid(3), pid(2)]
    assert [s.raw_score for s in raw.standings] == [67.5, 55.0, 50.0]
    assert all(s.score == s.raw_score for s in raw.standings)

    assert [s.participant_id for s in normalised.standings] == [pid(1), pid(2), pid(3)]
    z = 1.5**0.5  # the z of a best or worst of three equally spaced scores
    expected = {pid(1): 50 + 5 * z, pid(2): 50.0, pid(3): 50 - 5 * z}
    for s in normalised.standings:
        assert s.score == pytest.approx(expected[s.participant_id])
    assert {s.participant_id: s.raw_score for s in normalised.standings} == {
        pid(1): 67.5,
        pid(2): 50.0,
        pid(3): 55.0,
    }


def test_normalise_maps_z_scores_to_50_plus_10_z() -> None:
    scores = [
        *points({1: [40], 2: [0], 3: [20]}),  # j1: three spread scores
        Score("j2", pid(1), "impact", 700),  # j2: one nominee only
        Score("j3", pid(1), "impact", 300),  # j3: the same score twice
        Score("j3", pid(2), "impact", 300),
    ]
    values = normalise(scores, POINTS)
    z = 1.5**0.5
    assert values[("j1", pid(1))] == pytest.approx(50 + 10 * z)
    assert values[("j1", pid(2))] == pytest.approx(50 - 10 * z)
    assert values[("j1", pid(3))] == 50.0
    assert values[("j2", pid(1))] == 50.0
    assert values[("j3", pid(1))] == values[("j3", pid(2))] == 50.0


def test_normalise_clamps_to_0_to_100() -> None:
    # 30 nominees, one of them far above the rest: z = sqrt(29) > 5
    scores = [Score("j1", pid(n), "impact", 0) for n in range(1, 30)]
    scores.append(Score("j1", pid(30), "impact", 1000))
    values = normalise(scores, POINTS)
    assert values[("j1", pid(30))] == 100.0
    assert all(0.0 <= v <= 100.0 for v in values.values())


# --- regular awards and the country quota ---------------------------------------------------


def test_country_quota_second_strong_city_of_a_country_gets_no_regular_award() -> None:
    nominees = [
        nominee(1, "DE", city="Lübeck"),
        nominee(2, "DE", city="Rostock"),
        nominee(3, "PL"),
        nominee(4, "LV"),
        nominee(5, "EE"),
    ]
    scores = points({1: [90], 2: [88], 3: [70], 4: [60], 5: [50]})
    result = rank(nominees, POINTS, scores, Rules(additional_award_allowed=False))

    assert winners(result) == [(pid(1), False), (pid(3), False), (pid(4), False)]
    assert [w.rank for w in result.winners] == [1, 2, 3]
    outcome = by_id(result)
    assert outcome[pid(2)] == ("runner_up", "country_quota")
    assert outcome[pid(5)] == ("runner_up", "awards_exhausted")


def test_country_quota_of_two_allows_a_second_regular_award() -> None:
    nominees = [nominee(1, "DE"), nominee(2, "DE"), nominee(3, "DE"), nominee(4, "PL")]
    scores = points({1: [90], 2: [88], 3: [86], 4: [70]})
    rules = Rules(per_country=2, additional_award_allowed=False)
    result = rank(nominees, POINTS, scores, rules)
    assert winners(result) == [(pid(1), False), (pid(2), False), (pid(4), False)]
    assert by_id(result)[pid(3)] == ("runner_up", "country_quota")


def test_fewer_nominees_than_awards_all_win_and_no_additional_award() -> None:
    result = rank([nominee(1, "DE"), nominee(2, "PL")], POINTS, points({1: [80], 2: [79]}), Rules())
    assert winners(result) == [(pid(1), False), (pid(2), False)]
    assert result.runners_up == ()


def test_no_additional_award_unless_every_regular_award_was_given() -> None:
    # two countries, three awards: only two regular awards can be given
    nominees = [nominee(1, "DE"), nominee(2, "DE"), nominee(3, "PL")]
    result = rank(nominees, POINTS, points({1: [90], 2: [89], 3: [80]}), Rules())
    assert winners(result) == [(pid(1), False), (pid(3), False)]
    runner_up = result.runners_up[0]
    assert (runner_up.participant_id, runner_up.reason_code) == (pid(2), "country_quota")
    assert "only 2 of 3 regular awards" in runner_up.reason


def test_nominees_with_no_scores_never_win() -> None:
    nominees = [nominee(1, "DE"), nominee(2, "PL"), nominee(3, "LV", minutes=-10)]
    result = rank(nominees, POINTS, points({1: [10]}), Rules())
    assert winners(result) == [(pid(1), False)]
    assert [(s.participant_id, s.jurors, s.score) for s in result.standings] == [
        (pid(1), 1, 10.0),
        (pid(3), 0, 0.0),  # earlier nomination first among the unscored
        (pid(2), 0, 0.0),
    ]
    assert {r.reason_code for r in result.runners_up} == {"no_scores"}
    assert rank(nominees, POINTS, [], Rules()).winners == ()


# --- the one additional award ----------------------------------------------------------------


def test_additional_award_is_exempt_from_the_country_quota_on_a_tight_score() -> None:
    # the demo's case: Lübeck and Rostock are both strong; Rostock gets no regular award
    # (one per country) but is within 2 points of the last regular winner
    nominees = [
        nominee(1, "DE", city="Lübeck"),
        nominee(2, "PL", city="Gdańsk"),
        nominee(3, "LV", city="Cēsis"),
        nominee(4, "DE", city="Rostock"),
        nominee(5, "EE", city="Tartu"),
    ]
    scores = points({1: [90, 92], 2: [85, 87], 3: [81, 79], 4: [79, 79], 5: [70, 70]})
    result = rank(nominees, POINTS, scores, Rules())

    assert winners(result) == [(pid(1), False), (pid(2), False), (pid(3), False), (pid(4), True)]
    assert [w.rank for w in result.winners] == [1, 2, 3, 4]
    extra = result.winners[3]
    assert extra.score == 79.0
    assert extra.reason == (
        "Additional award, exempt from the country rule: score 79.00 is 1.00 below the last "
        "regular winner's 80.00, within the margin of 2.00."
    )
    assert result.winners[0].reason == (
        "Highest score in DE (91.00), place 1 of 3 regular awards (at most 1 per country)."
    )
    assert by_id(result)[pid(5)] == ("runner_up", "awards_exhausted")


def test_additional_award_goes_to_a_stronger_same_country_nominee_ranked_above() -> None:
    nominees = [nominee(1, "DE"), nominee(2, "DE"), nominee(3, "PL"), nominee(4, "LV")]
    result = rank(nominees, POINTS, points({1: [95], 2: [93], 3: [70], 4: [60]}), Rules())
    assert winners(result) == [(pid(1), False), (pid(2), True), (pid(3), False), (pid(4), False)]
    assert [w.rank for w in result.winners] == [1, 2, 3, 4]
    assert "is above the last regular winner's 60.00" in result.winners[1].reason


@pytest.mark.parametrize(
    ("value", "wins"),
    [(781, True), (780, True), (779, False)],
    ids=["just_inside", "boundary_equal_to_margin", "just_outside"],
)
def test_additional_award_only_within_the_margin_of_the_last_regular_winner(
    value: int, wins: bool
) -> None:
    nominees = [nominee(1, "DE"), nominee(2, "PL"), nominee(3, "LV"), nominee(4, "DE")]
    scores = [*points({1: [90], 2: [85], 3: [80]}), Score("j1", pid(4), "impact", value)]
    result = rank(nominees, POINTS, scores, Rules(tight_margin=2.0))

    assert len(result.winners) == (4 if wins else 3)
    if wins:
        assert winners(result)[3] == (pid(4), True)
    else:
        (runner_up,) = result.runners_up
        assert (runner_up.participant_id, runner_up.reason_code) == (pid(4), "below_margin")
        assert runner_up.reason == (
            "Best nominee without a regular award, but its score 77.90 is 2.10 below the last "
            "regular winner's 80.00, more than the margin of 2.00 for the additional award."
        )


def test_additional_award_margin_boundary_holds_for_inexact_scores() -> None:
    # 250/3 and 244/3 are not exact floats; their difference is exactly the margin
    criteria = (Criterion("a", 1.0, 0, 3),)
    nominees = [nominee(1, "DE"), nominee(2, "DE")]
    scores = [
        *(Score(f"j{j}", pid(1), "a", v) for j, v in enumerate([3, 3, 2, 2, 3, 2], start=1)),
        *(Score(f"j{j}", pid(2), "a", v) for j, v in enumerate([3, 2, 2, 2, 3, 2], start=1)),
    ]
    result = rank(nominees, criteria, scores, Rules(awards_count=1, tight_margin=100 / 18))
    assert winners(result) == [(pid(1), False), (pid(2), True)]


def test_never_more_than_one_additional_award() -> None:
    nominees = [
        nominee(1, "DE"),
        nominee(2, "DE"),
        nominee(3, "DE"),
        nominee(4, "PL"),
        nominee(5, "LV"),
        nominee(6, "PL"),
    ]
    scores = points({1: [90], 2: [89], 3: [88], 4: [85], 5: [80], 6: [79]})
    result = rank(nominees, POINTS, scores, Rules(tight_margin=50.0))

    assert sum(w.additional_award for w in result.winners) == 1
    assert winners(result) == [(pid(1), False), (pid(2), True), (pid(4), False), (pid(5), False)]
    outcome = by_id(result)
    assert outcome[pid(3)] == ("runner_up", "additional_used")
    assert outcome[pid(6)] == ("runner_up", "additional_used")
    reason = next(r.reason for r in result.runners_up if r.participant_id == pid(3))
    assert "the one additional award went to City 2 (DE, 89.00)" in reason
    assert "DE already has 1 regular award, the quota" in reason


def test_no_additional_award_when_the_round_does_not_allow_it() -> None:
    nominees = [nominee(1, "DE"), nominee(2, "PL"), nominee(3, "LV"), nominee(4, "DE")]
    scores = points({1: [90], 2: [85], 3: [80], 4: [80]})
    result = rank(nominees, POINTS, scores, Rules(additional_award_allowed=False))
    assert not any(w.additional_award for w in result.winners)
    assert len(result.winners) == 3
    (runner_up,) = result.runners_up  # tied with LV's 80.00 but DE is full either way
    assert (runner_up.participant_id, runner_up.reason_code) == (pid(4), "country_quota")
    assert "no additional award" in runner_up.reason


# --- ties -----------------------------------------------------------------------------------


def test_ties_are_broken_by_more_jurors_then_earlier_nomination_then_participant_id() -> None:
    nominees = [
        nominee(5, "DE", minutes=0),  # 2 jurors
        nominee(4, "PL", minutes=0),  # 3 jurors: first
        nominee(3, "LV", minutes=5),  # 2 jurors, nominated last
        nominee(2, "EE", minutes=0),  # 2 jurors, same time as 5 and 1, higher id than 1
        nominee(1, "FI", minutes=0),
    ]
    scores = points({5: [80, 80], 4: [80, 80, 80], 3: [80, 80], 2: [80, 80], 1: [90, 70]})
    result = rank(nominees, POINTS, scores, Rules(additional_award_allowed=False))

    assert {s.score for s in result.standings} == {80.0}
    assert [s.participant_id for s in result.standings] == [pid(4), pid(1), pid(2), pid(5), pid(3)]
    assert [s.position for s in result.standings] == [1, 2, 3, 4, 5]
    assert result.tie_break_rule == TIE_BREAK_RULE
    assert winners(result) == [(pid(4), False), (pid(1), False), (pid(2), False)]
    outcome = by_id(result)
    assert outcome[pid(5)] == ("runner_up", "tie_break")
    assert outcome[pid(3)] == ("runner_up", "tie_break")


def test_ties_are_stable_under_shuffled_input() -> None:
    nominees = [nominee(n, ["DE", "PL", "LV"][n % 3], minutes=n % 2) for n in range(1, 10)]
    scores = points({n: [80, 60] if n % 2 else [70, 70] for n in range(1, 10)})
    expected = rank(nominees, POINTS, scores, Rules(per_country=2))
    shuffler = random.Random(7)
    for _ in range(20):
        shuffler.shuffle(nominees)
        shuffler.shuffle(scores)
        assert rank(nominees, POINTS, scores, Rules(per_country=2)) == expected


def test_normalised_ties_are_broken_by_the_higher_raw_score() -> None:
    # j1: A 90, B 10; j2: A 20, B 30 -> normalised both 50, raw 55 vs 20
    scores = points({1: [10, 30], 2: [90, 20]})
    result = rank(
        [nominee(1, "DE"), nominee(2, "PL")], POINTS, scores, Rules(awards_count=1, normalise=True)
    )
    assert [(s.participant_id, s.score, s.raw_score) for s in result.standings] == [
        (pid(2), 50.0, 55.0),
        (pid(1), 50.0, 20.0),
    ]


def test_a_tie_lost_at_the_last_award_says_so() -> None:
    nominees = [nominee(1, "DE"), nominee(2, "PL", city="Gdynia", minutes=1), nominee(3, "LV")]
    scores = points({1: [80], 2: [80], 3: [70]})
    result = rank(nominees, POINTS, scores, Rules(awards_count=1, additional_award_allowed=False))
    assert winners(result) == [(pid(1), False)]
    loser = result.runners_up[0]
    assert (loser.participant_id, loser.reason_code) == (pid(2), "tie_break")
    assert loser.reason == (
        "Tied at 80.00 (raw 80.00, 1 juror) with City 1 (DE), which the tie-break rule puts first."
    )
    assert result.runners_up[1].reason_code == "awards_exhausted"


# --- reasons and refusals -------------------------------------------------------------------


def test_reasons_name_the_numbers() -> None:
    nominees = [
        nominee(1, "DE"),
        nominee(2, "DE"),
        nominee(3, "DE"),
        nominee(4, "PL"),
        nominee(5, "LV"),
    ]
    scores = points({1: [87.5], 2: [86], 3: [85], 4: [60], 5: [50]})

    result = rank(nominees, POINTS, scores, Rules(awards_count=2, tight_margin=1.5))

    assert [w.reason for w in result.winners] == [
        "Highest score in DE (87.50), place 1 of 2 regular awards (at most 1 per country).",
        "Additional award, exempt from the country rule: score 86.00 is above the last regular "
        "winner's 60.00, within the margin of 1.50.",
        "Highest score in PL (60.00), place 2 of 2 regular awards (at most 1 per country).",
    ]
    assert [(r.reason_code, r.reason) for r in result.runners_up] == [
        (
            "additional_used",
            "Score 85.00 is above the last regular winner's 60.00, within the margin of 1.50, "
            "but the one additional award went to City 2 (DE, 86.00); DE already has 1 regular "
            "award, the quota.",
        ),
        (
            "awards_exhausted",
            "Score 50.00 (position 5) came after all 2 regular awards were given, the last "
            "with 60.00; the one additional award went to City 2 (DE, 86.00).",
        ),
    ]

    strict = rank(nominees, POINTS, scores, Rules(awards_count=2, additional_award_allowed=False))
    assert [(r.reason_code, r.reason) for r in strict.runners_up][:2] == [
        (
            "country_quota",
            "Score 86.00 (position 2), but DE already has 1 regular award, the quota per "
            "country; this round gives no additional award.",
        ),
        (
            "country_quota",
            "Score 85.00 (position 3), but DE already has 1 regular award, the quota per "
            "country; this round gives no additional award.",
        ),
    ]


def test_second_regular_winner_of_a_country_is_called_second_highest() -> None:
    nominees = [nominee(1, "DE"), nominee(2, "DE"), nominee(3, "PL")]
    result = rank(nominees, POINTS, points({1: [90], 2: [80], 3: [70]}), Rules(per_country=2))
    assert result.winners[1].reason == (
        "2nd highest score in DE (80.00), place 2 of 3 regular awards (at most 2 per country)."
    )


@pytest.mark.parametrize(
    ("criteria", "rules", "nominees", "scores", "rule"),
    [
        ((), Rules(), [], [], "no_criteria"),
        ((Criterion("a", 0.0, 0, 10),), Rules(), [], [], "weight_not_positive"),
        ((Criterion("a", 1.0, 5, 5),), Rules(), [], [], "empty_scale"),
        (POINTS * 2, Rules(), [], [], "duplicate_criterion"),
        (POINTS, Rules(awards_count=0), [], [], "too_few_awards"),
        (POINTS, Rules(per_country=0), [], [], "quota_not_positive"),
        (POINTS, Rules(tight_margin=-1.0), [], [], "margin_negative"),
        (POINTS, Rules(), [nominee(1, "DE"), nominee(1, "PL")], [], "duplicate_nominee"),
        (
            POINTS,
            Rules(),
            [Nominee(pid(1), "Kiel", "DE", datetime(2025, 5, 1))],
            [],
            "naive_datetime",
        ),
        (POINTS, Rules(), [nominee(1, "DE")], [Score("j", pid(1), "impact", 1001)], "out_of_scale"),
        (
            POINTS,
            Rules(),
            [nominee(1, "DE")],
            [Score("j", pid(1), "impact", 1), Score("j", pid(1), "impact", 2)],
            "conflicting_scores",
        ),
    ],
)
def test_bad_input_is_refused(
    criteria: tuple[Criterion, ...],
    rules: Rules,
    nominees: list[Nominee],
    scores: list[Score],
    rule: str,
) -> None:
    with pytest.raises(Invalid) as refused:
        rank(nominees, criteria, scores, rules)
    assert refused.value.rule == rule


# --- properties over generated juries --------------------------------------------------------

COUNTRIES = ("DK", "EE", "FI", "DE", "IS", "LV", "LT", "NO", "PL", "SE")


@st.composite
def rounds(
    draw: st.DrawFn,
) -> tuple[list[Nominee], list[Criterion], list[Score], Rules, list[tuple[str, uuid.UUID]]]:
    criteria = [
        Criterion(
            f"c{i}",
            draw(st.sampled_from([0.5, 1.0, 2.0, 3.0]) | st.floats(0.1, 10.0)),
            lo := draw(st.integers(0, 3)),
            lo + draw(st.integers(1, 10)),
        )
        for i in range(draw(st.integers(1, 4)))
    ]
    jurors = [f"juror-{i}" for i in range(draw(st.integers(2, 8)))]
    countries = draw(st.lists(st.sampled_from(COUNTRIES), min_size=1, max_size=5, unique=True))
    ids = draw(st.lists(st.uuids(), min_size=1, max_size=15, unique=True))
    zones = st.sampled_from([UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-1))])
    nominees = [
        Nominee(
            participant_id,
            f"City {i}",
            draw(st.sampled_from(countries)),
            (T0 + timedelta(minutes=draw(st.integers(0, 3)))).astimezone(draw(zones)),
        )
        for i, participant_id in enumerate(ids)
    ]
    scores: list[Score] = []
    for juror in jurors:
        for n in nominees:
            kind = draw(st.sampled_from(["full", "full", "full", "partial", "none"]))
            if kind == "none":
                continue
            chosen = criteria if kind == "full" else criteria[: len(criteria) - 1]
            scores.extend(
                Score(juror, n.participant_id, c.criterion_id, draw(st.integers(*_scale(c))))
                for c in chosen
            )
    pairs = [(j, n.participant_id) for j in jurors for n in nominees]
    excluded = draw(st.lists(st.sampled_from(pairs), max_size=len(pairs) // 3, unique=True))
    rules = Rules(
        awards_count=draw(st.integers(1, 5)),
        per_country=draw(st.integers(1, 3)),
        additional_award_allowed=draw(st.booleans()),
        tight_margin=draw(st.sampled_from([0.0, 2.0, 5.0]) | st.floats(0.0, 30.0)),
        normalise=draw(st.booleans()),
    )
    return nominees, criteria, scores, rules, excluded


def _scale(c: Criterion) -> tuple[int, int]:
    return c.scale_min, c.scale_max


Round = tuple[list[Nominee], list[Criterion], list[Score], Rules, list[tuple[str, uuid.UUID]]]
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _run(case: Round) -> Result:
    nominees, criteria, scores, rules, excluded = case
    return rank(nominees, criteria, scores, rules, excluded=excluded)


def restated_raw_scores(case: Round) -> dict[uuid.UUID, tuple[float, int]]:
    """Mean over jurors with a complete, non-excluded set of their weighted score, plain floats."""
    nominees, criteria, scores, _, excluded = case
    sets: dict[tuple[str, uuid.UUID], dict[str, int]] = {}
    for s in scores:
        if (s.juror_id, s.participant_id) not in excluded:
            sets.setdefault((s.juror_id, s.participant_id), {})[s.criterion_id] = s.value
    total_weight = sum(c.weight for c in criteria)
    per_nominee: dict[uuid.UUID, list[float]] = {n.participant_id: [] for n in nominees}
    for (_, participant), values in sets.items():
        if len(values) == len(criteria):
            per_nominee[participant].append(
                sum(
                    c.weight * (values[c.criterion_id] - c.scale_min) / (c.scale_max - c.scale_min)
                    for c in criteria
                )
                / total_weight
                * 100
            )
    return {p: (sum(v) / len(v) if v else 0.0, len(v)) for p, v in per_nominee.items()}


@PROPERTY
@given(rounds())
def test_property_quota_and_award_counts(case: Round) -> None:
    _, _, _, rules, _ = case
    result = _run(case)
    country = {s.participant_id: s.country for s in result.standings}
    regular = [w for w in result.winners if not w.additional_award]
    assert len(regular) <= rules.awards_count
    assert max(Counter(country[w.participant_id] for w in regular).values(), default=0) <= (
        rules.per_country
    )
    assert sum(w.additional_award for w in result.winners) <= 1
    if not rules.additional_award_allowed:
        assert not any(w.additional_award for w in result.winners)
    assert [w.rank for w in result.winners] == list(range(1, len(result.winners) + 1))


@PROPERTY
@given(rounds())
def test_property_additional_award_within_margin_of_the_last_regular_winner(case: Round) -> None:
    _, _, _, rules, _ = case
    result = _run(case)
    position = {s.participant_id: s.position for s in result.standings}
    regular = [w for w in result.winners if not w.additional_award]
    extra = [w for w in result.winners if w.additional_award]
    if extra:
        assert len(regular) == rules.awards_count
        last = max(regular, key=lambda w: position[w.participant_id])
        assert extra[0].score >= last.score - rules.tight_margin - EPS


@PROPERTY
@given(rounds())
def test_property_winners_match_the_restated_rule(case: Round) -> None:
    """Steps 3-4 restated over the final order; the order itself is by score, unscored last."""
    _, _, _, rules, _ = case
    result = _run(case)
    scored = [s for s in result.standings if s.jurors]
    assert result.standings[: len(scored)] == tuple(scored)
    assert all(a.score >= b.score - EPS for a, b in itertools.pairwise(scored))

    regular: list[uuid.UUID] = []
    taken: Counter[str] = Counter()
    for s in scored:
        if len(regular) < rules.awards_count and taken[s.country] < rules.per_country:
            regular.append(s.participant_id)
            taken[s.country] += 1
    extra = None
    if rules.additional_award_allowed and len(regular) == rules.awards_count:
        rest = [s for s in scored if s.participant_id not in regular]
        last = next(s for s in scored if s.participant_id == regular[-1])
        if rest and rest[0].score >= last.score - rules.tight_margin - EPS:
            extra = rest[0].participant_id
    assert {w.participant_id for w in result.winners if not w.additional_award} == set(regular)
    assert [w.participant_id for w in result.winners if w.additional_award] == (
        [extra] if extra else []
    )
    assert [w.participant_id for w in result.winners] == [
        s.participant_id for s in result.standings if s.participant_id in {*regular, extra}
    ]


@PROPERTY
@given(rounds())
def test_property_every_winner_has_a_score_and_every_nominee_is_accounted_for(
    case: Round,
) -> None:
    nominees = case[0]
    result = _run(case)
    jurors = {s.participant_id: s.jurors for s in result.standings}
    assert all(jurors[w.participant_id] > 0 for w in result.winners)
    everyone = [w.participant_id for w in result.winners] + [
        r.participant_id for r in result.runners_up
    ]
    assert sorted(everyone) == sorted(n.participant_id for n in nominees)
    assert [s.position for s in result.standings] == list(range(1, len(nominees) + 1))
    for r in result.runners_up:
        assert r.reason_code in RUNNER_UP_REASONS
        assert (r.reason_code == "no_scores") == (jurors[r.participant_id] == 0)
        assert r.reason.endswith(".")
    assert all(w.reason.endswith(".") for w in result.winners)


@PROPERTY
@given(rounds())
def test_property_scores_within_0_to_100_and_raw_scores_as_restated(case: Round) -> None:
    _, _, _, rules, _ = case
    result = _run(case)
    restated = restated_raw_scores(case)
    for s in result.standings:
        assert 0.0 <= s.score <= 100.0
        assert 0.0 <= s.raw_score <= 100.0
        raw, jurors = restated[s.participant_id]
        assert s.jurors == jurors
        assert s.raw_score == pytest.approx(raw, abs=1e-9)
        if not rules.normalise:
            assert s.score == s.raw_score
    for w in result.winners:
        assert 0.0 <= w.score <= 100.0


@PROPERTY
@given(rounds(), st.randoms(use_true_random=False))
def test_property_result_independent_of_input_order(case: Round, shuffler: random.Random) -> None:
    nominees, criteria, scores, rules, excluded = case
    expected = _run(case)
    for items in (nominees, criteria, scores, excluded):
        shuffler.shuffle(items)
    assert rank(nominees, criteria, scores, rules, excluded=excluded) == expected


def test_country_codes_are_compared_case_insensitively() -> None:
    nominees = [nominee(1, "DE"), nominee(2, "de"), nominee(3, "PL")]
    result = rank(
        nominees, POINTS, points({1: [90], 2: [80], 3: [70]}), Rules(additional_award_allowed=False)
    )
    assert winners(result) == [(pid(1), False), (pid(3), False)]
    assert by_id(result)[pid(2)] == ("runner_up", "country_quota")


def test_a_gap_just_beyond_the_margin_is_not_printed_as_the_margin() -> None:
    fine = (Criterion("impact", 1.0, 0, 100_000),)  # value v scores v / 1000
    nominees = [nominee(1, "DE"), nominee(2, "DE")]
    scores = [Score("j1", pid(1), "impact", 80_000), Score("j1", pid(2), "impact", 77_996)]
    result = rank(nominees, fine, scores, Rules(awards_count=1))
    (runner_up,) = result.runners_up
    assert runner_up.reason_code == "below_margin"
    assert "is 2.004 below the last regular winner's 80.00" in runner_up.reason


def test_a_tie_lost_for_the_additional_award_says_so() -> None:
    nominees = [nominee(1, "DE"), nominee(2, "DE"), nominee(3, "DE", minutes=1)]
    result = rank(nominees, POINTS, points({1: [90], 2: [89], 3: [89]}), Rules(awards_count=1))
    assert winners(result) == [(pid(1), False), (pid(2), True)]
    assert by_id(result)[pid(3)] == ("runner_up", "tie_break")
