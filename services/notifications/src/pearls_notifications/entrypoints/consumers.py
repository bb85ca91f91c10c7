"""Kafka side: one consumer group over the three producer topics (thin)."""

from __future__ import annotations

from pearls_notifications.config import Settings
from pearls_notifications.service_layer.handlers import consumer_handlers
from pearls_shared import topics
from pearls_shared.runtime import Subscription

CONSUMED_TOPICS = (topics.APPLICATIONS, topics.MENTORING, topics.AWARDS)


def subscription(settings: Settings) -> Subscription:
    return Subscription(
        name=settings.consumer_group,
        topics=CONSUMED_TOPICS,
        handlers=consumer_handlers(settings),
    )
