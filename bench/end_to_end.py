"""End to end: submissions through the applications API until the receipt e-mail
reaches the SMTP sink, with the four services as real processes.

The system is the one ``pearls-demo`` runs (``pearls_demo.system.System``):
PostgreSQL, Kafka, the SMTP sink and the four services, each its own process.
An OPEN-LOOP load generator sends submissions on a fixed schedule (request i at
``t0 + i / rate``) whether or not earlier ones were answered, so queueing shows
as latency instead of slowing the generator down. Each submission has its own
contact address; the sink names every captured message by the time it stored
it, so a receipt's latency is that time minus the request's scheduled time.

1. Saturation: the rate steps up (x1.5) until the receipts stop following
   (fewer than 90 % of a step's receipts arrive within 1 s of its end), latency
   explodes (receipt p99 over 1 s) or requests fail. The saturating rate is the
   higher of the last rate followed and the receipt throughput measured in the
   first step that was not.
2. Half load: the same at half the saturating rate (once the backlog of the
   step before has drained), longer; receipt latency
   p50/p95/p99 and the HTTP answer's, CPU (percent of one core) and peak RSS of
   every process (services, SMTP sink, Kafka, PostgreSQL, the generator).

The notifications service sends at most ``rate_limit_per_minute`` e-mails a
minute to its mail server (default 120: a provider's sending limit, by
design). That limit alone would cap the receipts at 2/s, so the benchmark
lifts it (``PEARLS_NOTIFICATIONS_RATE_LIMIT_PER_MINUTE``, recorded in the
results) to measure what the services themselves sustain.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import subprocess
import sys
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psutil
from common import latency_summary

from pearls_demo.scenario import call_request
from pearls_demo.system import System

TARGET_RATE = 1000
TARGET_P99_MS = 250
CAPTURED = re.compile(r"captured (\d+)-\w+\.eml for (.+)$")


class MailLog:
    """Reads the SMTP sink's log as it grows: capture time (epoch s) by recipient."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.captured: dict[str, float] = {}

    def read(self) -> dict[str, float]:
        with contextlib.suppress(FileNotFoundError), self.path.open("rb") as f:
            f.seek(self.offset)
            data = f.read()
            end = data.rfind(b"\n") + 1
            self.offset += end
            for line in data[:end].decode(errors="replace").splitlines():
                m = CAPTURED.search(line)
                if m:
                    for rcpt in m.group(2).split(", "):
                        self.captured.setdefault(rcpt.strip(), int(m.group(1)) / 1e9)
        return self.captured


def application(name: str, email: str) -> dict[str, Any]:
    return {
        "city_name": name,
        "place_kind": "city",
        "country": "LV",
        "population": 20_000,
        "organisation_name": f"Town of {name}",
        "organisation_type": "municipality",
        "contacts": [
            {"name": "Bench Contact", "email": email, "language": "en", "role": "primary"}
        ],
        "themes": ["innovation_economy"],
        "languages": ["lv", "en"],
        "motivation": "Culture keeps young people and newcomers here.",
        "challenges": "An ageing population and few places where people meet.",
        "commitments": "A cultural coordinator half-time and a yearly budget.",
    }


