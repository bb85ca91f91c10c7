"""The AsyncAPI 3.0 document of the event contract, built from the event models.

It describes every Pearls topic and its dead-letter topic, every event type as
a message with the Kafka headers the relay sets (CloudEvents binary mode, plus
the optional W3C trace context), the Kafka key, the payload (a ``$ref`` to the
event's JSON Schema file), who sends and who receives what, and the servers
with their security. ``pearls-schemas write`` writes it to docs/asyncapi.json;
``make test`` validates it with the official AsyncAPI parser
(deploy/asyncapi/validate.mjs).

Which service consumes which event types is declared here (``SUBSCRIPTIONS``),
because the shared library never imports a service; tests/contracts checks the
declaration against each service's real subscription.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pearls_shared.consumer import DLQ_HEADER_PREFIX
from pearls_shared.envelope import CONTENT_TYPE, SPEC_VERSION
from pearls_shared.events.base import EventData
from pearls_shared.outbox import service_source
from pearls_shared.settings import KafkaSettings

KAFKA_BINDING = "0.5.0"
SCHEMA_FORMAT = "application/schema+json;version=draft-2020-12"
DEAD_LETTER_MESSAGE = "pearls.dead_letter"

REQUIRED_HEADERS = (
    *(f"ce_{name}" for name in ("specversion", "id", "source", "type", "subject", "time")),
    "ce_correlationid",
    "ce_dataschema",
    "content-type",
)


@dataclass(frozen=True)
class Subscription:
    """What one service's consumer group reads: the event types it reacts to."""

    service: str
    group_default: str
    group_setting: str
    event_types: tuple[str, ...]


SUBSCRIPTIONS: tuple[Subscription, ...] = (
    Subscription(
        "mentoring",
        "mentoring",
        "PEARLS_MENTORING_CONSUMER_GROUP",
        (
            "pearls.application.accepted",
            "pearls.application.contacts_changed",
            "pearls.application.withdrawn",
            "pearls.person.erased",
        ),
    ),
    Subscription(
        "awards",
        "awards",
        "PEARLS_AWARDS_CONSUMER_GROUP",
        (
            "pearls.application.accepted",
            "pearls.application.contacts_changed",
            "pearls.application.withdrawn",
            "pearls.mentor.assigned",
            "pearls.mentor.unassigned",
            "pearls.plan.approved",
            "pearls.plan.completed",
            "pearls.plan.milestone_overdue",
            "pearls.plan.milestone_reached",
            "pearls.plan.submitted",
            "pearls.person.erased",
        ),
    ),
    Subscription(
        "notifications",
        "pearls-notifications",
        "PEARLS_NOTIFICATIONS_CONSUMER_GROUP",
        (
            "pearls.application.accepted",
            "pearls.application.contacts_changed",
            "pearls.application.rejected",
            "pearls.application.submitted",
            "pearls.application.waitlisted",
            "pearls.application.withdrawn",
            "pearls.award.granted",
            "pearls.award.nominated",
            "pearls.award.revoked",
            "pearls.award.round_closed",
            "pearls.award.round_opened",
            "pearls.call.closed",
            "pearls.mentor.assigned",
            "pearls.mentor.registered",
            "pearls.mentor.unassigned",
            "pearls.mentor.unmatched",
            "pearls.person.erased",
            "pearls.plan.approved",
            "pearls.plan.changes_requested",
            "pearls.plan.completed",
            "pearls.plan.milestone_overdue",
            "pearls.plan.milestone_reached",
            "pearls.plan.submitted",
            "pearls.session.scheduled",
        ),
    ),
)

# The headers the consumer adds to a dead-lettered record (pearls_shared.consumer).
DEAD_LETTER_HEADERS: Mapping[str, tuple[str, dict[str, Any]]] = {
    "reason": (
        "Why the record was dead-lettered: undecodable (not a Pearls CloudEvent), "
        "unknown_type (ce_type outside the contract), invalid_data (the data does not "
        "match the event's schema; the error names the fields) or handler_failed (the "
        "handler failed on every attempt).",
        {"enum": ["undecodable", "unknown_type", "invalid_data", "handler_failed"]},
    ),
    "error": ("The error, at most 4000 characters.", {"maxLength": 4000}),
    "attempts": (
        "Handler attempts made (0 when the record was refused before any handler ran).",
        {"pattern": "^[0-9]+$"},
    ),
    "consumer": ("The consumer group that gave up on the record.", {}),
    "original_topic": ("The topic the record was read from.", {}),
    "original_partition": ("Its partition there.", {"pattern": "^[0-9]+$"}),
    "original_offset": ("Its offset there.", {"pattern": "^[0-9]+$"}),
    "time": ("When it was dead-lettered (RFC 3339, UTC).", {"format": "date-time"}),
}


def _text(description: str, **extra: Any) -> dict[str, Any]:
    return {"type": "string", "description": description, **extra}


