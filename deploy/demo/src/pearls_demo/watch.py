"""Show the events flowing on the contract topics as they happen."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer

from pearls_shared.envelope import EnvelopeError, decode
from pearls_shared.lines import printable
from pearls_shared.topics import CONTRACT_TOPICS

_DETAIL_FIELDS = ("city_name", "name", "reason", "template", "recipient")


def describe(event_type: str, subject: str, data: dict[str, Any]) -> str:
    """One terminal line for an event: its type and the few fields a person cares about.

    The values are users' text: the line goes through ``printable`` (the printer
    does it) before it reaches a terminal.
    """
    if event_type.startswith("pearls.notification."):
        status = "sent" if event_type.endswith(".sent") else "FAILED"
        return (
            f"  mail   {status:<6} {data.get('template', '?'):<28} -> {data.get('recipient')}"
            f" [{data.get('language', '?')}]"
        )
    details = [f"{k}={data[k]}" for k in _DETAIL_FIELDS if isinstance(data.get(k), str | int)]
    if isinstance(data.get("title"), dict):
        details.append(str(data["title"].get("en", "")))
    if "country" in data:
        details.append(f"country={data['country']}")
    if isinstance(data.get("score"), int | float) and "review_count" in data:
        details.append(f"score={data['score']:.0f} after {data['review_count']} review(s)")
    # Mentoring: who mentors, which revision, which milestone, which session.
    if isinstance(data.get("mentor"), dict) and data["mentor"].get("name"):
        details.append(f"mentor={data['mentor']['name']}")
    if isinstance(data.get("revision"), int):
        details.append(f"revision={data['revision']}")
    if isinstance(data.get("milestone"), dict):
        details.append(f"milestone={data['milestone'].get('title')}")
    if event_type == "pearls.session.scheduled":
        details.append(f"{data.get('title')} ({len(data.get('participants', ()))} participants)")
    # Awards: the round's size and jury, each award's rank, the winners of a closed round.
    if event_type == "pearls.award.round_opened":
        details.append(f"awards={data.get('awards_count')} jurors={len(data.get('jurors', ()))}")
    if event_type == "pearls.award.granted":
        extra = " additional_award" if data.get("additional_award") else ""
        details.append(f"rank={data.get('rank')} score={data.get('score')}{extra}")
    if event_type == "pearls.award.round_closed":
        winners = data.get("winners", ())
        details.append(
            f"nominees={data.get('nominees_count')} winners="
            + ",".join(str(w.get("city_name")) for w in winners)
        )
    return f"  event  {event_type:<36} {' '.join(details)[:90]}"


async def tail_events(
    bootstrap: str,
    stop: asyncio.Event,
    seen: Counter[str],
    printer: Callable[[str], None] | None = None,
) -> None:
    """Print a line per event; values are users' text, so shown with escapes."""
    if printer is None:

        def printer(line: str) -> None:
            print(printable(line), flush=True)

    consumer = AIOKafkaConsumer(
        *CONTRACT_TOPICS,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=300)
            for records in batches.values():
                for record in records:
                    try:
                        envelope = decode(record.headers, record.value)
                    except EnvelopeError as exc:
                        printer(f"  ?      undecodable record on {record.topic}: {exc}")
                        continue
                    seen[envelope.type] += 1
                    printer(describe(envelope.type, envelope.subject, dict(envelope.data)))
    finally:
        await consumer.stop()
