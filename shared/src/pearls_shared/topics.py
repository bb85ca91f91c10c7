"""The topics of the event contract and their explicit creation.

Auto-creation is off on Pearls' brokers (and would give 1 partition, RF 1),
so every service ensures its topics exist, with partitions, replication
factor, ``min.insync.replicas`` and retention from settings, before it
publishes (``pearls topics create`` and ``deploy/prepare.py`` create them the
same way, ``pearls topics check`` reports differences).

Event topics and dead-letter topics are ``cleanup.policy=delete``: events are
history, and compaction by key would keep only an application's last event.
Event topics keep events for ``KAFKA_TOPIC_RETENTION_MS`` (730 days by
default), dead-letter topics for ``KAFKA_DEAD_LETTER_RETENTION_MS`` (90 days).
"""

from __future__ import annotations

from collections.abc import Iterable

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError, for_code

from pearls_shared.settings import KafkaSettings

APPLICATIONS = "pearls.applications.v1"
MENTORING = "pearls.mentoring.v1"
AWARDS = "pearls.awards.v1"
NOTIFICATIONS = "pearls.notifications.v1"

CONTRACT_TOPICS = (APPLICATIONS, MENTORING, AWARDS, NOTIFICATIONS)


def dead_letter_topic(topic: str, settings: KafkaSettings) -> str:
    return topic + settings.dead_letter_suffix


def is_dead_letter_topic(topic: str, settings: KafkaSettings) -> bool:
    return topic.endswith(settings.dead_letter_suffix)


def topic_configs(topic: str, settings: KafkaSettings) -> dict[str, str]:
    """The configuration a Pearls topic is created with (event or dead-letter topic)."""
    retention = (
        settings.dead_letter_retention_ms
        if is_dead_letter_topic(topic, settings)
        else settings.topic_retention_ms
    )
    return {
        "min.insync.replicas": str(settings.topic_min_insync_replicas),
        "cleanup.policy": "delete",
        "retention.ms": str(retention),
    }


class TopicsNotCreated(RuntimeError):
    """The broker refused to create one or more topics; the message says which and why."""


async def ensure_topics(
    settings: KafkaSettings,
    topics: Iterable[str],
    *,
    partitions: int | None = None,
) -> None:
    """Create the topics that do not exist yet; existing ones are left as they are."""
    from pearls_shared.kafka import client_options  # local: avoids an import cycle

    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [
            NewTopic(
                name=name,
                num_partitions=partitions or settings.topic_partitions,
                replication_factor=settings.topic_replication_factor,
                topic_configs=topic_configs(name, settings),
            )
            for name in dict.fromkeys(topics)
            if name not in existing
        ]
        if wanted:
            try:
                response = await admin.create_topics(wanted)
            except TopicAlreadyExistsError:
                return  # another replica created it between list and create
            # The broker answers per topic and aiokafka does not raise for those answers: a
            # refused creation (no rights, a bad config) would otherwise pass unnoticed.
            refused = [
                f"{answer[0]}: {for_code(answer[1]).__name__}"
                + (f" ({answer[2]})" if len(answer) > 2 and answer[2] else "")
                for answer in response.topic_errors
                if answer[1] not in (0, TopicAlreadyExistsError.errno)
            ]
            if refused:
                raise TopicsNotCreated("the broker refused to create " + "; ".join(refused))
    finally:
        await admin.close()
