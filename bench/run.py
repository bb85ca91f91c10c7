"""`make bench`: every benchmark in one run on this machine, written to bench/results/.

    uv run python bench/run.py [--quick] [--out bench/results] [--only relay,matching]

Sections: (1) the Kafka limit (raw producer, raw consume-and-commit), (2) a
Pearls consumer with the inbox, per-message and batched, (3) the outbox relay
(rows/s and lag), (4) end to end through the four services as processes (open
loop: saturating rate, then latency, CPU and RSS at half of it), (5) mentor
matching. (1)-(3) share one Kafka and PostgreSQL; (4) starts the whole system
with the same launchers. Results: results.json, results.md, results.png.
Targets are reported, never asserted. ``--quick`` runs tiny sizes (a smoke run:
the numbers mean nothing). The harness logs as the services do (JSON, INFO)
into var/bench.log; the end-to-end system's logs stay in var/bench-e2e-*/logs;
progress goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import consumer_throughput
import end_to_end
import matching
import relay_throughput
import report
from common import infrastructure, machine

from pearls_shared.cli import tune_garbage_collector
from pearls_shared.logging import configure_logging

VAR = Path(__file__).resolve().parent.parent / "var"  # ignored by git, as the demo's
SIZES = {
    "full": {
        "events": 30000,
        "pearls_events": 2000,
        "batch_size": 500,
        "relay_events": 10000,
        "relay_rounds": 3,
        "lag_seconds": 10.0,
        "e2e_start": 5.0,
        "e2e_max": 2000.0,
        "e2e_step_s": 8.0,
        "e2e_half_s": 20.0,
        "participants": 1000,
        "mentors": 200,
        "match_rounds": 3,
    },
    "quick": {
        "events": 300,
        "pearls_events": 50,
        "batch_size": 50,
        "relay_events": 200,
        "relay_rounds": 1,
        "lag_seconds": 1.0,
        "e2e_start": 5.0,
        "e2e_max": 8.0,
        "e2e_step_s": 1.0,
        "e2e_half_s": 1.0,
        "participants": 60,
        "mentors": 12,
        "match_rounds": 1,
    },
}


def say(text: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {text}", file=sys.__stderr__, flush=True)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    size = SIZES["quick" if args.quick else "full"]
    only = set(args.only.split(",")) if args.only else set(report.SECTIONS)
    results: dict[str, Any] = {"machine": machine(), "quick": args.quick, "sizes": size}
    if args.note:
        results["note"] = args.note
    if only & {"kafka_limit", "consumer", "relay"}:
        with infrastructure() as (bootstrap, server):
            if only & {"kafka_limit", "consumer"}:
                say("(1) Kafka limit and (2) Pearls consumer ...")
                measured = await consumer_throughput.measure(
                    bootstrap,
                    server.new_database_async,
                    events=size["events"],
                    pearls_events=size["pearls_events"],
                    batch_size=size["batch_size"],
                )
                results["kafka_limit"] = measured["limit"]
                results["consumer"] = {
                    k: measured[k] for k in ("per_message", "batched", "batched_many")
                }
                say(f"    {measured}")
            if "relay" in only:
                say("(3) outbox relay ...")
                results["relay"] = await relay_throughput.measure(
                    bootstrap,
                    server.new_database_async,
                    events=size["relay_events"],
                    rounds=size["relay_rounds"],
                    batch=200,
                    lag_seconds=size["lag_seconds"],
                )
                say(f"    {results['relay']}")
    if "end_to_end" in only:
        say("(4) end to end ...")
        results["end_to_end"] = await end_to_end.measure(
            start_rate=size["e2e_start"],
            max_rate=size["e2e_max"],
            step_s=size["e2e_step_s"],
            half_s=size["e2e_half_s"],
            with_profile=args.profile,
            out_dir=VAR,
            say=lambda t: say(f"    {t}"),
        )
    if "matching" in only:
        say("(5) matching ...")
        results["matching"] = matching.measure(
            size["participants"], size["mentors"], size["match_rounds"]
        )
        say(f"    {results['matching']}")
    results["machine_end"] = machine()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--only", default="", help=f"comma-separated: {','.join(report.SECTIONS)}")
    parser.add_argument("--profile", action="store_true", help="py-spy the services at half load")
    parser.add_argument("--note", default="", help="a line for the report (e.g. machine load)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    # Log as the services do (JSON, INFO), into a file: the cost stays, the noise goes.
    VAR.mkdir(exist_ok=True)
    log = (VAR / "bench.log").open("w")
    sys.stdout = sys.stderr = log
    configure_logging("bench", "INFO", json=True)
    tune_garbage_collector()  # as in a service process: the same for baseline and Pearls
    try:
        results = asyncio.run(run(args))
    finally:
        sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
        log.close()
    for path in report.write(results, args.out):
        print(f"wrote {path}")
    print((args.out / "results.md").read_text())


if __name__ == "__main__":
    main()
