"""The contracts' e-mail type: pydantic's checks and JSON schema, each result remembered."""

from __future__ import annotations

import pydantic
import pytest

from pearls_shared.events.common import ContactPerson, _valid_email


def contact(email: str) -> ContactPerson:
    return ContactPerson(name="Inese", email=email, language="lv", role="primary")


def test_normalises_like_pydantic_and_remembers_the_result() -> None:
    _valid_email.cache_clear()
    address = "Inese.Berzina@KULDIGA.Example"
    assert contact(address).email == pydantic.validate_email(address)[1]
    assert contact(address).email == "Inese.Berzina@kuldiga.example"
    assert _valid_email.cache_info().hits == 1


@pytest.mark.parametrize("bad", ["no-at-sign", "two@@kuldiga.example", "x@-bad-.example"])
def test_an_invalid_address_is_refused_every_time(bad: str) -> None:
    for _ in range(2):  # a refusal is not cached into an acceptance
        with pytest.raises(pydantic.ValidationError) as refused:
            contact(bad)
        assert refused.value.errors()[0]["loc"] == ("email",)


def test_the_json_schema_stays_a_string_in_email_format() -> None:
    schema = ContactPerson.model_json_schema()["properties"]["email"]
    assert schema["type"] == "string" and schema["format"] == "email"