def trace_headers() -> dict[str, Any]:
    """W3C trace context, set when the producing request or event was traced (optional)."""
    return {
        "traceparent": _text(
            "W3C Trace Context traceparent of the span that published the event "
            "(version-traceid-parentid-flags); optional, absent when tracing is off.",
            pattern="^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$",
        ),
        "tracestate": _text(
            "W3C Trace Context tracestate (vendor-specific trace data); optional, "
            "only together with traceparent."
        ),
    }


def event_headers(model: type[EventData]) -> dict[str, Any]:
    """The Kafka headers of one event type, as the outbox relay sets them."""
    return {
        "type": "object",
        "required": [*REQUIRED_HEADERS],
        "properties": {
            "ce_specversion": _text("CloudEvents version.", const=SPEC_VERSION),
            "ce_id": _text("Unique event id; consumers deduplicate on it (inbox)."),
            "ce_source": _text("The producing service.", const=service_source(model.producer)),
            "ce_type": _text("The event type.", const=model.event_type),
            "ce_subject": _text(f"The aggregate id, equal to the Kafka key ({model.key_field})."),
            "ce_time": _text("When it happened (RFC 3339, UTC).", format="date-time"),
            "ce_correlationid": _text("Id of the HTTP request that started the chain."),
            "ce_causationid": _text(
                "ce_id of the event that caused this one; absent for a direct result of a request."
            ),
            "ce_dataschema": _text("URN of the data's JSON Schema.", const=model.dataschema()),
            "content-type": _text("Media type of the value.", const=CONTENT_TYPE),
            **trace_headers(),
        },
    }


def dead_letter_headers() -> dict[str, Any]:
    """Headers of a dead-lettered record: the original ones plus ``pearls_dlq_*``."""
    properties = {
        DLQ_HEADER_PREFIX + name: _text(description, **extra)
        for name, (description, extra) in DEAD_LETTER_HEADERS.items()
    }
    return {
        "type": "object",
        "description": "Every header of the original record, unchanged (the ce_* headers, "
        "content-type and trace context when it had them), followed by these.",
        "required": sorted(properties),
        "properties": properties,
        "additionalProperties": {"type": "string"},
    }


def _summary(model: type[EventData]) -> str:
    return (model.__doc__ or "").strip().splitlines()[0]


def _channel_id(producer: str) -> str:
    return producer


def _dead_letter_channel_id(producer: str) -> str:
    return f"{producer}.deadLetter"


