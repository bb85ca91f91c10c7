"""Kafka side of the CLI: the expected topics, checking and creating them, lag, reading."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaConnectionError, KafkaError, TopicAlreadyExistsError

from pearls_ops.errors import Unreachable
from pearls_shared.kafka import client_options
from pearls_shared.settings import KafkaSettings
from pearls_shared.topics import CONTRACT_TOPICS, dead_letter_topic, is_dead_letter_topic

# Where `pearls dlq replay` records what it replayed (compacted: one record per DLQ entry).
REPLAY_LOG_TOPIC = "pearls.ops.dlq-replays.v1"


def unreachable(settings: KafkaSettings, exc: BaseException) -> Unreachable:
    return Unreachable(f"Kafka broker unreachable at {settings.bootstrap_servers}: {exc}")


@dataclass(frozen=True, slots=True)
class TopicSpec:
    name: str
    partitions: int
    replication_factor: int
    min_insync_replicas: int
    compacted: bool = False
    # retention.ms of an event or dead-letter topic (None: not set, as for the compacted log)
    retention_ms: int | None = None

    def configs(self) -> dict[str, str]:
        """What the topic is created with (the same as ``pearls_shared.topics.topic_configs``)."""
        configs = {"min.insync.replicas": str(self.min_insync_replicas)}
        configs["cleanup.policy"] = "compact" if self.compacted else "delete"
        if self.retention_ms is not None:
            configs["retention.ms"] = str(self.retention_ms)
        return configs


def expected_topics(settings: KafkaSettings) -> list[TopicSpec]:
    """Every Pearls topic, its dead-letter topic, and the replay log."""
    names = [*CONTRACT_TOPICS, *(dead_letter_topic(t, settings) for t in CONTRACT_TOPICS)]
    specs = [
        TopicSpec(
            n,
            settings.topic_partitions,
            settings.topic_replication_factor,
            settings.topic_min_insync_replicas,
            retention_ms=settings.dead_letter_retention_ms
            if is_dead_letter_topic(n, settings)
            else settings.topic_retention_ms,
        )
        for n in names
    ]
    specs.append(
        TopicSpec(
            REPLAY_LOG_TOPIC,
            1,
            settings.topic_replication_factor,
            settings.topic_min_insync_replicas,
            compacted=True,
        )
    )
    return specs


@contextlib.asynccontextmanager
async def admin_client(settings: KafkaSettings) -> AsyncIterator[AIOKafkaAdminClient]:
    admin = AIOKafkaAdminClient(**client_options(settings, "pearls-ops"), request_timeout_ms=15000)
    try:
        await admin.start()
    except (KafkaConnectionError, OSError) as exc:
        with contextlib.suppress(Exception):
            await admin.close()
        raise unreachable(settings, exc) from exc
    try:
        yield admin
    except KafkaConnectionError as exc:
        raise unreachable(settings, exc) from exc
    finally:
        await admin.close()


@contextlib.asynccontextmanager
async def plain_consumer(settings: KafkaSettings) -> AsyncIterator[AIOKafkaConsumer]:
    """A consumer in no group (assign and seek only; commits nothing)."""
    consumer = AIOKafkaConsumer(
        **client_options(settings, "pearls-ops"), enable_auto_commit=False, group_id=None
    )
    try:
        await consumer.start()
    except (KafkaConnectionError, OSError) as exc:
        with contextlib.suppress(Exception):
            await consumer.stop()
        raise unreachable(settings, exc) from exc
    try:
        yield consumer
    finally:
        await consumer.stop()


@dataclass(frozen=True, slots=True)
class TopicState:
    spec: TopicSpec
    exists: bool
    partitions: int | None = None
    replication_factor: int | None = None
    min_insync_replicas: int | None = None
    cleanup_policy: str | None = None
    retention_ms: int | None = None

    def problems(self) -> list[str]:
        if not self.exists:
            return ["missing"]
        found = []
        if self.partitions != self.spec.partitions:
            found.append(f"partitions {self.partitions}, expected {self.spec.partitions}")
        if self.replication_factor != self.spec.replication_factor:
            found.append(
                f"replication factor {self.replication_factor},"
                f" expected {self.spec.replication_factor}"
            )
        if self.min_insync_replicas != self.spec.min_insync_replicas:
            found.append(
                f"min.insync.replicas {self.min_insync_replicas},"
                f" expected {self.spec.min_insync_replicas}"
            )
        policy = "compact" if self.spec.compacted else "delete"
        if self.cleanup_policy is not None and self.cleanup_policy != policy:
            found.append(f"cleanup.policy {self.cleanup_policy}, expected {policy}")
        if self.spec.compacted and self.cleanup_policy is None:
            found.append("cleanup.policy unknown, expected compact")
        if self.spec.retention_ms is not None and self.retention_ms != self.spec.retention_ms:
            found.append(f"retention.ms {self.retention_ms}, expected {self.spec.retention_ms}")
        return found


def _config_entries(responses: Iterable[Any]) -> dict[str, dict[str, str]]:
    """``{topic: {config name: value}}`` from DescribeConfigs responses (any version)."""
    found: dict[str, dict[str, str]] = {}
    for response in responses:
        for resource in response.resources:
            _code, _message, _type, name, entries = resource[:5]
            found[name] = {entry[0]: entry[1] for entry in entries}
    return found


async def topic_states(settings: KafkaSettings) -> list[TopicState]:
    specs = expected_topics(settings)
    async with admin_client(settings) as admin:
        existing = set(await admin.list_topics())
        present = [s.name for s in specs if s.name in existing]
        described = {d["topic"]: d for d in await admin.describe_topics(present)} if present else {}
        configs = (
            _config_entries(
                await admin.describe_configs(
                    [ConfigResource(ConfigResourceType.TOPIC, name) for name in present]
                )
            )
            if present
            else {}
        )
    states = []
    for spec in specs:
        if spec.name not in existing:
            states.append(TopicState(spec, exists=False))
            continue
        parts = described[spec.name]["partitions"]
        conf = configs.get(spec.name, {})
        insync = conf.get("min.insync.replicas")
        retention = conf.get("retention.ms")
        states.append(
            TopicState(
                spec,
                exists=True,
                partitions=len(parts),
                replication_factor=len(parts[0]["replicas"]) if parts else None,
                min_insync_replicas=int(insync) if insync is not None else None,
                cleanup_policy=conf.get("cleanup.policy"),
                retention_ms=int(retention) if retention is not None else None,
            )
        )
    return states


async def create_topics(settings: KafkaSettings) -> list[tuple[TopicSpec, bool]]:
    """Create the missing topics; ``(spec, created now)`` for each expected topic."""
    specs = expected_topics(settings)
    async with admin_client(settings) as admin:
        existing = set(await admin.list_topics())
        missing = [s for s in specs if s.name not in existing]
        for spec in missing:
            try:
                await admin.create_topics(
                    [
                        NewTopic(
                            name=spec.name,
                            num_partitions=spec.partitions,
                            replication_factor=spec.replication_factor,
                            topic_configs=spec.configs(),
                        )
                    ]
                )
            except TopicAlreadyExistsError:
                pass  # created by someone else meanwhile
            except KafkaError as exc:
                raise Unreachable(f"creating topic {spec.name} failed: {exc}") from exc
        if missing:
            await _until_described(admin, missing)
    names = {s.name for s in missing}
    return [(s, s.name in names) for s in specs]


async def _until_described(admin: AIOKafkaAdminClient, specs: list[TopicSpec]) -> None:
    """Wait (bounded) until the cluster's metadata shows the new topics with all their
    partitions led, so a check right after `create` sees them as created."""
    wanted = {s.name: s.partitions for s in specs}
    for _ in range(100):
        described = await admin.describe_topics(list(wanted))
        ready = {
            d["topic"]
            for d in described
            if d["error_code"] == 0
            and len(d["partitions"]) == wanted.get(d["topic"])
            and all(p["leader"] >= 0 for p in d["partitions"])
        }
        if ready >= set(wanted):
            return
        await asyncio.sleep(0.1)


async def ensure_replay_log(settings: KafkaSettings) -> None:
    spec = next(s for s in expected_topics(settings) if s.name == REPLAY_LOG_TOPIC)
    async with admin_client(settings) as admin:
        if spec.name in set(await admin.list_topics()):
            return
        try:
            await admin.create_topics(
                [
                    NewTopic(
                        name=spec.name,
                        num_partitions=spec.partitions,
                        replication_factor=spec.replication_factor,
                        topic_configs=spec.configs(),
                    )
                ]
            )
        except TopicAlreadyExistsError:
            pass
        except KafkaError as exc:
            raise Unreachable(f"creating topic {spec.name} failed: {exc!r}") from exc


async def partitions_of(settings: KafkaSettings, topics: Iterable[str]) -> list[TopicPartition]:
    """The partitions of those of ``topics`` that exist."""
    async with admin_client(settings) as admin:
        existing = set(await admin.list_topics())
        wanted = [t for t in dict.fromkeys(topics) if t in existing]
        if not wanted:
            return []
        described = await admin.describe_topics(wanted)
    return sorted(
        TopicPartition(d["topic"], p["partition"]) for d in described for p in d["partitions"]
    )


async def end_offsets(
    settings: KafkaSettings, partitions: list[TopicPartition]
) -> dict[TopicPartition, int]:
    if not partitions:
        return {}
    async with plain_consumer(settings) as consumer:
        return dict(await consumer.end_offsets(partitions))


@dataclass(frozen=True, slots=True)
class Lag:
    group: str
    partition: TopicPartition
    committed: int | None  # None: the group has committed nothing on this partition
    end: int

    @property
    def lag(self) -> int:
        return self.end - (self.committed if self.committed is not None else 0)


async def group_lag(settings: KafkaSettings, group: str, topics: Iterable[str]) -> list[Lag]:
    partitions = await partitions_of(settings, topics)
    if not partitions:
        return []
    async with admin_client(settings) as admin:
        committed = await admin.list_consumer_group_offsets(group, partitions=partitions)
    ends = await end_offsets(settings, partitions)
    lags = []
    for tp in partitions:
        meta = committed.get(tp)
        offset = meta.offset if meta is not None and meta.offset >= 0 else None
        lags.append(Lag(group, tp, offset, ends[tp]))
    return lags


async def read_all(
    settings: KafkaSettings, topics: Iterable[str]
) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record now in ``topics`` (up to their current end), partition by partition."""
    partitions = await partitions_of(settings, topics)
    if not partitions:
        return []
    records: list[ConsumerRecord[bytes, bytes]] = []
    async with plain_consumer(settings) as consumer:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        todo = {tp for tp in partitions if ends[tp] > 0}
        while todo:
            for tp in list(todo):
                if await consumer.position(tp) >= ends[tp]:
                    todo.discard(tp)
            if not todo:
                break
            batch = await consumer.getmany(*todo, timeout_ms=1000)
            for tp, recs in batch.items():
                records.extend(r for r in recs if r.offset < ends[tp])
    return records


async def read_one(
    settings: KafkaSettings, topic: str, partition: int, offset: int
) -> ConsumerRecord[bytes, bytes] | None:
    tp = TopicPartition(topic, partition)
    if tp not in await partitions_of(settings, [topic]):
        return None
    async with plain_consumer(settings) as consumer:
        consumer.assign([tp])
        begin = (await consumer.beginning_offsets([tp]))[tp]
        end = (await consumer.end_offsets([tp]))[tp]
        if not begin <= offset < end:
            return None
        consumer.seek(tp, offset)
        while True:
            batch = await consumer.getmany(tp, timeout_ms=1000, max_records=1)
            for rec in batch.get(tp, []):
                if rec.offset == offset:
                    return rec
                if rec.offset > offset:
                    return None  # compacted or a transaction marker
            if await consumer.position(tp) >= end:
                return None