class Processes:
    """CPU and peak RSS of the system's processes, sampled while load runs."""

    def __init__(self, system: System) -> None:
        self.groups: dict[str, list[psutil.Process]] = {}
        for child in system.children:
            if child.process is not None:
                self.groups[child.name] = [psutil.Process(child.process.pid)]
        me = psutil.Process()
        known = {p.pid for ps in self.groups.values() for p in ps}
        # PostgreSQL daemonises away from its parent: found by its data directory.
        workdir = str(system.workdir)
        candidates = me.children(recursive=True) + [
            p for p in psutil.process_iter() if _mentions(p, workdir)
        ]
        for p in candidates:
            if p.pid in known:
                continue
            known.add(p.pid)
            with contextlib.suppress(psutil.Error):
                cmd = " ".join(p.cmdline())
                if "kafka.Kafka" in cmd:
                    self.groups.setdefault("kafka", []).append(p)
                elif p.name().startswith("postgres"):
                    self.groups.setdefault("postgresql", []).append(p)
        self.groups["load-generator"] = [me]
        self.peak_rss: Counter[str] = Counter()
        self._cpu0: dict[str, float] = {}
        self._t0 = 0.0

    def _members(self, name: str) -> list[psutil.Process]:
        out = []
        for p in self.groups[name]:
            out.append(p)
            if name != "load-generator":
                with contextlib.suppress(psutil.Error):
                    out.extend(p.children(recursive=True))
        return out

    def _cpu(self, name: str) -> float:
        total = 0.0
        for p in self._members(name):
            with contextlib.suppress(psutil.Error):
                t = p.cpu_times()
                total += t.user + t.system
        return total

    def sample(self) -> None:
        for name in self.groups:
            rss = 0
            for p in self._members(name):
                with contextlib.suppress(psutil.Error):
                    rss += p.memory_info().rss
            self.peak_rss[name] = max(self.peak_rss[name], rss)

    def start_window(self) -> None:
        self._t0 = time.perf_counter()
        self._cpu0 = {name: self._cpu(name) for name in self.groups}

    def window(self) -> dict[str, dict[str, float]]:
        wall = time.perf_counter() - self._t0
        return {
            name: {
                "cpu_percent_of_one_core": round(
                    100 * (self._cpu(name) - self._cpu0.get(name, 0.0)) / wall, 1
                ),
                "peak_rss_mb": round(self.peak_rss[name] / 2**20, 1),
            }
            for name in self.groups
        }


def _mentions(p: psutil.Process, text: str) -> bool:
    try:
        return any(text in a for a in p.cmdline())
    except psutil.Error:
        return False


class Load:
    def __init__(self, system: System, client: httpx.AsyncClient, call_id: str) -> None:
        self.system = system
        self.client = client
        self.call_id = call_id
        assert system.sink is not None
        self.mail = MailLog(system.sink.log_path)
        self.run_id = uuid.uuid4().hex[:6]
        self.counter = 0
        self.accepted: set[str] = set()

    async def drain(self, within: float) -> bool:
        """Wait until every accepted submission's receipt has arrived."""
        deadline = time.perf_counter() + within
        while time.perf_counter() < deadline:
            if self.accepted <= self.mail.read().keys():
                return True
            await asyncio.sleep(0.25)
        return False

    async def _submit(self, i: int, scheduled: float, out: dict[str, Any]) -> None:
        email = f"b{self.run_id}-{i}@bench.example"
        try:
            response = await self.client.post(
                f"/calls/{self.call_id}/applications",
                json=application(f"Bench {self.run_id} {i}", email),
            )
            status = response.status_code
        except httpx.HTTPError as exc:
            status = type(exc).__name__
        out["http"].append(time.time() - scheduled)
        out["status"][str(status)] += 1
        if status == 201:
            out["emails"][email] = scheduled
            self.accepted.add(email)

    async def step(
        self, rate: float, seconds: float, sampler: Processes | None = None
    ) -> dict[str, Any]:
        """Send at ``rate``/s for ``seconds`` (open loop), then wait for the receipts."""
        n = max(1, int(rate * seconds))
        in_call = len(self.accepted)  # applications already in the call (all go to one)
        out: dict[str, Any] = {"http": [], "status": Counter(), "emails": {}}
        tasks = []
        t0_wall, t0 = time.time(), time.perf_counter()
        next_sample = t0
        for k in range(n):
            i = self.counter
            self.counter += 1
            at = t0 + k / rate
            delay = at - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(self._submit(i, t0_wall + k / rate, out)))
            if sampler is not None and time.perf_counter() >= next_sample:
                sampler.sample()
                next_sample += 0.5
        send_end_wall = time.time()
        await asyncio.gather(*tasks)
        # Wait for the receipts: until all are in, or they stop coming.
        deadline = time.perf_counter() + max(30.0, 3 * seconds)
        while time.perf_counter() < deadline:
            got = self.mail.read()
            if all(e in got for e in out["emails"]):
                break
            if sampler is not None:
                sampler.sample()
            await asyncio.sleep(0.25)
        got = self.mail.read()
        latencies = [got[e] - t for e, t in out["emails"].items() if e in got]
        arrived = [got[e] for e in out["emails"] if e in got]
        in_time = sum(1 for a in arrived if a <= send_end_wall + 1.0)
        within = [a for a in arrived if a <= send_end_wall]
        receipt_rate = len(within) / max(send_end_wall - t0_wall, 1e-9)
        errors = sum(c for s, c in out["status"].items() if s != "201")
        receipts = latency_summary(latencies)
        followed = (
            in_time >= 0.9 * n
            and (receipts["p99_ms"] or 0) <= 1000
            and errors <= 0.01 * n
            and len(arrived) == len(out["emails"])
        )
        return {
            "offered_per_s": round(rate, 1),
            "applications_in_call_before": in_call,
            "seconds": round(send_end_wall - t0_wall, 2),
            "sent": n,
            "accepted": len(out["emails"]),
            "statuses": dict(out["status"]),
            "receipts": len(arrived),
            "receipts_within_1s_of_end": in_time,
            "receipt_rate_per_s": round(receipt_rate, 1),
            "receipt_latency": receipts,
            "http_latency": latency_summary(out["http"]),
            "followed": followed,
        }


