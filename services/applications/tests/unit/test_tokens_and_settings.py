"""Applicant tokens, sealing for idempotent replay, and how token settings load."""

from __future__ import annotations

import hashlib
import uuid

import pytest
from pydantic import ValidationError

from pearls_applications.config import CoordinatorEntry, Settings
from pearls_applications.service_layer import tokens
from pearls_shared.tokens import hash_token, new_token


def test_a_sealed_token_opens_only_with_the_same_key_and_application():
    token, _ = new_token()
    raw = tokens.token_raw(token)
    assert len(raw) == 32 and tokens.token_text(raw) == token
    app_id = uuid.uuid4()
    sealed = tokens.seal(raw, "key-0123456789", app_id)
    assert sealed != raw
    assert tokens.token_text(tokens.unseal(sealed, "key-0123456789", app_id)) == token
    assert tokens.unseal(sealed, "key-0123456780", app_id) != raw
    assert tokens.unseal(sealed, "key-0123456789", uuid.uuid4()) != raw


def test_tokens_are_long_and_fresh():
    first, second = new_token()[0], new_token()[0]
    assert first != second and len(first) == 43


def test_plain_tokens_are_hashed_when_settings_load(monkeypatch):
    monkeypatch.setenv(
        "PEARLS_APPLICATIONS_COORDINATORS",
        '[{"id": "anna", "token": "s3cret-token-value"},'
        ' {"id": "jonas", "token_sha256": "' + hashlib.sha256(b"other").hexdigest() + '"}]',
    )
    monkeypatch.setenv(
        "PEARLS_APPLICATIONS_REVIEWERS",
        '[{"id": "r1", "name": "Rūta", "city_name": "Kaunas", "country": "LT", "token": "t"}]',
    )
    settings = Settings()
    anna, jonas = settings.coordinators
    assert anna.digest == hash_token("s3cret-token-value") and anna.token is None
    assert "s3cret" not in settings.model_dump_json()
    assert jonas.digest == hashlib.sha256(b"other").digest()
    assert settings.reviewers[0].city_name == "Kaunas"


def test_an_entry_without_any_token_is_refused():
    with pytest.raises(ValidationError, match="token_sha256"):
        CoordinatorEntry(id="anna")
    with pytest.raises(ValidationError):
        CoordinatorEntry(id="anna", token_sha256="not-hex")


def test_a_token_or_id_given_twice_is_refused():
    anna = {"id": "anna", "token": "token-of-anna-0123456789"}
    # One token for two people: the audit trail could not tell who acted.
    with pytest.raises(ValidationError, match="token"):
        Settings(coordinators=[anna, {"id": "jonas", "token": "token-of-anna-0123456789"}])
    with pytest.raises(ValidationError, match="token"):
        Settings(
            coordinators=[anna],
            reviewers=[
                {
                    "id": "r1",
                    "name": "Rūta",
                    "city_name": "Kaunas",
                    "country": "LT",
                    "token": "token-of-anna-0123456789",
                }
            ],
        )
    with pytest.raises(ValidationError, match="id"):
        Settings(coordinators=[anna, {"id": "anna", "token": "another-token-0123456789"}])
