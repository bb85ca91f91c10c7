"""SMTP security settings: the Message-ID domain, the CA bundle, AUTH only over TLS.

The TLS connection itself is tested against a real server in
``tests/integration/test_smtp_tls.py``.
"""

from __future__ import annotations

import ssl
from datetime import UTC, datetime
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest
import trustme
from pydantic import ValidationError

from pearls_notifications.adapters.mime import Envelope, build_message
from pearls_notifications.adapters.smtp import tls_context
from pearls_notifications.config import Settings
from pearls_notifications.domain.identity import hostname, message_id


def test_message_id_domain_defaults_to_the_sender_address_domain() -> None:
    assert Settings().message_id_host() == "bsr-cultural-pearls.example"
    settings = Settings(from_address="Pearls@Mail.Pearls.Example")
    assert settings.message_id_host() == "mail.pearls.example"


def test_message_id_domain_from_the_setting_is_normalised() -> None:
    settings = Settings(message_id_domain="Mail.BSR-Pearls.example")
    assert settings.message_id_host() == "mail.bsr-pearls.example"
    assert Settings(message_id_domain="pearls").message_id_host() == "pearls"
    assert Settings(message_id_domain="kuldīga.example").message_id_host() == (
        "xn--kuldga-l8a.example"
    )


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "pearls example",
        "pearls.example.",
        ".pearls.example",
        "a..b",
        "-pearls.example",
        "pearls-.example",
        "pearls_mail.example",
        "pearls@example.org",
        "<pearls.example>",
        "pearls.example\r\nBcc: x@y.example",
        "x" * 64 + ".example",
        ".".join(["abcdefgh"] * 30),
    ],
)
def test_message_id_domain_must_be_a_host_name(bad: str) -> None:
    with pytest.raises(ValidationError, match=r"message_id_domain: .* is not a host name"):
        Settings(message_id_domain=bad)
    with pytest.raises(ValueError, match="not a host name"):
        hostname(bad)


def test_message_id_is_the_same_for_every_attempt_and_ends_in_the_domain() -> None:
    settings = Settings(message_id_domain="mail.pearls.example")
    domain = settings.message_id_host()
    first = message_id("ev-1", "inese@kuldiga.example", "application_received", domain)
    again = message_id("ev-1", "inese@kuldiga.example", "application_received", domain)
    assert first == again
    assert first.endswith("@mail.pearls.example>")


def test_a_long_message_id_domain_stays_on_one_header_line() -> None:
    domain = ".".join(["pearls-mail-relay-of-the-baltic-sea-region"] * 4) + ".example"
    mid = message_id("ev-1", "inese@kuldiga.example", "application_received", hostname(domain))
    raw = build_message(
        Envelope(
            sender_email="pearls@pearls.example",
            sender_name="BSR Cultural Pearls",
            recipient_email="inese@kuldiga.example",
            recipient_name="Inese",
            subject="Hello",
            message_id=mid,
            date=datetime(2026, 1, 1, tzinfo=UTC),
            text="Hello\n",
            html="<p>Hello</p>\n",
            language="en",
        )
    ).as_bytes(policy=policy.SMTP)
    assert f"\r\nMessage-ID: {mid}\r\n".encode() in raw
    assert BytesParser(policy=policy.default).parsebytes(raw)["Message-ID"] == mid


def test_auth_is_refused_without_tls_so_the_password_never_travels_in_clear() -> None:
    with pytest.raises(
        ValidationError, match="smtp_username: AUTH needs smtp_tls or smtp_starttls"
    ):
        Settings(smtp_username="pearls", smtp_password="hunter2-secret")
    assert Settings(smtp_username="pearls", smtp_password="p", smtp_starttls=True).smtp_username
    assert Settings(smtp_username="pearls", smtp_password="p", smtp_tls=True).smtp_username


def test_a_refused_setting_never_prints_the_secrets_given_with_it() -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(
            smtp_username="pearls",
            smtp_password="hunter2-secret",
            database_url="postgresql://n:db-secret@db.example/n",
        )
    assert "hunter2-secret" not in str(caught.value)
    assert "db-secret" not in str(caught.value)


def test_the_ca_file_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match=r"smtp_cafile: .* is not a readable file"):
        Settings(smtp_cafile=tmp_path / "missing.pem")
    with pytest.raises(ValidationError, match="smtp_cafile"):
        Settings(smtp_cafile=tmp_path)  # a folder is not a bundle


def test_the_tls_context_verifies_chain_and_host_name_with_tls_1_2_at_least(
    tmp_path: Path,
) -> None:
    system = tls_context(Settings(smtp_starttls=True))
    assert system.verify_mode is ssl.CERT_REQUIRED and system.check_hostname
    assert system.minimum_version >= ssl.TLSVersion.TLSv1_2

    ca = trustme.CA()
    cafile = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(cafile))
    private = tls_context(Settings(smtp_tls=True, smtp_cafile=cafile))
    assert private.verify_mode is ssl.CERT_REQUIRED and private.check_hostname
    # The bundle replaces the system's store: only the private CA is trusted.
    assert len(private.get_ca_certs()) == 1


def test_a_malformed_ca_file_fails_when_the_client_is_built(tmp_path: Path) -> None:
    from pearls_notifications.adapters.smtp import SmtpClient

    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    with pytest.raises(ssl.SSLError):
        SmtpClient(Settings(smtp_starttls=True, smtp_cafile=junk))
    SmtpClient(Settings(smtp_cafile=junk))  # no TLS configured: the file is not read
