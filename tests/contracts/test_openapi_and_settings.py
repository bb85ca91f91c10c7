"""The services' OpenAPI documents and the README's settings table come from the code.

`pearls-schemas check` (make schemas) compares the files with the code; these
tests show that what it compares is stable and complete: the OpenAPI documents
do not depend on the environment or the run, and the settings table names
every variable exactly as pydantic-settings reads it, with a meaning for each.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pearls_shared.openapi_docs import openapi_document, render_openapi, services
from pearls_shared.settings_table import (
    MASK,
    _masked,
    default_text,
    env_name,
    settings_classes,
    settings_table,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("service", services())
def test_openapi_is_the_same_whatever_the_environment(
    service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = render_openapi(openapi_document(service))
    prefix = f"PEARLS_{service.upper()}_"
    monkeypatch.setenv(f"{prefix}PUBLIC_BASE_URL", "https://elsewhere.example")
    monkeypatch.setenv(f"{prefix}HTTP_PORT", "1")
    monkeypatch.setenv("PEARLS_HTTP_MAX_BODY_BYTES", "7")
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "nowhere:1")
    again = render_openapi(openapi_document(service))
    assert again == first
    document = json.loads(first)
    assert document["openapi"].startswith("3.")
    assert document["paths"], f"{service}: no routes"
    assert list(document) == sorted(document)  # sorted keys: diffs show real changes


def test_every_setting_has_a_meaning() -> None:
    missing = [
        env_name(cls, name)
        for _, cls in settings_classes()
        for name, info in cls.model_fields.items()
        if not (info.description or "").strip()
    ]
    assert missing == [], "give these settings a description= (the README table shows it)"


def test_table_names_each_variable_as_pydantic_settings_reads_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    table = settings_table()
    for _, cls in settings_classes():
        expected = {}
        for name, info in cls.model_fields.items():
            variable = env_name(cls, name)
            if f"| `{variable}` |" not in table and name != "database_url":
                pytest.fail(f"{variable} is not in the table")
            if info.annotation is str:
                monkeypatch.setenv(variable, "probe")
                expected[name] = "probe"
            elif info.annotation is int and isinstance(info.default, int):
                monkeypatch.setenv(variable, str(info.default + 1))
                expected[name] = info.default + 1
        read = cls()
        assert {name: getattr(read, name) for name in expected} == expected, cls.__name__


def test_secrets_are_masked_and_dsns_keep_what_is_not_secret() -> None:
    assert _masked("postgresql://u:hunter2@db:5432/x") == f"postgresql://u:{MASK}@db:5432/x"
    assert _masked("postgresql://u@db/x") == "postgresql://u@db/x"
    assert _masked("hunter2") == MASK
    assert "hunter2" not in settings_table()
    for _, cls in settings_classes():
        for info in cls.model_fields.values():
            assert str(ROOT) not in default_text(info)  # no machine's paths in the README
