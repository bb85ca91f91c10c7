"""Dead letters: reading, exporting, and replaying them to their original topic.

A dead letter is the original record (key, value, ``ce_*`` headers) plus the
``pearls_dlq_*`` headers the consumer added (reason, error, consumer, original
topic/partition/offset, time). Replaying publishes the record again, with the
original key, to the original topic, without the dead-letter headers and with a
``pearls_replay_of`` header naming the dead letter.

Replaying is safe: every consumer's inbox remembers the event ids it handled,
so a replayed event that already took effect for a consumer is skipped there,
and one that never took effect takes effect once. Each replay is recorded on
the compacted topic ``pearls.ops.dlq-replays.v1`` (key: the dead letter's
``topic:partition:offset``) so the same dead letter is not replayed twice by
accident; ``--force`` replays it anyway (still harmless, thanks to the inbox).
"""

from __future__ import annotations

import base64
import getpass
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiokafka import ConsumerRecord
from aiokafka.errors import KafkaConnectionError, KafkaError
from pydantic import ValidationError

from pearls_ops.errors import OpsError
from pearls_ops.kafka import REPLAY_LOG_TOPIC, ensure_replay_log, read_all, read_one, unreachable
from pearls_shared import envelope as ce
from pearls_shared.events.registry import UnknownEventType, parse
from pearls_shared.kafka import new_producer
from pearls_shared.settings import KafkaSettings
from pearls_shared.topics import CONTRACT_TOPICS, dead_letter_topic

DLQ_PREFIX = "pearls_dlq_"  # as pearls_shared.consumer writes them
REPLAY_OF = "pearls_replay_of"


def _text(raw: bytes | None) -> str:
    return (raw or b"").decode("utf-8", errors="replace")