def profile(pids: dict[str, int], seconds: float, out_dir: Path) -> dict[str, Any]:
    """py-spy, sampling each service while load runs: the top leaf functions (self time)."""
    spy = Path(sys.executable).parent / "py-spy"
    procs = {}
    for name, pid in pids.items():
        raw = out_dir / f"profile-{name}.txt"
        procs[name] = (
            subprocess.Popen(
                [
                    str(spy),
                    "record",
                    "--pid",
                    str(pid),
                    "--duration",
                    str(int(seconds)),
                    "--format",
                    "raw",
                    "--rate",
                    "50",
                    "--nonblocking",
                    "-o",
                    str(raw),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            ),
            raw,
        )
    return {"procs": procs}


def summarise_profile(raw: Path, top: int = 8) -> dict[str, Any]:
    leaf: Counter[str] = Counter()
    ours: Counter[str] = Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        # Time in the event loop's own C code shows as its Python caller.
        innermost = frames[-1]
        idle = innermost.startswith("Runner.run ")
        leaf["(event loop, no Python frame)" if idle else innermost] += n
        for frame in reversed(frames):
            if "pearls_" in frame:
                ours[frame] += n
                break
    pct = lambda c: round(100 * c / max(total, 1), 1)  # noqa: E731
    return {
        "samples": total,
        "top_self": [[f, pct(c)] for f, c in leaf.most_common(top)],
        "top_own_code": [[f, pct(c)] for f, c in ours.most_common(top)],
    }


def _workdir() -> Path:
    return Path(__file__).resolve().parent.parent / "var" / f"bench-e2e-{uuid.uuid4().hex[:8]}"


async def measure(
    *,
    start_rate: float,
    max_rate: float,
    step_s: float,
    half_s: float,
    with_profile: bool,
    out_dir: Path,
    say: Any = print,
    mail_rate_limit_per_minute: float = 6_000_000.0,
) -> dict[str, Any]:
    # Under the repository, as the demo's: PostgreSQL (run as its own user) must reach it.
    workdir = _workdir()
    limit_env = "PEARLS_NOTIFICATIONS_RATE_LIMIT_PER_MINUTE"
    previous = os.environ.get(limit_env)
    os.environ[limit_env] = str(mail_rate_limit_per_minute)  # the services inherit it
    try:
        result = await _measure(
            workdir,
            start_rate=start_rate,
            max_rate=max_rate,
            step_s=step_s,
            half_s=half_s,
            with_profile=with_profile,
            out_dir=out_dir,
            say=say,
        )
    finally:
        if previous is None:
            os.environ.pop(limit_env, None)
        else:
            os.environ[limit_env] = previous
    result["mail_rate_limit_per_minute"] = mail_rate_limit_per_minute
    return result


async def _measure(
    workdir: Path,
    *,
    start_rate: float,
    max_rate: float,
    step_s: float,
    half_s: float,
    with_profile: bool,
    out_dir: Path,
    say: Any,
) -> dict[str, Any]:
    async with System(workdir, say=say) as system:
        limits = httpx.Limits(max_connections=1000, max_keepalive_connections=1000)
        async with httpx.AsyncClient(
            base_url=system.urls["applications"], timeout=60.0, limits=limits
        ) as client:
            response = await client.post(
                "/calls",
                headers={"Authorization": f"Bearer {system.coordinator_token}"},
                json=call_request(datetime.now(UTC)),
            )
            response.raise_for_status()
            load = Load(system, client, response.json()["call_id"])
            sampler = Processes(system)
            await load.step(min(5.0, start_rate), 1.0)  # warm-up: connections, first events
            steps = []
            rate = start_rate
            saturating = None
            while rate <= max_rate:
                result = await load.step(rate, step_s, sampler)
                steps.append(result)
                say(
                    f"e2e {rate:,.0f}/s: receipts {result['receipts']}/{result['sent']},"
                    f" p99 {result['receipt_latency']['p99_ms']} ms,"
                    f" followed {result['followed']}"
                )
                if not result["followed"]:
                    saturating = max(
                        steps[-2]["offered_per_s"] if len(steps) > 1 else 0.0,
                        result["receipt_rate_per_s"],
                    )
                    break
                rate *= 1.5
            if saturating is None:
                saturating = steps[-1]["offered_per_s"]
                say(f"e2e: not saturated up to {max_rate}/s")
            half = max(1.0, saturating / 2)
            drained = await load.drain(within=max(60.0, 10 * step_s))
            if not drained:
                say("e2e: the backlog did not drain before the half-load run")
            sampler.start_window()
            spies = None
            if with_profile:
                pids = {
                    c.name: c.process.pid
                    for c in system.services
                    if c.process is not None and c.name in ("applications", "notifications")
                }
                spies = profile(pids, half_s, out_dir)
            half_result = await load.step(half, half_s, sampler)
            resources = sampler.window()
            profiles: dict[str, Any] = {}
            if spies is not None:
                for name, (proc, raw) in spies["procs"].items():
                    try:
                        _, err = proc.communicate(timeout=60)
                        profiles[name] = summarise_profile(raw)
                    except Exception as exc:  # profiling is a bonus: say why it is missing
                        profiles[name] = {"error": repr(exc)}
                    if proc.returncode:
                        profiles[name] = {"error": (err or b"").decode(errors="replace")[-500:]}
            say(
                f"e2e half load {half:,.1f}/s: receipt p50/p95/p99"
                f" {half_result['receipt_latency']['p50_ms']}/"
                f"{half_result['receipt_latency']['p95_ms']}/"
                f"{half_result['receipt_latency']['p99_ms']} ms"
            )
    with contextlib.suppress(OSError):
        os.sync()
    return {
        "steps": steps,
        "saturating_rate_per_s": round(saturating, 1),
        "half_load": half_result,
        "backlog_drained_before_half_load": drained,
        "resources_at_half_load": resources,
        "profiles": profiles,
        "target_rate_per_s": TARGET_RATE,
        "target_p99_ms": TARGET_P99_MS,
        "target_met": saturating >= TARGET_RATE
        and (half_result["receipt_latency"]["p99_ms"] or 1e9) < TARGET_P99_MS,
    }
