"""The published request schemas say what the API accepts."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from pearls_applications.entrypoints.schemas import ApplicationIn, ApplicationPatch, ReviewerIn


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
