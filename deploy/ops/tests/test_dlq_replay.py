"""`pearls dlq`: a poison message dead-lettered by the real mentoring consumer is
found, refused as it is, fixed through an export file, replayed to its original
topic, and takes effect exactly once; replaying it again changes nothing.
"""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from asgi_lifespan import LifespanManager

from deploy.ops.tests.helpers import Result, clean_env, pearls
from pearls_mentoring.bootstrap import create_app
from pearls_mentoring.config import Settings
from pearls_shared.envelope import Envelope
from pearls_shared.events.applications import ApplicationAccepted
from pearls_shared.outbox import envelope_for
from pearls_shared.settings import DeliverySettings, KafkaSettings
from pearls_shared.testing import read_topic, start_group_at_end, wait_for
from pearls_shared.topics import APPLICATIONS

DLQ = APPLICATIONS + ".dlq"


@dataclass
class Mentoring:
    dsn: str
    group: str
    bootstrap: str
    env: dict[str, str]

    async def fetchval(self, query: str, *args: Any) -> Any:
        conn = await asyncpg.connect(self.dsn)
        try:
            return await conn.fetchval(query, *args)
        finally:
            await conn.close()

    async def participants(self, participant_id: uuid.UUID) -> int:
        count: int = await self.fetchval(
            "SELECT count(*) FROM participants WHERE participant_id = $1", participant_id
        )
        return count

    async def inbox(self, event_id: str) -> int:
        count: int = await self.fetchval(
            "SELECT count(*) FROM inbox WHERE consumer = $1 AND event_id = $2",
            self.group,
            event_id,
        )
        return count

    async def committed(self, tp: TopicPartition) -> int:
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await admin.start()
        try:
            offsets = await admin.list_consumer_group_offsets(self.group, partitions=[tp])
        finally:
            await admin.close()
        meta = offsets.get(tp)
        return meta.offset if meta is not None else -1


@pytest.fixture
async def mentoring(
    postgres_server: Any, kafka_settings: KafkaSettings, contract_topics: tuple[str, ...]
) -> AsyncIterator[Mentoring]:
    """The real mentoring app, in a consumer group of its own starting at the topic's end."""
    dsn = postgres_server.new_database("opsdlq")
    group = f"mentoring-ops-{uuid.uuid4()}"
    await start_group_at_end(kafka_settings.bootstrap_servers, group, [APPLICATIONS])
    settings = Settings(
        database_url=dsn,
        consumer_group=group,
        matching_interval_s=3600,
        overdue_interval_s=3600,
    )
    app = create_app(
        settings,
        kafka=kafka_settings,
        delivery=DeliverySettings(consumer_backoff_initial_s=0.05, consumer_backoff_max_s=0.2),
    )
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=30):
        yield Mentoring(
            dsn,
            group,
            kafka_settings.bootstrap_servers,
            clean_env(KAFKA_BOOTSTRAP_SERVERS=kafka_settings.bootstrap_servers),
        )


def accepted(tag: str) -> ApplicationAccepted:
    return ApplicationAccepted.model_validate(
        {
            "application_id": uuid.uuid4(),
            "call_id": uuid.uuid4(),
            "decided_at": datetime.now(UTC),
            "city_name": "Kuldīga",
            "country": "LV",
            "population": 10_500,
            "contacts": [
                {
                    "name": "Inese Kalniņa",
                    "email": f"inese.{tag}@example.org",
                    "language": "lv",
                    "role": "primary",
                }
            ],
            "themes": ["culture_creative_industries"],
            "languages": ["lv", "en"],
            "from_waitlist": False,
        }
    )


