"""Base classes for Pearls event payloads (the ``data`` of a CloudEvent).

Each event type is one pydantic model owned by the producing service's module
(``events/applications.py`` …). A model declares its CloudEvents ``type``,
the topic it travels on, its schema version and which field is the Kafka key
(the aggregate id, also used as the CloudEvents ``subject``).

Consumers ignore fields they do not know, so a producer may add optional
fields within a version; anything else needs a new version (see
``pearls_shared.schema_compat``).
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict


class EventData(BaseModel):
    """The data of one event type; subclasses set the ClassVars."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    event_type: ClassVar[str]
    topic: ClassVar[str]
    schema_version: ClassVar[int] = 1
    key_field: ClassVar[str]
    producer: ClassVar[str]

    def key(self) -> str:
        """The aggregate id: Kafka key and CloudEvents subject."""
        return str(getattr(self, self.key_field))

    @classmethod
    def dataschema(cls) -> str:
        return f"urn:pearls:schema:{cls.event_type}:{cls.schema_version}"

    @classmethod
    def schema_name(cls) -> str:
        return f"{cls.event_type}.v{cls.schema_version}"

    def to_data(self) -> dict[str, Any]:
        return self.model_dump(mode="json")
