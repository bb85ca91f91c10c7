"""breaking_changes / compare on schemas as pydantic emits them."""

from __future__ import annotations

import uuid
from typing import Any, Literal

import pytest
from pydantic import BaseModel, Field

from pearls_shared.events.registry import EVENT_TYPES
from pearls_shared.schema_compat import breaking_changes, compare
from pearls_shared.schema_tool import event_schema


def schema(model: type[BaseModel]) -> dict[str, Any]:
    return model.model_json_schema()


class Contact(BaseModel):
    name: str = Field(max_length=200)
    email: str
    role: Literal["primary", "backup"]


class V1(BaseModel):
    application_id: uuid.UUID
    city_name: str = Field(max_length=200)
    population: int = Field(ge=1)
    contacts: list[Contact]
    score: float | None = None


def test_identical_schemas_are_compatible() -> None:
    assert breaking_changes(schema(V1), schema(V1)) == []
    assert compare(schema(V1), schema(V1)).warnings == []


def test_adding_an_optional_property_is_compatible() -> None:
    class V2(V1):
        region: str | None = Field(default=None, description="New and optional.")

    result = compare(schema(V1), schema(V2))
    assert result.ok and result.breaking == [] and result.warnings == []


def test_changing_descriptions_and_titles_is_compatible() -> None:
    class V2(BaseModel):
        """Now documented."""

        application_id: uuid.UUID = Field(description="Id.", title="The id")
        city_name: str = Field(max_length=200, description="City.")
        population: int = Field(ge=1)
        contacts: list[Contact]
        score: float | None = None

    assert breaking_changes(schema(V1), schema(V2)) == []


def test_removed_property() -> None:
    class V2(BaseModel):
        application_id: uuid.UUID
        city_name: str = Field(max_length=200)
        contacts: list[Contact]
        score: float | None = None

    assert breaking_changes(schema(V1), schema(V2)) == [
        "population: property removed (a rename removes it too)"
    ]


def test_renamed_property_is_a_removal_and_a_new_required_property() -> None:
    class V2(BaseModel):
        application_id: uuid.UUID
        city: str = Field(max_length=200)
        population: int = Field(ge=1)
        contacts: list[Contact]
        score: float | None = None

    changes = breaking_changes(schema(V1), schema(V2))
    assert any(c.startswith("city_name: property removed") for c in changes)
    assert "city: new required property" in changes


def test_type_change() -> None:
    class V2(BaseModel):
        application_id: uuid.UUID
        city_name: str = Field(max_length=200)
        population: str
        contacts: list[Contact]
        score: float | None = None

    assert breaking_changes(schema(V1), schema(V2)) == [
        "population: type changed from integer to string"
    ]


def test_format_change_of_a_string() -> None:
    class V2(BaseModel):
        application_id: str  # no longer a uuid
        city_name: str = Field(max_length=200)
        population: int = Field(ge=1)
        contacts: list[Contact]
        score: float | None = None

    # Dropping a format widens; it is allowed with a warning.
    result = compare(schema(V1), schema(V2))
    assert result.breaking == []
    assert any("application_id: format" in w for w in result.warnings)
    # The way back tightens.
    assert breaking_changes(schema(V2), schema(V1)) == [
        'application_id: format changed from null to "uuid"'
    ]


def test_new_required_property() -> None:
    class V2(V1):
        region: str

    assert breaking_changes(schema(V1), schema(V2)) == ["region: new required property"]


def test_optional_to_required() -> None:
    class V2(BaseModel):
        application_id: uuid.UUID
        city_name: str = Field(max_length=200)
        population: int = Field(ge=1)
        contacts: list[Contact]
        score: float | None

    assert breaking_changes(schema(V1), schema(V2)) == [
        "score: optional -> required (older events lack it)"
    ]


def test_required_to_optional_and_nullable() -> None:
    class V2(BaseModel):
        application_id: uuid.UUID
        city_name: str | None = Field(default=None, max_length=200)
        population: int = Field(ge=1)
        contacts: list[Contact]
        score: float | None = None

    changes = breaking_changes(schema(V1), schema(V2))
    assert "city_name: null now allowed (consumers rely on a value)" in changes
    assert "city_name: required -> optional (consumers rely on it)" in changes


