"""The event contract: every type of the programme's table, modelled, sampled, published."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from pearls_shared import topics
from pearls_shared.events import registry
from pearls_shared.events.base import EventData
from pearls_shared.events.registry import (
    EVENT_TYPES,
    TOPIC_OF,
    ContractError,
    UnknownEventType,
    build_registry,
    model_for,
    parse,
)
from pearls_shared.events.samples import sample, sample_types
from pearls_shared.schema_tool import event_schema, render, schema_filename

ROOT = Path(__file__).resolve().parents[3]
SCHEMAS = ROOT / "docs" / "events"

# The contract table of docs/programme.md: topic -> event types. Fixed names.
CONTRACT = {
    topics.APPLICATIONS: {
        "pearls.call.opened": "call_id",
        "pearls.call.closed": "call_id",
        "pearls.application.submitted": "application_id",
        "pearls.application.withdrawn": "application_id",
        "pearls.application.reviewed": "application_id",
        "pearls.application.accepted": "application_id",
        "pearls.application.rejected": "application_id",
        "pearls.application.waitlisted": "application_id",
        "pearls.application.contacts_changed": "application_id",
        "pearls.person.erased": "erasure_id",
    },
    topics.MENTORING: {
        "pearls.mentor.registered": "mentor_id",
        "pearls.mentor.assigned": "participant_id",
        "pearls.mentor.unassigned": "participant_id",
        "pearls.mentor.unmatched": "participant_id",
        "pearls.session.scheduled": "session_id",
        "pearls.plan.submitted": "participant_id",
        "pearls.plan.approved": "participant_id",
        "pearls.plan.changes_requested": "participant_id",
        "pearls.plan.milestone_reached": "participant_id",
        "pearls.plan.milestone_overdue": "participant_id",
        "pearls.plan.completed": "participant_id",
    },
    topics.AWARDS: {
        "pearls.award.round_opened": "round_id",
        "pearls.award.nominated": "participant_id",
        "pearls.award.granted": "participant_id",
        "pearls.award.revoked": "participant_id",
        "pearls.award.round_closed": "round_id",
    },
    topics.NOTIFICATIONS: {
        "pearls.notification.sent": "recipient",
        "pearls.notification.failed": "recipient",
    },
}
ALL_TYPES = sorted(t for types in CONTRACT.values() for t in types)


def test_registry_holds_exactly_the_28_types_of_the_contract() -> None:
    assert len(ALL_TYPES) == 28
    assert sorted(EVENT_TYPES) == ALL_TYPES


@pytest.mark.parametrize(
    ("event_type", "topic", "key"),
    [(t, topic, key) for topic, types in CONTRACT.items() for t, key in types.items()],
)
def test_topic_key_and_producer_follow_the_contract(event_type: str, topic: str, key: str) -> None:
    model = model_for(event_type)
    assert model.event_type == event_type
    assert model.topic == topic == TOPIC_OF[event_type]
    assert model.key_field == key
    assert model.producer == topic.split(".")[1]
    assert model.schema_version >= 1


@pytest.mark.parametrize("event_type", ALL_TYPES)
def test_every_field_is_described(event_type: str) -> None:
    schema = event_schema(model_for(event_type))
    objects = [schema, *schema.get("$defs", {}).values()]
    for obj in objects:
        for name, prop in obj.get("properties", {}).items():
            assert prop.get("description"), f"{event_type}: {name} has no description"


@pytest.mark.parametrize("event_type", ALL_TYPES)
def test_sample_round_trips_through_json(event_type: str) -> None:
    event = sample(event_type)
    assert type(event) is model_for(event_type)
    data = json.loads(json.dumps(event.to_data()))  # what travels in the record value
    parsed = parse(event_type, data)
    assert parsed == event
    assert parsed.key() == event.key() == str(data[event.key_field])


def test_samples_cover_the_registry() -> None:
    assert sorted(sample_types()) == ALL_TYPES
    with pytest.raises(UnknownEventType):
        sample("pearls.nothing.happened")


def test_consumers_ignore_fields_they_do_not_know() -> None:
    data = sample("pearls.call.closed").to_data() | {"added_in_a_later_release": 1}
    assert parse("pearls.call.closed", data) == sample("pearls.call.closed")


def test_unknown_type_names_the_type() -> None:
    with pytest.raises(UnknownEventType) as caught:
        parse("pearls.application.eaten", {})
    assert isinstance(caught.value, KeyError)
    assert caught.value.event_type == "pearls.application.eaten"
    assert "pearls.application.eaten" in str(caught.value)


def test_bad_data_raises_validation_error() -> None:
    data = sample("pearls.application.accepted").to_data()
    del data["contacts"]
    with pytest.raises(ValidationError, match="contacts"):
        parse("pearls.application.accepted", data)


def _with(event_type: str, **changes: Any) -> dict[str, Any]:
    return sample(event_type).to_data() | changes


@pytest.mark.parametrize(
    ("event_type", "changes", "fault"),
    [
        ("pearls.application.submitted", {"country": "lv"}, "country"),
        ("pearls.application.submitted", {"themes": ["Culture & Arts"]}, "themes"),
        ("pearls.application.submitted", {"themes": []}, "themes"),
        ("pearls.application.submitted", {"languages": ["ru"]}, "languages"),
        ("pearls.application.submitted", {"submitted_at": "2025-10-20T14:00:00"}, "submitted_at"),
        ("pearls.application.accepted", {"contacts": []}, "contacts"),
        ("pearls.call.opened", {"title": {"lv": "Tikai latviski"}}, "title"),
        ("pearls.call.opened", {"closes_at": "2025-08-01T00:00:00Z"}, "closes_at"),
        ("pearls.notification.sent", {"recipient": "not an address"}, "recipient"),
        ("pearls.plan.milestone_reached", {"milestones_reached": 4}, "milestones_reached"),
    ],
)
def test_models_reject_what_consumers_could_not_use(
    event_type: str, changes: dict[str, Any], fault: str
) -> None:
    with pytest.raises(ValidationError, match=fault):
        parse(event_type, _with(event_type, **changes))


def test_contacts_need_exactly_one_primary() -> None:
    contacts = sample("pearls.application.accepted").to_data()["contacts"]
    both_backup = [{**c, "role": "backup"} for c in contacts]
    with pytest.raises(ValidationError, match="primary"):
        parse(
            "pearls.application.accepted",
            _with("pearls.application.accepted", contacts=both_backup),
        )


def test_models_are_frozen() -> None:
    event = sample("pearls.call.closed")
    with pytest.raises(ValidationError):
        event.applications_received = 0  # type: ignore[misc]


@pytest.mark.parametrize("event_type", ALL_TYPES)
def test_committed_schema_is_up_to_date(event_type: str) -> None:
    model = model_for(event_type)
    path = SCHEMAS / schema_filename(model)
    assert path.exists(), f"{path} missing: run `uv run pearls-schemas write`"
    assert path.read_text(encoding="utf-8") == render(event_schema(model)), (
        f"{path} is out of date: run `uv run pearls-schemas write`"
    )
    assert json.loads(path.read_text())["$id"] == model.dataschema()


def test_registry_refuses_duplicate_types() -> None:
    first = model_for("pearls.call.closed")
    with pytest.raises(ContractError, match=r"pearls\.call\.closed"):
        build_registry([first, first])


def test_registry_refuses_a_key_field_that_is_not_a_required_field() -> None:
    class Broken(EventData):
        event_type = "pearls.call.broken"
        topic = topics.APPLICATIONS
        producer = "applications"
        key_field = "call_id"

        call_id: str | None = None

    with pytest.raises(ContractError, match="key field"):
        build_registry([Broken])


def test_registry_refuses_a_topic_the_producer_does_not_own() -> None:
    class Misplaced(EventData):
        event_type = "pearls.call.misplaced"
        topic = topics.AWARDS
        producer = "applications"
        key_field = "call_id"

        call_id: str

    with pytest.raises(ContractError, match="does not publish"):
        build_registry([Misplaced])


def test_registry_module_exports() -> None:
    assert registry.EVENT_TYPES is EVENT_TYPES
    assert set(TOPIC_OF.values()) == set(topics.CONTRACT_TOPICS)


def test_registry_refuses_a_model_without_a_docstring() -> None:
    class Undocumented(EventData):
        event_type = "pearls.call.undocumented"
        topic = topics.APPLICATIONS
        producer = "applications"
        key_field = "call_id"

        call_id: str

    with pytest.raises(ContractError, match="docstring"):
        build_registry([Undocumented])