async def publish_poison(bootstrap: str, event: ApplicationAccepted) -> Envelope:
    """A valid CloudEvent whose data breaks the contract (population 0)."""
    good = envelope_for(event, correlation_id=str(uuid.uuid4()))
    poison = Envelope(
        id=good.id,
        type=good.type,
        source=good.source,
        subject=good.subject,
        time=good.time,
        data={**good.data, "population": 0},
        correlation_id=good.correlation_id,
        dataschema=good.dataschema,
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(
            APPLICATIONS,
            key=poison.subject.encode(),
            value=poison.value(),
            headers=poison.headers(),
        )
    finally:
        await producer.stop()
    return poison


def listed(result: Result) -> list[dict[str, Any]]:
    assert result.code == 0, result
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


async def test_poison_message_fixed_and_replayed_takes_effect_exactly_once(
    mentoring: Mentoring, tmp_path: Path
) -> None:
    event = accepted(uuid.uuid4().hex[:8])
    poison = await publish_poison(mentoring.bootstrap, event)
    mine = ("--event-id", poison.id, "--consumer", mentoring.group)

    # The consumer rejects it and dead-letters it, with why.
    async def dead_lettered() -> bool:
        records = await read_topic(mentoring.bootstrap, DLQ)
        return any(
            dict(r.headers).get("ce_id") == poison.id.encode()
            and dict(r.headers).get("pearls_dlq_consumer") == mentoring.group.encode()
            for r in records
        )

    await wait_for(dead_lettered, within=60, what="the poison message in the dead-letter topic")
    assert await mentoring.participants(event.application_id) == 0

    [entry] = listed(
        await pearls("dlq", "list", "--topic", APPLICATIONS, "--json", *mine, env=mentoring.env)
    )
    assert entry["dead_letter"]["reason"] == "invalid_data"
    assert entry["dead_letter"]["original_topic"] == APPLICATIONS
    assert "population" in entry["dead_letter"]["error"]
    assert entry["replayed"] is None
    position = f"{entry['dlq']['partition']}:{entry['dlq']['offset']}"

    table = await pearls("dlq", "list", "--topic", DLQ, *mine, env=mentoring.env)
    assert table.code == 0, table
    assert poison.id in table.stdout and "invalid_data" in table.stdout

    shown = await pearls("dlq", "show", DLQ, position, env=mentoring.env)
    assert shown.code == 0, shown
    assert poison.id in shown.stdout and '"population": 0' in shown.stdout

    # As it is, the message would be dead-lettered again: the replay refuses it.
    refused = await pearls("dlq", "replay", DLQ, position, env=mentoring.env)
    assert refused.code == 1, refused
    assert "invalid" in refused.stdout and "population" in refused.stdout
    assert await mentoring.participants(event.application_id) == 0

    # Export, fix the data, replay the fixed message from the file.
    export = tmp_path / "dead-letters.jsonl"
    exported = await pearls("dlq", "export", "-o", str(export), *mine, env=mentoring.env)
    assert exported.code == 0, exported
    [doc] = [json.loads(line) for line in export.read_text().splitlines()]
    assert doc["data"]["population"] == 0
    doc["data"]["population"] = 10_500
    export.write_text(json.dumps(doc) + "\n")

    replayed = await pearls("dlq", "replay", "--from-file", str(export), env=mentoring.env)
    assert replayed.code == 0, replayed
    assert "1 replayed" in replayed.stderr

    await wait_for(
        lambda: mentoring.participants(event.application_id),
        within=60,
        what="the participant of the replayed event",
    )
    assert await mentoring.participants(event.application_id) == 1
    assert await mentoring.inbox(poison.id) == 1
    cause = await mentoring.fetchval(
        "SELECT cause_event_id FROM participants WHERE participant_id = $1", event.application_id
    )
    assert cause == poison.id

    # The replay is recorded: the same dead letter is not replayed again by accident.
    [entry] = listed(await pearls("dlq", "list", "--json", *mine, env=mentoring.env))
    assert entry["replayed"]["edited"] is True
    again = await pearls("dlq", "replay", "--from-file", str(export), env=mentoring.env)
    assert again.code == 0, again
    assert "already_replayed" in again.stdout and "0 replayed" in again.stderr

    # Forced, it reaches the consumer again, whose inbox skips it: nothing changes.
    forced = await pearls("dlq", "replay", "--from-file", str(export), "--force", env=mentoring.env)
    assert forced.code == 0, forced
    [entry] = listed(await pearls("dlq", "list", "--json", *mine, env=mentoring.env))
    topic, partition, offset = entry["replayed"]["to"].rsplit(":", 2)
    assert topic == APPLICATIONS
    tp = TopicPartition(APPLICATIONS, int(partition))

    async def consumed() -> bool:
        return await mentoring.committed(tp) > int(offset)

    await wait_for(consumed, within=60, what="the consumer past the forced replay")
    assert await mentoring.participants(event.application_id) == 1
    assert await mentoring.inbox(poison.id) == 1


async def test_replay_of_an_event_that_already_took_effect_changes_nothing(
    mentoring: Mentoring, tmp_path: Path
) -> None:
    """The event was handled meanwhile (its producer published it again, fixed, with the
    same id): replaying the fixed dead letter is absorbed by the inbox; replaying it
    unfixed only dead-letters it again, marked as a replay of the first."""
    event = accepted(uuid.uuid4().hex[:8])
    poison = await publish_poison(mentoring.bootstrap, event)
    mine = ("--event-id", poison.id, "--consumer", mentoring.group)

    async def dead_letters() -> list[dict[str, Any]]:
        return listed(await pearls("dlq", "list", "--json", *mine, env=mentoring.env))

    [first] = await wait_for(dead_letters, within=60, what="the dead letter")
    ref = "{topic}:{partition}:{offset}".format(**first["dlq"])

    good = envelope_for(event, correlation_id=poison.correlation_id, event_id=poison.id)
    producer = AIOKafkaProducer(bootstrap_servers=mentoring.bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(
            APPLICATIONS, key=good.subject.encode(), value=good.value(), headers=good.headers()
        )
    finally:
        await producer.stop()
    await wait_for(lambda: mentoring.participants(event.application_id), within=60, what="handled")

    dry = await pearls("dlq", "replay", *mine, "--dry-run", env=mentoring.env)
    assert dry.code == 0, dry
    assert "would replay" in dry.stdout

    export = tmp_path / "fix.jsonl"
    exported = await pearls("dlq", "export", "-o", str(export), *mine, env=mentoring.env)
    assert exported.code == 0, exported
    doc = json.loads(export.read_text())
    doc["data"]["population"] = 99_999
    export.write_text(json.dumps(doc) + "\n")
    replayed = await pearls("dlq", "replay", "--from-file", str(export), env=mentoring.env)
    assert replayed.code == 0, replayed
    assert "1 replayed" in replayed.stderr

    [entry] = await dead_letters()
    _, partition, offset = entry["replayed"]["to"].rsplit(":", 2)
    tp = TopicPartition(APPLICATIONS, int(partition))

    async def consumed() -> bool:
        return await mentoring.committed(tp) > int(offset)

    await wait_for(consumed, within=60, what="the consumer past the replay")
    assert await mentoring.participants(event.application_id) == 1
    assert await mentoring.inbox(poison.id) == 1

    # Unfixed and unvalidated, it is rejected again: a new dead letter naming the first.
    forced = await pearls(
        "dlq",
        "replay",
        DLQ,
        f"{first['dlq']['partition']}:{first['dlq']['offset']}",
        "--force",
        "--no-validate",
        env=mentoring.env,
    )
    assert forced.code == 0, forced

    async def rejected_again() -> list[dict[str, Any]]:
        return [d for d in await dead_letters() if d.get("replay_of") == ref]

    await wait_for(rejected_again, within=60, what="the replay dead-lettered again")
    assert await mentoring.participants(event.application_id) == 1
    assert await mentoring.inbox(poison.id) == 1


async def test_replay_with_edit_fixes_the_message_in_the_editor(
    mentoring: Mentoring, tmp_path: Path
) -> None:
    event = accepted(uuid.uuid4().hex[:8])
    poison = await publish_poison(mentoring.bootstrap, event)
    mine = ("--event-id", poison.id, "--consumer", mentoring.group)

    async def dead_letters() -> list[dict[str, Any]]:
        return listed(await pearls("dlq", "list", "--json", *mine, env=mentoring.env))

    await wait_for(dead_letters, within=60, what="the dead letter")
    shown = await pearls("dlq", "show", "--event-id", poison.id, env=mentoring.env)
    assert shown.code == 0, shown
    assert "invalid_data" in shown.stdout

    # The "editor" an operator would use, here a script that sets the population.
    editor = tmp_path / "editor.py"
    editor.write_text(
        "import json, sys\n"
        "path = sys.argv[1]\n"
        "doc = json.load(open(path))\n"
        "doc['data']['population'] = 10500\n"
        "json.dump(doc, open(path, 'w'))\n"
    )
    env = {**mentoring.env, "EDITOR": f"{sys.executable} {editor}", "VISUAL": ""}
    replayed = await pearls("dlq", "replay", *mine, "--edit", env=env)
    assert replayed.code == 0, replayed
    assert "(edited)" in replayed.stdout and "1 replayed" in replayed.stderr

    await wait_for(
        lambda: mentoring.participants(event.application_id), within=60, what="the participant"
    )
    assert await mentoring.participants(event.application_id) == 1
    assert await mentoring.inbox(poison.id) == 1