def test_null_no_longer_allowed() -> None:
    class V2(BaseModel):
        application_id: uuid.UUID
        city_name: str = Field(max_length=200)
        population: int = Field(ge=1)
        contacts: list[Contact]
        score: float = 0.0

    changes = breaking_changes(schema(V1), schema(V2))
    assert changes == ["score: null no longer allowed (published events may carry null)"]


def test_removed_enum_value_is_breaking_and_added_one_a_warning() -> None:
    class Narrow(BaseModel):
        role: Literal["primary"]

    class Wide(BaseModel):
        role: Literal["primary", "backup", "deputy"]

    class Base(BaseModel):
        role: Literal["primary", "backup"]

    assert breaking_changes(schema(Base), schema(Narrow)) == [
        'role: enum values removed: ["backup"]'
    ]
    result = compare(schema(Base), schema(Wide))
    assert result.breaking == []
    assert result.warnings and 'enum values added: ["deputy"]' in result.warnings[0]


def test_nested_change_inside_a_defs_model() -> None:
    class Contact2(BaseModel):
        name: str = Field(max_length=200)
        email: str
        role: Literal["primary", "backup"]
        phone: str  # new and required, inside $defs

    class V2(BaseModel):
        application_id: uuid.UUID
        city_name: str = Field(max_length=200)
        population: int = Field(ge=1)
        contacts: list[Contact2]
        score: float | None = None

    assert breaking_changes(schema(V1), schema(V2)) == ["contacts[].phone: new required property"]


def test_nested_removal_behind_optional_ref() -> None:
    class Mentor(BaseModel):
        mentor_id: uuid.UUID
        email: str

    class Mentor2(BaseModel):
        mentor_id: uuid.UUID

    class A(BaseModel):
        mentor: Mentor | None = None

    class B(BaseModel):
        mentor: Mentor2 | None = None

    assert breaking_changes(schema(A), schema(B)) == [
        "mentor.email: property removed (a rename removes it too)"
    ]


def test_tightening_is_breaking_and_widening_a_warning() -> None:
    class Tight(BaseModel):
        application_id: uuid.UUID
        city_name: str = Field(max_length=100, pattern=r"^\w+$")
        population: int = Field(ge=1000)
        contacts: list[Contact] = Field(min_length=1)
        score: float | None = None

    changes = breaking_changes(schema(V1), schema(Tight))
    assert sorted(changes) == sorted(
        [
            'city_name: pattern changed from null to "^\\\\w+$"',
            "city_name: maxLength tightened from 200 to 100",
            "population: minimum tightened from 1 to 1000",
            "contacts: minItems tightened from null to 1",
        ]
    )
    result = compare(schema(Tight), schema(V1))
    assert result.breaking == []
    assert len(result.warnings) == 4


def test_dict_values_and_required_keys() -> None:
    class Titles(BaseModel):
        title: dict[Literal["en", "lv"], str] = Field(json_schema_extra={"required": ["en"]})

    class TitlesInts(BaseModel):
        title: dict[Literal["en", "lv"], int] = Field(json_schema_extra={"required": ["en"]})

    class TitlesFree(BaseModel):
        title: dict[Literal["en", "lv"], str]

    assert breaking_changes(schema(Titles), schema(TitlesInts)) == [
        "title{*}: type changed from string to integer"
    ]
    assert breaking_changes(schema(Titles), schema(TitlesFree)) == [
        "title.en: required -> optional (consumers rely on it)"
    ]
    assert breaking_changes(schema(TitlesFree), schema(Titles)) == [
        "title.en: optional -> required (older events lack it)"
    ]


def test_routing_changes_are_breaking() -> None:
    model = EVENT_TYPES["pearls.mentor.assigned"]
    published = event_schema(model)
    moved = published | {"x-pearls-key": "mentor_id"}
    assert breaking_changes(published, moved) == [
        '(event): x-pearls-key changed from "participant_id" to "mentor_id"'
    ]


def test_recursive_models_terminate() -> None:
    class Node(BaseModel):
        name: str
        children: list[Node] = []

    assert breaking_changes(schema(Node), schema(Node)) == []


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_every_published_schema_is_compatible_with_itself(event_type: str) -> None:
    published = event_schema(EVENT_TYPES[event_type])
    assert compare(published, published).breaking == []
