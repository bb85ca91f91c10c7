"""Bearer tokens: digests, the settings format, distinctness and constant-time lookups."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from pydantic import SecretStr, ValidationError

from pearls_shared.tokens import (
    TokenBook,
    TokenEntry,
    check_distinct,
    digest_matches,
    hash_token,
    new_token,
)


def test_a_token_is_stored_as_its_sha256_digest() -> None:
    assert hash_token("s3cret") == hashlib.sha256(b"s3cret").digest()
    assert len(hash_token("")) == 32


def test_new_tokens_are_long_url_safe_fresh_and_come_with_their_digest() -> None:
    (first, first_digest), (second, _) = new_token(), new_token()
    assert first != second
    assert len(first) == 43  # 32 random bytes, base64 without padding
    assert set(first) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert first_digest == hash_token(first)


def test_an_entry_takes_a_digest_as_it_is() -> None:
    digest = hashlib.sha256(b"other").hexdigest()
    entry = TokenEntry(id="jonas", token_sha256=digest)
    assert entry.digest == bytes.fromhex(digest) and entry.token is None


@pytest.mark.parametrize("plain", ["s3cret-token-value", SecretStr("s3cret-token-value")])
def test_a_plain_token_is_hashed_at_load_and_never_kept(plain: object) -> None:
    entry = TokenEntry.model_validate({"id": "anna", "token": plain})
    assert entry.digest == hash_token("s3cret-token-value")
    assert entry.token is None
    assert "s3cret" not in entry.model_dump_json() and "s3cret" not in repr(entry)


def test_an_entry_needs_a_well_formed_digest_or_a_token() -> None:
    with pytest.raises(ValidationError, match="token_sha256"):
        TokenEntry(id="anna")
    with pytest.raises(ValidationError, match="token_sha256"):
        TokenEntry.model_validate({"id": "anna", "token": ""})
    with pytest.raises(ValidationError):
        TokenEntry(id="anna", token_sha256="not-hex")
    with pytest.raises(ValidationError):
        TokenEntry(id="anna", token_sha256=hashlib.sha256(b"x").hexdigest().upper())
    with pytest.raises(ValidationError):
        TokenEntry.model_validate({"id": "", "token": "t"})


def test_subclasses_keep_their_own_fields() -> None:
    class Reviewer(TokenEntry):
        city_name: str

    reviewer = Reviewer.model_validate({"id": "r1", "city_name": "Kaunas", "token": "t"})
    assert reviewer.city_name == "Kaunas" and reviewer.digest == hash_token("t")


def _entry(id: str, token: str) -> TokenEntry:
    return TokenEntry.model_validate({"id": id, "token": token})


def test_distinct_ids_and_tokens_pass() -> None:
    check_distinct(
        {
            "coordinator": [_entry("anna", "a"), _entry("jonas", "j")],
            # The same id in another kind is another person's role, not a repeat.
            "reviewer": [_entry("anna", "r")],
        }
    )
    check_distinct({})


def test_an_id_given_twice_within_a_kind_is_refused_naming_the_kind() -> None:
    with pytest.raises(ValueError, match="every reviewer id must be given once"):
        check_distinct(
            {
                "coordinator": [_entry("anna", "a")],
                "reviewer": [_entry("r1", "x"), _entry("r1", "y")],
            }
        )


def test_a_token_shared_within_or_across_kinds_is_refused() -> None:
    with pytest.raises(ValueError, match="coordinator 'anna' and coordinator 'jonas'"):
        check_distinct({"coordinator": [_entry("anna", "a"), _entry("jonas", "a")]})
    with pytest.raises(
        ValueError,
        match="every coordinator, reviewer and mentor needs a token of its own"
        " \\(coordinator 'anna' and mentor 'm1' have the same one\\)",
    ):
        check_distinct(
            {
                "coordinator": [_entry("anna", "a")],
                "reviewer": [_entry("r1", "r")],
                "mentor": [_entry("m1", "a")],
            }
        )


def test_a_book_names_the_holder_of_a_token() -> None:
    book = TokenBook([(hash_token("a"), "anna"), (hash_token("j"), "jonas")])
    assert book.identify("a") == "anna"
    assert book.identify("j") == "jonas"
    assert book.identify("nobody") is None
    assert book.identify(hash_token("a").hex()) is None  # the digest itself is no token
    assert TokenBook[str]([]).identify("a") is None


def test_an_empty_token_matches_nothing_even_if_its_digest_is_configured() -> None:
    book = TokenBook([(hash_token(""), "empty")])
    assert book.identify("") is None


def test_a_lookup_compares_with_every_entry_even_after_a_match(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[bytes] = []
    real = hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        calls.append(a)
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", counting)
    book = TokenBook([(hash_token(t), t) for t in ("first", "second", "third")])
    assert book.identify("first") == "first"
    assert len(calls) == 3
    calls.clear()
    assert book.identify("none") is None
    assert len(calls) == 3


def test_a_stored_digest_matches_only_its_token() -> None:
    token, digest = new_token()
    assert digest_matches(digest, token)
    assert not digest_matches(digest, token + "x")
    assert not digest_matches(digest, "")
    assert not digest_matches(None, token)
    assert not digest_matches(None, "")
    assert not digest_matches(hash_token(""), "")
