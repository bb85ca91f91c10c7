"""The shared pieces of erasure: keyed hash, pseudonym, JSON scrubbing."""

from __future__ import annotations

from pydantic import EmailStr, SecretStr, TypeAdapter

from pearls_shared.events.applications import PersonErased
from pearls_shared.events.common import ContactPerson
from pearls_shared.privacy import (
    ERASED_NAME,
    Eraser,
    ErasureSettings,
    emails_in,
    is_pseudonym,
    scrub,
)

ERASER = Eraser.from_settings(ErasureSettings(key=SecretStr("k" * 32)))


def test_the_hash_is_keyed_and_ignores_case_and_spaces() -> None:
    other = Eraser.from_settings(ErasureSettings(key=SecretStr("another-key")))
    assert ERASER.hash(" Anna@Fjord.Example ") == ERASER.hash("anna@fjord.example")
    assert ERASER.hash("anna@fjord.example") != other.hash("anna@fjord.example")
    assert len(ERASER.hash("anna@fjord.example")) == 64


def test_the_pseudonym_is_stable_recognisable_and_a_valid_contract_address() -> None:
    pseudonym = ERASER.pseudonym("Anna@Fjord.Example")
    assert pseudonym == ERASER.pseudonym("anna@fjord.example")
    assert pseudonym.startswith("erased-") and is_pseudonym(pseudonym)
    assert not is_pseudonym("anna@fjord.example")
    TypeAdapter(EmailStr).validate_python(pseudonym)
    ContactPerson(name=ERASED_NAME, email=pseudonym, language="en", role="primary")


def test_scrub_replaces_the_address_and_the_name_beside_it_only() -> None:
    hide = {"anna@fjord.example": ERASER.pseudonym("anna@fjord.example")}
    value = {
        "contacts": [
            {"name": "Anna", "email": "ANNA@fjord.example", "role": "primary"},
            {"name": "Bo", "email": "bo@fjord.example", "role": "backup"},
        ],
        "recipient": "anna@fjord.example",
        "note": "joanna@fjord.example stays",
    }
    out = scrub(value, hide)
    assert out["contacts"][0] == {
        "name": ERASED_NAME,
        "email": hide["anna@fjord.example"],
        "role": "primary",
    }
    assert out["contacts"][1] == value["contacts"][1]
    assert out["recipient"] == hide["anna@fjord.example"]
    assert out["note"] == value["note"]
    assert emails_in(out) == {"bo@fjord.example"}


def test_the_erasure_event_carries_hashes_not_addresses() -> None:
    fields = set(PersonErased.model_fields)
    assert fields == {"erasure_id", "requested_at", "scope", "email_hashes", "application_id"}