def asyncapi_document(
    models: Iterable[type[EventData]],
    schema_dir: str = "events",
    subscriptions: Iterable[Subscription] = SUBSCRIPTIONS,
) -> dict[str, Any]:
    """An AsyncAPI 3.0 description of the topics; payloads refer to the schema files."""
    models = list(models)
    suffix = KafkaSettings.model_fields["dead_letter_suffix"].default
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    by_type = {model.event_type: model for model in models}
    for model in models:
        channel_id = _channel_id(model.producer)
        channel = channels.setdefault(
            channel_id,
            {
                "address": model.topic,
                "title": model.topic,
                "description": f"Events produced by the {model.producer} service.",
                "messages": {},
                "bindings": {"kafka": {"topic": model.topic, "bindingVersion": KAFKA_BINDING}},
            },
        )
        channel["messages"][model.event_type] = {
            "$ref": f"#/components/messages/{model.event_type}"
        }
        operation = operations.setdefault(
            f"publish.{channel_id}",
            {
                "action": "send",
                "channel": {"$ref": f"#/channels/{channel_id}"},
                "summary": f"The {model.producer} service publishes its events.",
                "description": "Published from the service's transactional outbox by its relay "
                "with the idempotent producer (acks=all), keyed by the aggregate id.",
                "messages": [],
            },
        )
        operation["messages"].append(
            {"$ref": f"#/channels/{channel_id}/messages/{model.event_type}"}
        )
        key_schema = dict(model.model_json_schema()["properties"][model.key_field])
        key_schema.pop("title", None)
        messages[model.event_type] = {
            "name": model.event_type,
            "title": model.event_type,
            "summary": _summary(model),
            "contentType": CONTENT_TYPE,
            "correlationId": {"$ref": "#/components/correlationIds/request"},
            "headers": event_headers(model),
            "payload": {
                "schemaFormat": SCHEMA_FORMAT,
                "schema": {"$ref": f"{schema_dir}/{model.schema_name()}.json"},
            },
            "bindings": {"kafka": {"key": key_schema, "bindingVersion": KAFKA_BINDING}},
        }
    producers = list(channels)  # contract order
    for producer in producers:
        topic = channels[_channel_id(producer)]["address"]
        address = topic + suffix
        channels[_dead_letter_channel_id(producer)] = {
            "address": address,
            "title": address,
            "description": f"Dead letters of `{topic}`: records a consumer could not take "
            "(undecodable, unknown event type, invalid data) or whose handler failed on every "
            "attempt, byte for byte with the original key, value and headers, plus the "
            f"`{DLQ_HEADER_PREFIX}*` headers that say why. The suffix is the setting "
            "KAFKA_DEAD_LETTER_SUFFIX (default `.dlq`).",
            "messages": {"deadLetter": {"$ref": f"#/components/messages/{DEAD_LETTER_MESSAGE}"}},
            "bindings": {"kafka": {"topic": address, "bindingVersion": KAFKA_BINDING}},
        }
    for subscription in subscriptions:
        read: dict[str, list[str]] = {}
        for event_type in subscription.event_types:
            consumed = by_type.get(event_type)
            if consumed is not None:
                read.setdefault(consumed.producer, []).append(event_type)
        for producer in producers:
            if producer not in read:
                continue
            group = {
                "groupId": {
                    "type": "string",
                    "default": subscription.group_default,
                    "description": f"Set by {subscription.group_setting}.",
                },
                "bindingVersion": KAFKA_BINDING,
            }
            operations[f"receive.{subscription.service}.{producer}"] = {
                "action": "receive",
                "channel": {"$ref": f"#/channels/{_channel_id(producer)}"},
                "summary": f"The {subscription.service} service reacts to {producer} events.",
                "description": "Read by the service's consumer group; the effect and the "
                "event id (inbox) commit in one transaction before the offset is committed. "
                "Other event types on the topic are skipped.",
                "messages": [
                    {"$ref": f"#/channels/{_channel_id(producer)}/messages/{event_type}"}
                    for event_type in read[producer]
                ],
                "bindings": {"kafka": group},
            }
            operations[f"deadLetter.{subscription.service}.{producer}"] = {
                "action": "send",
                "channel": {"$ref": f"#/channels/{_dead_letter_channel_id(producer)}"},
                "summary": f"The {subscription.service} service dead-letters the {producer} "
                "records it cannot take.",
                "messages": [
                    {"$ref": f"#/channels/{_dead_letter_channel_id(producer)}/messages/deadLetter"}
                ],
            }
    messages[DEAD_LETTER_MESSAGE] = {
        "name": DEAD_LETTER_MESSAGE,
        "title": "Dead letter",
        "summary": "A record a consumer gave up on, with the reason in its headers.",
        "headers": dead_letter_headers(),
        "payload": {
            "description": "The original record's value, unchanged (normally a Pearls event's "
            "JSON data, but possibly anything: undecodable records land here too)."
        },
        "bindings": {
            "kafka": {
                "key": {"type": "string", "description": "The original record's key."},
                "bindingVersion": KAFKA_BINDING,
            }
        },
    }
    return {
        "asyncapi": "3.0.0",
        "id": "urn:pearls:events",
        "info": {
            "title": "Pearls events",
            "version": "1",
            "description": (
                "The public event contract of Pearls (BSR Cultural Pearls programme). Every "
                "event is a CloudEvents 1.0 event in Kafka binary content mode: attributes in "
                "ce_* headers, data as JSON in the record value. See events/README.md."
            ),
        },
        "defaultContentType": CONTENT_TYPE,
        "servers": {
            "local": {
                "host": "127.0.0.1:9092",
                "protocol": "kafka",
                "title": "Local development",
                "description": "A single KRaft broker on loopback, PLAINTEXT without "
                "authentication (KAFKA_SECURITY_PROTOCOL=PLAINTEXT, the default). `make run` "
                "and `pearls-infra up` pick free ports and print them.",
            },
            "production": {
                "host": "{bootstrap}",
                "protocol": "kafka-secure",
                "title": "Production",
                "description": "The programme's Kafka cluster over TLS, clients authenticated "
                "with SASL/SCRAM-SHA-512 (KAFKA_SECURITY_PROTOCOL=SASL_SSL, "
                "KAFKA_SASL_MECHANISM=SCRAM-SHA-512, KAFKA_SASL_USERNAME, "
                "KAFKA_SASL_PASSWORD, KAFKA_SSL_CAFILE).",
                "variables": {
                    "bootstrap": {
                        "description": "A bootstrap broker (KAFKA_BOOTSTRAP_SERVERS).",
                        "examples": ["kafka-1.pearls.example:9093"],
                    }
                },
                "security": [{"$ref": "#/components/securitySchemes/saslScram"}],
            },
        },
        "channels": channels,
        "operations": operations,
        "components": {
            "messages": messages,
            "securitySchemes": {
                "saslScram": {
                    "type": "scramSha512",
                    "description": "SASL/SCRAM-SHA-512 over TLS; one Kafka user per service.",
                }
            },
            "correlationIds": {
                "request": {
                    "description": "Id of the HTTP request that started the chain of events.",
                    "location": "$message.header#/ce_correlationid",
                }
            },
        },
    }
