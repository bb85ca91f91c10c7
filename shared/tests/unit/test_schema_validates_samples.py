"""The published JSON Schemas describe the events as they really are on the wire.

A subscriber that validates with a standard JSON Schema validator (not pydantic)
must accept what Pearls publishes, and refuse what Pearls would refuse.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from pearls_shared.events.registry import EVENT_TYPES
from pearls_shared.events.samples import sample
from pearls_shared.outbox import envelope_for

SCHEMAS = Path(__file__).resolve().parents[3] / "docs" / "events"


def _validator(event_type: str) -> Draft202012Validator:
    model = EVENT_TYPES[event_type]
    schema = json.loads((SCHEMAS / f"{model.schema_name()}.json").read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_the_wire_data_of_every_event_type_validates_against_its_schema(event_type: str) -> None:
    envelope = envelope_for(sample(event_type), correlation_id="schema")
    data: dict[str, Any] = json.loads(envelope.value())
    errors = [f"{list(e.path)}: {e.message}" for e in _validator(event_type).iter_errors(data)]
    assert errors == []


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_a_missing_key_field_is_refused_by_the_schema(event_type: str) -> None:
    model = EVENT_TYPES[event_type]
    data = json.loads(envelope_for(sample(event_type), correlation_id="s").value())
    del data[model.key_field]
    assert not _validator(event_type).is_valid(data)
