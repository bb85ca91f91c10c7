"""Mentor matching time, as a ratio to the bare assignment solver in the same run.

Baseline: ``scipy.optimize.linear_sum_assignment`` on a random matrix of the
shape ``match()`` builds (participants x free mentor slots). Measured: the whole
``match()`` call on a synthetic BSR cohort: pair matrices, slot expansion,
solving, explanations. Absolute times depend on the machine; the ratio does
less. Most of it is the solver itself: a uniform random matrix is an easy
instance, while the cohort's matrix (few distinct values, many ties) makes the
solver search longer; building the matrices and explanations is the rest.
The target is a cohort of 1,000 participants and 200 mentors matched in under
2 s (reported, never asserted).

    uv run python bench/matching.py [--participants 1000] [--mentors 200] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

from pearls_mentoring.domain.matching import Mentor, Participant, Weights, match
from pearls_shared.events.common import BSR_COUNTRIES, DEFAULT_THEMES

TARGET_S = 2.0
LANGUAGES = ("de", "et", "lv", "lt", "pl", "sv", "fi", "da", "is", "no")


def cohort(participants: int, mentors: int, seed: int) -> tuple[list[Participant], list[Mentor]]:
    """Twenty cities per country, 40 % of mentors pearl cities, half speak English, capacity 5-8."""
    rng = random.Random(seed)
    cities = {c: [f"{c.lower()}-{i}" for i in range(20)] for c in BSR_COUNTRIES}

    def uid() -> uuid.UUID:
        return uuid.UUID(int=rng.getrandbits(128), version=4)

    def speaks(most: int) -> frozenset[str]:
        langs = set(rng.sample(LANGUAGES, rng.randint(1, most)))
        return frozenset(langs | {"en"}) if rng.random() < 0.5 else frozenset(langs)

    ms = []
    for _ in range(mentors):
        country = rng.choice(BSR_COUNTRIES)
        ms.append(
            Mentor(
                id=uid(),
                country=country,
                city_key=rng.choice(cities[country]) if rng.random() < 0.4 else None,
                languages=speaks(3),
                themes=frozenset(rng.sample(DEFAULT_THEMES, rng.randint(1, 4))),
                capacity=rng.randint(5, 8),
            )
        )
    ps = [
        Participant(
            id=uid(),
            country=(country := rng.choice(BSR_COUNTRIES)),
            city_key=rng.choice(cities[country]),
            languages=speaks(2),
            themes=frozenset(rng.sample(DEFAULT_THEMES, rng.randint(1, 3))),
        )
        for _ in range(participants)
    ]
    return ps, ms


def timed(fn: Callable[..., object], *args: object) -> float:
    started = time.perf_counter()
    fn(*args)
    return time.perf_counter() - started


def summary(times: list[float]) -> dict[str, float]:
    return {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times)}


def measure(participants: int, mentors: int, rounds: int, seed: int = 1) -> dict[str, object]:
    ps, ms = cohort(participants, mentors, seed)
    slots = sum(m.capacity for m in ms)
    weights = Weights()
    matrix = np.random.default_rng(seed).random((len(ps), slots))
    timed(match, ps[:50], ms[:10], weights)  # warm-up: imports and first-call costs
    baseline = [timed(linear_sum_assignment, matrix, True) for _ in range(rounds)]
    measured = [timed(match, ps, ms, weights) for _ in range(rounds)]
    result = match(ps, ms, weights)
    median = statistics.median(measured)
    return {
        "participants": len(ps),
        "mentors": len(ms),
        "slots": slots,
        "rounds": rounds,
        "match": summary(measured),
        "baseline": summary(baseline),
        "ratio": median / statistics.median(baseline),
        "matched": len(result.matches),
        "target_s": TARGET_S,
        "target_met": median < TARGET_S,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--participants", type=int, default=1000)
    parser.add_argument("--mentors", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()

    ps, ms = cohort(args.participants, args.mentors, args.seed)
    slots = sum(m.capacity for m in ms)
    weights = Weights()
    matrix = np.random.default_rng(args.seed).random((len(ps), slots))
    print(
        f"cohort: {len(ps)} participants, {len(ms)} mentors, {slots} slots"
        f" ({len(ps)} x {slots} matrix)"
    )

    timed(match, ps[:50], ms[:10], weights)  # warm-up: imports and first-call costs
    baseline: list[float] = []
    measured: list[float] = []
    for round_ in range(1, args.rounds + 1):
        base = timed(linear_sum_assignment, matrix, True)
        full = timed(match, ps, ms, weights)
        baseline.append(base)
        measured.append(full)
        print(f"round {round_}: baseline {base:.3f} s, match {full:.3f} s, ratio {full / base:.2f}")

    result = match(ps, ms, weights)
    ratio = statistics.median(measured) / statistics.median(baseline)
    met = statistics.median(measured) < TARGET_S
    print(
        f"match(): median {statistics.median(measured):.3f} s"
        f" (min {min(measured):.3f}, max {max(measured):.3f}) over {args.rounds} rounds;"
        f" bare solver median {statistics.median(baseline):.3f} s; ratio {ratio:.2f}"
    )
    print(
        f"matched {len(result.matches)}, unmatched {len(result.unmatched)},"
        f" total score {result.total_score:.3f}"
    )
    print(f"target < {TARGET_S:.0f} s: {'met' if met else 'NOT met'}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "participants": len(ps),
                    "mentors": len(ms),
                    "slots": slots,
                    "rounds": args.rounds,
                    "match": summary(measured),
                    "baseline": summary(baseline),
                    "ratio": ratio,
                    "matched": len(result.matches),
                    "target_s": TARGET_S,
                    "target_met": met,
                },
                indent=2,
            )
            + "\n"
        )
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