@dataclass(frozen=True, slots=True)
class Entry:
    """One record of a dead-letter topic (or one read back from an export file)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]
    timestamp_ms: int | None = None
    edited: bool = False

    @classmethod
    def from_record(cls, record: ConsumerRecord[bytes, bytes]) -> Entry:
        return cls(
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            key=record.key,
            value=record.value,
            headers=tuple((k, v or b"") for k, v in record.headers or ()),
            timestamp_ms=record.timestamp,
        )

    @property
    def ref(self) -> str:
        return f"{self.topic}:{self.partition}:{self.offset}"

    @property
    def position(self) -> str:
        return f"{self.partition}:{self.offset}"

    def header(self, name: str) -> str | None:
        for k, v in self.headers:
            if k == name:
                return _text(v)
        return None

    def dlq(self, name: str) -> str:
        return self.header(DLQ_PREFIX + name) or ""

    @property
    def event_id(self) -> str:
        return self.header("ce_id") or ""

    @property
    def event_type(self) -> str:
        return self.header("ce_type") or ""

    @property
    def reason(self) -> str:
        return self.dlq("reason")

    @property
    def original_topic(self) -> str:
        return self.dlq("original_topic")

    def replay_headers(self) -> list[tuple[str, bytes]]:
        kept = [
            (k, v)
            for k, v in self.headers
            if not k.startswith(DLQ_PREFIX) and not k.startswith("pearls_replay")
        ]
        return [*kept, (REPLAY_OF, self.ref.encode())]

    def data(self) -> Any:
        try:
            return json.loads(self.value or b"")
        except ValueError:
            return None

    def problem(self) -> str | None:
        """Why the consumers would dead-letter this record again (None: it looks valid)."""
        try:
            envelope = ce.decode(self.replay_headers(), self.value)
        except (ce.EnvelopeError, UnicodeDecodeError) as exc:
            return f"undecodable: {exc}"
        try:
            parse(envelope.type, envelope.data)
        except UnknownEventType as exc:
            return f"unknown_type: {exc}"
        except ValidationError as exc:
            return "invalid_data: " + "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}"
                for e in exc.errors()
            )
        return None

    # -- export files (JSON lines, one dead letter per line) ------------------

    def to_json(self) -> dict[str, Any]:
        """The entry as an operator edits it: ``data`` (and ``attributes``) may change."""
        attributes = {k[3:]: _text(v) for k, v in self.headers if k.startswith("ce_")}
        dead_letter = {
            k[len(DLQ_PREFIX) :]: _text(v) for k, v in self.headers if k.startswith(DLQ_PREFIX)
        }
        other = {
            k: _text(v)
            for k, v in self.headers
            if not k.startswith(("ce_", DLQ_PREFIX, "pearls_replay"))
        }
        doc: dict[str, Any] = {
            "dlq": {"topic": self.topic, "partition": self.partition, "offset": self.offset},
            "dead_letter": dead_letter,
            "key": _text(self.key) if self.key is not None else None,
            "attributes": attributes,
            "headers": other,
        }
        replay_of = self.header(REPLAY_OF)
        if replay_of:
            doc["replay_of"] = replay_of  # this dead letter is a replay of that one
        data = self.data()
        if data is not None:
            doc["data"] = data
        else:
            doc["value_base64"] = base64.b64encode(self.value or b"").decode()
        return doc

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Entry:
        try:
            where = doc["dlq"]
            headers: list[tuple[str, bytes]] = [
                ("ce_" + k, str(v).encode()) for k, v in doc.get("attributes", {}).items()
            ]
            headers += [(k, str(v).encode()) for k, v in doc.get("headers", {}).items()]
            headers += [
                (DLQ_PREFIX + k, str(v).encode()) for k, v in doc.get("dead_letter", {}).items()
            ]
            if "data" in doc:
                value = json.dumps(doc["data"], separators=(",", ":"), ensure_ascii=False).encode()
            else:
                value = base64.b64decode(doc.get("value_base64", ""))
            key = doc.get("key")
            return cls(
                topic=str(where["topic"]),
                partition=int(where["partition"]),
                offset=int(where["offset"]),
                key=key.encode() if isinstance(key, str) else None,
                value=value,
                headers=tuple(headers),
                edited=True,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise OpsError(
                f"export entry malformed ({exc!r}); expected the format of `pearls dlq export`"
            ) from exc


def dlq_topics(settings: KafkaSettings, topic: str | None = None) -> list[str]:
    """The dead-letter topics to read: all of them, or the one for ``topic``
    (given as the dead-letter topic or as its original topic)."""
    if topic is None:
        return [dead_letter_topic(t, settings) for t in CONTRACT_TOPICS]
    if topic.endswith(settings.dead_letter_suffix):
        return [topic]
    return [dead_letter_topic(topic, settings)]


async def entries(settings: KafkaSettings, topics: Iterable[str]) -> list[Entry]:
    return [Entry.from_record(r) for r in await read_all(settings, topics)]


async def entry_at(settings: KafkaSettings, topic: str, partition: int, offset: int) -> Entry:
    [name] = dlq_topics(settings, topic)
    record = await read_one(settings, name, partition, offset)
    if record is None:
        raise OpsError(f"no dead letter at {name}:{partition}:{offset}")
    return Entry.from_record(record)


def parse_position(text: str) -> tuple[int, int]:
    partition, sep, offset = text.partition(":")
    if not sep or not partition.isdigit() or not offset.isdigit():
        raise OpsError(f"position {text!r}: expected PARTITION:OFFSET, e.g. 0:42", 2)
    return int(partition), int(offset)


@dataclass(slots=True)
class Filter:
    event_ids: set[str] = field(default_factory=set)
    types: set[str] = field(default_factory=set)
    reasons: set[str] = field(default_factory=set)
    original_topics: set[str] = field(default_factory=set)
    consumers: set[str] = field(default_factory=set)

    def empty(self) -> bool:
        return not (
            self.event_ids or self.types or self.reasons or self.original_topics or self.consumers
        )

    def matches(self, entry: Entry) -> bool:
        return (
            (not self.event_ids or entry.event_id in self.event_ids)
            and (not self.types or entry.event_type in self.types)
            and (not self.reasons or entry.reason in self.reasons)
            and (not self.original_topics or entry.original_topic in self.original_topics)
            and (not self.consumers or entry.dlq("consumer") in self.consumers)
        )


async def replay_log(settings: KafkaSettings) -> dict[str, dict[str, Any]]:
    """What was replayed so far: dead letter ref -> the replay record (latest wins)."""
    done: dict[str, dict[str, Any]] = {}
    for record in await read_all(settings, [REPLAY_LOG_TOPIC]):
        if record.key is None or record.value is None:
            continue
        try:
            done[_text(record.key)] = json.loads(record.value)
        except ValueError:
            continue
    return done


@dataclass(frozen=True, slots=True)
class Outcome:
    entry: Entry
    status: str  # replayed | already_replayed | invalid | failed
    detail: str = ""


async def replay(
    settings: KafkaSettings,
    chosen: list[Entry],
    *,
    force: bool = False,
    validate: bool = True,
    progress: Callable[[Outcome], None] | None = None,
) -> list[Outcome]:
    """Publish each entry again on its original topic; record it in the replay log."""
    await ensure_replay_log(settings)
    done = await replay_log(settings)
    producer = new_producer(settings, client_id="pearls-ops-replay")
    try:
        await producer.start()
    except (KafkaConnectionError, OSError) as exc:
        await producer.stop()
        raise unreachable(settings, exc) from exc
    outcomes: list[Outcome] = []
    try:
        for entry in chosen:
            outcome = await _replay_one(producer, entry, done, force=force, validate=validate)
            outcomes.append(outcome)
            if progress is not None:
                progress(outcome)
    finally:
        await producer.stop()
    return outcomes


async def _replay_one(
    producer: Any,
    entry: Entry,
    done: dict[str, dict[str, Any]],
    *,
    force: bool,
    validate: bool,
) -> Outcome:
    if entry.ref in done and not force:
        earlier = done[entry.ref]
        return Outcome(
            entry,
            "already_replayed",
            f"at {earlier.get('at', '?')} to {earlier.get('to', '?')} (--force replays again)",
        )
    target = entry.original_topic
    if not target:
        return Outcome(entry, "failed", "no pearls_dlq_original_topic header")
    if validate and (problem := entry.problem()):
        return Outcome(
            entry, "invalid", f"{problem} (fix it: pearls dlq export, edit, replay --from-file)"
        )
    partition = None if entry.key is not None else int(entry.dlq("original_partition") or 0)
    try:
        sent = await producer.send_and_wait(
            target,
            value=entry.value,
            key=entry.key,
            headers=entry.replay_headers(),
            partition=partition,
        )
        to = f"{sent.topic}:{sent.partition}:{sent.offset}"
        record = {
            "ref": entry.ref,
            "event_id": entry.event_id,
            "event_type": entry.event_type,
            "to": to,
            "edited": entry.edited,
            "forced": force and entry.ref in done,
            "by": _user(),
            "at": ce.format_time(datetime.now(UTC)),
        }
        await producer.send_and_wait(
            REPLAY_LOG_TOPIC, key=entry.ref.encode(), value=json.dumps(record).encode()
        )
    except KafkaError as exc:
        return Outcome(entry, "failed", repr(exc))
    done[entry.ref] = record
    return Outcome(entry, "replayed", to)


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
