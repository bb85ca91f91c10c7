"""The published request schemas say what the API accepts."""

from __future__ import annotations

import json

from pearls_applications.entrypoints.schemas import ApplicationPatch


def test_the_update_schema_offers_no_null_and_needs_one_field():
    schema = ApplicationPatch.model_json_schema()
    assert schema.get("minProperties") == 1
    assert '"null"' not in json.dumps(schema["properties"])
