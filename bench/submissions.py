"""CPU per submission of one applications process, and its rate under a closed loop.

Starts ``python -m pearls_applications`` (uvicorn, JSON logs, its relay) on a fresh
database, creates a call, posts ``--warmup`` applications, then ``--n`` per round with
``--concurrency`` requests in flight (each application its own place and addresses,
all in one call, so later rounds show whether the cost grows with the call). A round
ends when the relay has published every event it caused. Reported per round: requests/s,
the server's CPU (user + system, every thread, from /proc) per submission, the load
average. The client runs in this process: on a small machine it may be what limits the
rate, so CPU per submission is the number to compare (1000 / it is the ceiling of one
process in submissions/s).

    uv run python bench/submissions.py [--n 1500] [--rounds 2] [--concurrency 16]
        [--profile var/submissions.txt]      # py-spy (raw) on the server while it runs
        [--src /path/to/other/checkout]      # run another checkout's code, to compare

Kafka and PostgreSQL: KAFKA_BOOTSTRAP_SERVERS and PEARLS_TEST_POSTGRES_DSN if set, else
the local launchers (pearls-infra) start throwaway ones.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil
from common import infrastructure, latency_summary

TOKEN = "bench-coordinator-token-0123456789"


def application(name: str, email: str) -> dict[str, Any]:
    return {
        "city_name": name,
        "place_kind": "city",
        "country": "LV",
        "population": 20_000,
        "organisation_name": f"Town of {name}",
        "organisation_type": "municipality",
        "contacts": [
            {"name": "Bench Contact", "email": email, "language": "en", "role": "primary"},
            {"name": "Other Contact", "email": "o" + email, "language": "lv", "role": "backup"},
        ],
        "themes": ["innovation_economy"],
        "languages": ["lv", "en"],
        "motivation": "Culture keeps young people and newcomers here.",
        "challenges": "An ageing population and few places where people meet.",
        "commitments": "A cultural coordinator half-time and a yearly budget.",
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def post_many(
    client: httpx.AsyncClient, call_id: str, tag: str, n: int, concurrency: int
) -> dict[str, Any]:
    numbers = iter(range(n))
    statuses: dict[str, int] = {}
    latencies: list[float] = []

    async def worker() -> None:
        for i in numbers:
            started = time.perf_counter()
            response = await client.post(
                f"/calls/{call_id}/applications",
                json=application(f"Bench {tag} {i}", f"b{tag}-{i}@bench.example"),
            )
            latencies.append(time.perf_counter() - started)
            key = str(response.status_code)
            statuses[key] = statuses.get(key, 0) + 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return {"statuses": statuses, "http_latency": latency_summary(latencies)}


async def drained(dsn: str) -> None:
    """Until the relay has published every event written so far."""
    conn = await asyncpg.connect(dsn)
    try:
        while await conn.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL"):
            await asyncio.sleep(0.1)
    finally:
        await conn.close()


def _cpu(proc: psutil.Process) -> tuple[float, float]:
    times = proc.cpu_times()
    return times.user + times.system, times.system


def _start_server(args: argparse.Namespace, bootstrap: str, dsn: str, port: int) -> Any:
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "PEARLS_APPLICATIONS_DATABASE_URL": dsn,
        "PEARLS_APPLICATIONS_COORDINATORS": json.dumps([{"id": "bench", "token": TOKEN}]),
    }
    if args.src:
        src = Path(args.src).resolve()
        env["PYTHONPATH"] = f"{src}/services/applications/src:{src}/shared/src"
        old = src / "services" / "applications" / "migrations"
        if old.is_dir():  # a checkout from before the migrations moved into the package
            env["PEARLS_APPLICATIONS_MIGRATIONS_DIR"] = str(old)
    log_path = Path(args.log)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("w") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "pearls_applications", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def _start_spy(pid: int, out: str) -> Any:
    spy = Path(sys.executable).parent / "py-spy"
    return subprocess.Popen(
        [str(spy), "record", "--pid", str(pid), "--format", "raw", "--rate", "200",
         "--nonblocking", "-o", out],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip


async def run(args: argparse.Namespace, bootstrap: str, dsn: str) -> list[dict[str, Any]]:
    port = _free_port()
    server = _start_server(args, bootstrap, dsn, port)
    proc = psutil.Process(server.pid)
    rounds = []
    try:
        limits = httpx.Limits(max_connections=args.concurrency)
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", timeout=60, limits=limits
        ) as client:
            for _ in range(300):
                ready = None
                try:
                    ready = await client.get("/health/ready")
                except httpx.HTTPError:
                    pass
                if ready is not None and ready.status_code == 200:
                    break
                await asyncio.sleep(0.2)
            else:
                raise RuntimeError(f"the service did not get ready; see {args.log}")
            created = await client.post(
                "/calls",
                json={
                    "title": {"en": "Bench"},
                    "description": {"en": "Bench."},
                    "closes_at": (datetime.now(UTC) + timedelta(days=1)).isoformat(),
                    "places": 10,
                    "population_min": 1000,
                    "population_max": 250_000,
                    "rubric": {"criteria": [{"key": "r", "label": {"en": "R"}, "weight": 1}]},
                },
                headers={"Authorization": f"Bearer {TOKEN}"},
            )
            created.raise_for_status()
            call_id = created.json()["call_id"]
            tag = uuid.uuid4().hex[:6]
            await post_many(client, call_id, f"{tag}w", args.warmup, args.concurrency)
            await drained(dsn)
            spy = None
            if args.profile:
                spy = _start_spy(server.pid, args.profile)
                await asyncio.sleep(1.0)
            for number in range(args.rounds):
                in_call = args.warmup + number * args.n
                (cpu0, sys0), started = _cpu(proc), time.perf_counter()
                out = await post_many(client, call_id, f"{tag}{number}", args.n, args.concurrency)
                wall = time.perf_counter() - started
                await drained(dsn)  # the relay's work for these submissions counts too
                cpu1, sys1 = _cpu(proc)
                rounds.append(
                    {
                        "applications_in_call_before": in_call,
                        "submissions": args.n,
                        "rate_per_s": round(args.n / wall, 1),
                        "cpu_ms_per_submission": round(1000 * (cpu1 - cpu0) / args.n, 2),
                        "of_which_system_ms": round(1000 * (sys1 - sys0) / args.n, 2),
                        "loadavg_1_5_15": [round(x, 2) for x in os.getloadavg()],
                        **out,
                    }
                )
                print(json.dumps(rounds[-1]), file=sys.stderr, flush=True)
            if spy is not None:
                spy.send_signal(2)
                spy.wait(timeout=60)
    finally:
        server.terminate()
        server.wait(timeout=60)
    return rounds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1500, help="submissions per round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--profile", help="py-spy raw output file")
    parser.add_argument("--src", help="another checkout whose code the server runs")
    parser.add_argument("--log", default="var/bench-submissions.log", help="the server's log")
    args = parser.parse_args()
    with infrastructure() as (bootstrap, server):
        dsn = server.new_database("bench_submissions")
        rounds = asyncio.run(run(args, bootstrap, dsn))
    print(json.dumps({"section": "submissions", "rounds": rounds}, indent=2))


if __name__ == "__main__":
    main()
