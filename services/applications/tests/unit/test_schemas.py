"""The published request schemas say what the API accepts."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from pearls_applications.entrypoints.http import contact_person
from pearls_applications.entrypoints.schemas import (
    ApplicationIn,
    ApplicationPatch,
    ContactIn,
    ReviewerIn,
)
from pearls_shared.events.common import ContactPerson


def test_the_update_schema_offers_no_null_and_needs_one_field():
    schema = ApplicationPatch.model_json_schema()
    assert schema.get("minProperties") == 1
    assert '"null"' not in json.dumps(schema["properties"])


@pytest.mark.parametrize("model", [ApplicationIn, ReviewerIn])
@pytest.mark.parametrize("name", ["\u200b", "\u00ad\u200e", "\ufeff \u2060", "\u3164", "42", "-"])
def test_a_city_name_must_show_a_letter(model, name):
    with pytest.raises(ValidationError) as caught:
        model.model_validate({"city_name": name})
    assert any(
        e["loc"] == ("city_name",) and "visible letter" in e["msg"] for e in caught.value.errors()
    ), caught.value.errors()


def test_a_city_name_is_kept_as_written():
    written = "\u200bKuld\u00adīga"
    reviewer = ReviewerIn(reviewer_id="r-1", name="Anna", city_name=written, country="LV")
    assert reviewer.city_name == written


@pytest.mark.parametrize(
    "contact",
    [
        {"name": "Inese Bērziņa", "email": "Inese@KULDIGA.example", "language": "lv"},
        {"name": "  Jānis  ", "email": "janis@Bücher.example", "language": "en"},
        {"name": "Ǆ", "email": "x@xn--bcher-kva.example", "language": "de"},
    ],
)
def test_a_request_contact_becomes_the_contact_validation_would_give(contact):
    # contact_person skips checking the address again; all else is ContactPerson's own.
    given = ContactIn.model_validate({**contact, "role": "primary"})
    built = contact_person(given)
    expected = ContactPerson.model_validate(given.model_dump())
    assert built == expected and built.model_dump() == expected.model_dump()
    assert hash(built) == hash(expected)


def test_a_contact_checks_nothing_but_its_field_types():
    # A validator of ContactPerson's own would be skipped by contact_person: teach it first.
    decorators = ContactPerson.__pydantic_decorators__
    assert not decorators.field_validators and not decorators.model_validators
    assert set(ContactPerson.model_fields) == {"name", "email", "language", "role"}


def test_a_request_contact_with_a_name_the_event_refuses_is_refused():
    too_long = ContactIn.model_construct(
        name="x" * 201, email="a@example.org", language="en", role="primary"
    )
    with pytest.raises(ValidationError):
        contact_person(too_long)
