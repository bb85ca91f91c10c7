"""Every event type of the contract, and parsing of incoming event data.

Consumers look the model up by the CloudEvents ``type`` header and parse the
data with it; they never keep copies of the producers' models.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pearls_shared import topics
from pearls_shared.events import applications, awards, mentoring, notifications
from pearls_shared.events.base import EventData

_PRODUCER_TOPIC = {
    "applications": topics.APPLICATIONS,
    "mentoring": topics.MENTORING,
    "awards": topics.AWARDS,
    "notifications": topics.NOTIFICATIONS,
}


class ContractError(Exception):
    """An event model breaks a rule of the contract (a programming error)."""


class UnknownEventType(KeyError):
    """No model is registered for a CloudEvents type."""

    def __init__(self, event_type: str) -> None:
        super().__init__(event_type)
        self.event_type = event_type

    def __str__(self) -> str:
        return f"unknown event type {self.event_type!r}: not part of the Pearls event contract"


def _check(model: type[EventData]) -> None:
    name = model.__name__
    for attr in ("event_type", "topic", "key_field", "producer"):
        if not isinstance(getattr(model, attr, None), str):
            raise ContractError(f"{name}: ClassVar {attr} is not set")
    if _PRODUCER_TOPIC.get(model.producer) != model.topic:
        raise ContractError(f"{name}: producer {model.producer!r} does not publish {model.topic}")
    field = model.model_fields.get(model.key_field)
    if field is None or not field.is_required():
        raise ContractError(f"{name}: key field {model.key_field!r} must be a required field")
    if not (model.__doc__ or "").strip():
        raise ContractError(f"{name}: needs a docstring; its first line is the published meaning")
    if not isinstance(model.schema_version, int) or model.schema_version < 1:
        raise ContractError(f"{name}: schema_version must be a positive integer")


def build_registry(models: Iterable[type[EventData]]) -> dict[str, type[EventData]]:
    """Index models by event type, refusing duplicates and malformed models."""
    found: dict[str, type[EventData]] = {}
    for model in models:
        _check(model)
        if model.event_type in found:
            other = found[model.event_type].__name__
            raise ContractError(f"{model.event_type} is declared by {other} and {model.__name__}")
        found[model.event_type] = model
    return found


EVENT_TYPES: dict[str, type[EventData]] = build_registry(
    (*applications.EVENTS, *mentoring.EVENTS, *awards.EVENTS, *notifications.EVENTS)
)
TOPIC_OF: dict[str, str] = {name: model.topic for name, model in EVENT_TYPES.items()}


def model_for(event_type: str) -> type[EventData]:
    try:
        return EVENT_TYPES[event_type]
    except KeyError:
        raise UnknownEventType(event_type) from None


def parse(event_type: str, data: Mapping[str, Any]) -> EventData:
    """Validate event data with its model; pydantic's ValidationError propagates."""
    return model_for(event_type).model_validate(data)
