"""Deterministic Message-IDs, signed unsubscribe tokens and the retry backoff."""

from __future__ import annotations

import hashlib
import re

import pytest
from pydantic import ValidationError
from structlog.testing import capture_logs

from pearls_notifications.config import Settings
from pearls_notifications.domain import unsubscribe
from pearls_notifications.domain.identity import message_id
from pearls_notifications.domain.model import Category
from pearls_notifications.service_layer.sender import backoff

SECRET = b"s3cret"


def test_message_id_is_a_function_of_event_recipient_and_template() -> None:
    a = message_id("ev-1", "a@x.example", "application_received", "mail.pearls.example")
    assert a == message_id("ev-1", "A@X.example", "application_received", "mail.pearls.example")
    assert re.fullmatch(r"<[a-z2-7]{52}@mail\.pearls\.example>", a)
    assert a != message_id("ev-2", "a@x.example", "application_received", "mail.pearls.example")
    assert a != message_id("ev-1", "b@x.example", "application_received", "mail.pearls.example")
    assert a != message_id("ev-1", "a@x.example", "application_accepted", "mail.pearls.example")
    other_domain = message_id("ev-1", "a@x.example", "application_received", "other.example")
    assert other_domain.split("@")[0] == a.split("@")[0]


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
    with pytest.raises(ValidationError, match="choose one"):
        Settings(smtp_tls=True, smtp_starttls=True)
    with pytest.raises(ValidationError, match="smtp_username"):
        Settings(smtp_password="x")


def test_coordinators_are_a_json_list_of_token_entries_like_every_service(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    digest = hashlib.sha256(b"b").hexdigest()
    monkeypatch.setenv(
        "PEARLS_NOTIFICATIONS_COORDINATORS",
        f'[{{"id": "anna", "token": "a"}}, {{"id": "ben", "token_sha256": "{digest}"}}]',
    )
    s = Settings()
    assert [(e.id, e.token) for e in s.coordinators] == [("anna", None), ("ben", None)]
    assert s.token_digests() == (hashlib.sha256(b"a").digest(), bytes.fromhex(digest))
    book = s.coordinator_book()
    assert (book.identify("a"), book.identify("b")) == ("anna", "ben")
    assert book.identify(f"sha256:{digest}") is None  # the digest itself is no token
    assert Settings(coordinators=[]).coordinator_book().identify("a") is None


def test_coordinators_need_distinct_ids_and_tokens() -> None:
    with pytest.raises(ValidationError, match="id must be given once"):
        Settings(coordinators=[{"id": "anna", "token": "a"}, {"id": "anna", "token": "b"}])
    with pytest.raises(ValidationError, match="token of its own"):
        Settings(coordinators=[{"id": "anna", "token": "a"}, {"id": "ben", "token": "a"}])
    with pytest.raises(ValidationError, match="token_sha256"):
        Settings(coordinators=[{"id": "anna"}])


def test_deprecated_token_settings_still_work_and_say_so() -> None:
    digest = hashlib.sha256(b"b").hexdigest()
    s = Settings(
        coordinators=[{"id": "anna", "token": "a"}],
        api_token_sha256=hashlib.sha256(b"c").hexdigest(),
        coordinator_tokens=f" a , sha256:{digest.upper()},",
    )
    with capture_logs() as logs:
        book = s.coordinator_book()  # the app builds it once, after logging is configured
    assert [entry["event"] for entry in logs] == ["deprecated_setting"]
    assert logs[0]["settings"] == ["api_token_sha256", "coordinator_tokens"]
    assert logs[0]["use"] == "PEARLS_NOTIFICATIONS_COORDINATORS"
    # "a" is anna's: the deprecated copy of it does not make a second coordinator.
    assert book.identify("a") == "anna"
    assert book.identify("b") == "coordinator_tokens[2]"
    assert book.identify("c") == "api_token_sha256"
    assert len(s.token_digests()) == 3
    with capture_logs() as logs:
        Settings(coordinators=[{"id": "anna", "token": "a"}]).coordinator_book()
    assert logs == []  # nothing deprecated, nothing said
    with pytest.raises(ValidationError, match="64 hex"):
        Settings(coordinator_tokens="sha256:abc")


def test_the_coordinators_file_rotates_tokens_without_a_restart(tmp_path) -> None:
    import json
    import os

    from pearls_notifications.bootstrap import create_app

    path = tmp_path / "coordinators.json"

    def write(entries: object) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(entries if isinstance(entries, str) else json.dumps(entries))
        os.replace(tmp, path)

    write([{"id": "anna", "token": "anna-token-0123456789"}])
    app = create_app(Settings(coordinators_file=path))
    book = app.state.coordinator_tokens
    assert book.identify("anna-token-0123456789") == "anna"
    write([{"id": "birgit", "token": "birgit-token-0123456789"}])
    assert book.identify("birgit-token-0123456789") == "birgit"
    assert book.identify("anna-token-0123456789") is None
    write('[{"id": "birgit"')  # malformed: the last good tokens stay
    assert book.identify("birgit-token-0123456789") == "birgit"
