"""Deterministic Message-IDs, signed unsubscribe tokens and the retry backoff."""

from __future__ import annotations

import re

from pearls_notifications.config import Settings
from pearls_notifications.domain import unsubscribe
from pearls_notifications.domain.identity import message_id
from pearls_notifications.domain.model import Category
from pearls_notifications.service_layer.sender import backoff

SECRET = b"s3cret"


def test_message_id_is_a_function_of_event_recipient_and_template() -> None:
    a = message_id("ev-1", "a@x.example", "application_received")
    assert a == message_id("ev-1", "A@X.example", "application_received")
    assert re.fullmatch(r"<[a-z2-7]{52}@pearls>", a)
    assert a != message_id("ev-2", "a@x.example", "application_received")
    assert a != message_id("ev-1", "b@x.example", "application_received")
    assert a != message_id("ev-1", "a@x.example", "application_accepted")


def test_unsubscribe_token_verifies_only_for_its_recipient_and_category() -> None:
    token = unsubscribe.sign(SECRET, "a@x.example", Category.PROGRESS)
    assert unsubscribe.verify(SECRET, "A@x.example", "progress", token) is Category.PROGRESS
    assert unsubscribe.verify(SECRET, "b@x.example", "progress", token) is None
    assert unsubscribe.verify(SECRET, "a@x.example", "sessions", token) is None
    assert unsubscribe.verify(b"other", "a@x.example", "progress", token) is None
    tampered = token[:-1] + ("1" if token.endswith("0") else "0")
    assert unsubscribe.verify(SECRET, "a@x.example", "progress", tampered) is None


def test_essential_mail_cannot_be_unsubscribed_even_with_a_valid_signature() -> None:
    token = unsubscribe.sign(SECRET, "a@x.example", Category.ESSENTIAL)
    assert unsubscribe.verify(SECRET, "a@x.example", "essential", token) is None
    assert unsubscribe.verify(SECRET, "a@x.example", "nonsense", token) is None


def test_backoff_doubles_from_the_initial_delay_and_is_capped() -> None:
    s = Settings(retry_backoff_initial_s=30, retry_backoff_max_s=600)
    assert [backoff(s, n) for n in range(1, 8)] == [30, 60, 120, 240, 480, 600, 600]


def test_settings_refuse_contradictory_smtp_security() -> None:
    import pytest
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="choose one"):
        Settings(smtp_tls=True, smtp_starttls=True)
    with pytest.raises(ValidationError, match="smtp_username"):
        Settings(smtp_password="x")


def test_coordinator_tokens_are_kept_as_digests_only() -> None:
    import hashlib

    import pytest
    from pydantic import ValidationError

    digest = hashlib.sha256(b"b").hexdigest()
    s = Settings(coordinator_tokens=f" a , sha256:{digest.upper()},")
    assert s.token_digests() == (hashlib.sha256(b"a").digest(), bytes.fromhex(digest))
    assert Settings().token_digests() == ()
    book = s.coordinator_book()
    assert book.identify("a") == book.identify("b") == "coordinator"
    assert book.identify(f"sha256:{digest}") is None  # the digest itself is no token
    assert Settings().coordinator_book().identify("a") is None
    with pytest.raises(ValidationError, match="64 hex"):
        Settings(coordinator_tokens="sha256:abc")
