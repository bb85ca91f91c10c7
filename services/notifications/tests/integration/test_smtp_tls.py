"""SMTP security against a real TLS mail server: STARTTLS and implicit TLS, AUTH,
certificates that do not verify, wrong credentials, STARTTLS stripped.

The server is aiosmtpd on loopback with a throwaway CA and server certificates
(trustme). It requires AUTH (LOGIN or PLAIN) and accepts it only inside TLS; it
records, for every message, the TLS session it came over and the user who
logged in. The service runs whole (Kafka, its own PostgreSQL, the sender loop)
and is told to trust the throwaway CA with ``smtp_cafile``.
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from pearls_notifications.domain.identity import message_id
from pearls_shared.events.samples import sample
from pearls_shared.testing import wait_for

pytestmark = [
    pytest.mark.integration,
    # aiosmtpd's own check knows only STARTTLS; with implicit TLS the handler checks it.
    pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning"),
]

AUTH = {"Authorization": "Bearer test-coordinator-token"}
REGISTERED = "pearls.mentor.registered"  # one recipient (the mentor), template below
TEMPLATE = "mentor_registered"
USER = "pearls-mailer"
PASSWORD = "correct horse battery staple"
ID_DOMAIN = "mail.bsr-pearls.example"


@dataclass(frozen=True)
class Arrival:
    rcpt: str
    raw: bytes
    tls_version: str | None  # what the server's side of the connection negotiated
    cipher: str | None
    login: str | None  # the user who authenticated on that connection

    def message(self) -> EmailMessage:
        parsed: EmailMessage = BytesParser(policy=policy.default).parsebytes(self.raw)  # type: ignore[assignment]
        return parsed


@dataclass(frozen=True)
class AuthAttempt:
    mechanism: str
    login: str
    over_tls: bool
    accepted: bool


@dataclass
class AuthTlsHandler:
    """Accepts mail only from ``USER`` with ``password``, and AUTH only inside TLS."""

    password: str = PASSWORD
    arrivals: list[Arrival] = field(default_factory=list)
    auth_attempts: list[AuthAttempt] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        over_tls = server.transport.get_extra_info("ssl_object") is not None
        login = auth_data.login.decode() if isinstance(auth_data, LoginPassword) else ""
        accepted = (
            over_tls
            and isinstance(auth_data, LoginPassword)
            and login == USER
            and auth_data.password.decode() == self.password
        )
        with self.lock:
            self.auth_attempts.append(AuthAttempt(mechanism, login, over_tls, accepted))
        # 235, or 535 5.7.8; the login is kept in session.auth_data for handle_DATA.
        return AuthResult(success=accepted, handled=False, auth_data=login)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        tls = server.transport.get_extra_info("ssl_object")
        login = session.auth_data if session.authenticated else None
        with self.lock:
            for rcpt in envelope.rcpt_tos:
                self.arrivals.append(
                    Arrival(
                        rcpt=rcpt.lower(),
                        raw=envelope.original_content,
                        tls_version=tls.version() if tls is not None else None,
                        cipher=tls.cipher()[0] if tls is not None else None,
                        login=login,
                    )
                )
        return "250 OK stored"

    def to(self, address: str) -> list[Arrival]:
        with self.lock:
            return [a for a in self.arrivals if a.rcpt == address.lower()]


@dataclass
class Pki:
    """A throwaway CA the service trusts, and one it does not."""

    ca: trustme.CA
    stranger: trustme.CA
    cafile: Path

    def server_context(self, *, signed_by: trustme.CA, names: tuple[str, ...]) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        signed_by.issue_cert(*names).configure_cert(context)
        return context

    def good(self) -> ssl.SSLContext:
        return self.server_context(signed_by=self.ca, names=("127.0.0.1", "localhost"))


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    ca = trustme.CA()
    cafile = tmp_path / "pearls-test-ca.pem"
    ca.cert_pem.write_to_path(str(cafile))
    return Pki(ca=ca, stranger=trustme.CA(), cafile=cafile)


class TlsMailServer:
    """aiosmtpd with STARTTLS (``require_starttls``) or implicit TLS, AUTH required."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.handler = AuthTlsHandler()
        self._controller: Controller | None = None

    def start(
        self,
        mode: str,
        context: ssl.SSLContext | None,
        mechanisms: tuple[str, ...] = ("LOGIN", "PLAIN"),
    ) -> None:
        self.stop()
        excluded = [m for m in ("LOGIN", "PLAIN") if m not in mechanisms]
        common: dict[str, Any] = {
            "hostname": "127.0.0.1",
            "port": self.port,
            "auth_required": True,
            "authenticator": self.handler.authenticate,
            "auth_exclude_mechanism": excluded,
        }
        if mode == "starttls":
            # AUTH and MAIL are refused until STARTTLS has succeeded.
            controller = Controller(
                self.handler,
                tls_context=context,
                require_starttls=context is not None,
                auth_require_tls=True,
                **common,
            )
        elif mode == "implicit":
            # The whole connection is TLS; aiosmtpd's own TLS check only knows STARTTLS,
            # so the authenticator checks the session itself.
            assert context is not None
            controller = Controller(
                self.handler, ssl_context=context, auth_require_tls=False, **common
            )
        else:
            raise ValueError(mode)
        controller.start()
        self._controller = controller

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


@pytest.fixture
def tls_server() -> Iterator[TlsMailServer]:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    server = TlsMailServer(port)
    yield server
    server.stop()


def tls_settings(server: TlsMailServer, pki: Pki, mode: str, **more: Any) -> dict[str, Any]:
    return {
        "smtp_host": "127.0.0.1",
        "smtp_port": server.port,
        "smtp_starttls": mode == "starttls",
        "smtp_tls": mode == "implicit",
        "smtp_username": USER,
        "smtp_password": PASSWORD,
        "smtp_cafile": pki.cafile,
        "message_id_domain": ID_DOMAIN,
        **more,
    }


async def delivery_of(service: Any, event_id: str) -> dict[str, Any] | None:
    """The one delivery the event caused, as the coordinators' API shows it."""
    response = await service.client.get("/deliveries", params={"event_id": event_id}, headers=AUTH)
    assert response.status_code == 200
    rows = response.json()
    assert len(rows) <= 1
    return rows[0] if rows else None


async def retried_with(service: Any, event_id: str, reason: str) -> dict[str, Any]:
    """Wait until the delivery failed at least twice with ``reason`` and is still queued."""

    async def check() -> dict[str, Any] | None:
        row = await delivery_of(service, event_id)
        if row and row["attempts"] >= 2 and reason in (row["last_error"] or ""):
            return row
        return None

    return await wait_for(check, within=60, what=f"two attempts recorded with {reason!r}")


async def sent(service: Any, event_id: str) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        row = await delivery_of(service, event_id)
        return row if row and row["status"] == "sent" else None

    return await wait_for(check, within=60, what="the delivery recorded as sent")


@pytest.mark.parametrize(
    ("mode", "mechanism"),
    [("starttls", "LOGIN"), ("implicit", "PLAIN")],
    ids=["starttls-login", "implicit-tls-plain"],
)
async def test_mail_arrives_over_verified_tls_after_auth_with_the_configured_message_id(
    start_service: Any,
    publisher: Any,
    personalize: Any,
    tls_server: TlsMailServer,
    pki: Pki,
    mode: str,
    mechanism: str,
) -> None:
    tls_server.start(mode, pki.good(), mechanisms=(mechanism,))
    service = await start_service(**tls_settings(tls_server, pki, mode))
    event = personalize(sample(REGISTERED))
    envelope = await publisher.publish(event)

    row = await sent(service, envelope.id)
    [arrival] = tls_server.handler.to(event.email)

    # Over TLS (the server's side of the session), after AUTH as the configured user.
    assert arrival.tls_version in ("TLSv1.2", "TLSv1.3"), arrival
    assert arrival.cipher
    assert arrival.login == USER
    attempts = tls_server.handler.auth_attempts
    assert attempts and all(a.over_tls and a.mechanism == mechanism for a in attempts)
    assert attempts[-1].accepted

    # The Message-ID as received: deterministic, at the configured domain, one line.
    expected = message_id(envelope.id, event.email, TEMPLATE, ID_DOMAIN)
    assert expected.endswith(f"@{ID_DOMAIN}>")
    assert arrival.message()["Message-ID"] == expected
    assert f"\r\nMessage-ID: {expected}\r\n".encode() in arrival.raw
    assert row["message_id"] == expected and row["attempts"] == 1 and row["smtp_code"] == 250


@pytest.mark.parametrize(
    ("mode", "problem", "reason"),
    [
        ("starttls", "another CA", "unable to get local issuer certificate"),
        ("implicit", "another host name", "mismatch, certificate is not valid for '127.0.0.1'"),
    ],
    ids=["starttls-unknown-ca", "implicit-tls-wrong-host-name"],
)
async def test_a_certificate_that_does_not_verify_sends_nothing_and_is_retried_with_the_reason(
    start_service: Any,
    publisher: Any,
    personalize: Any,
    tls_server: TlsMailServer,
    pki: Pki,
    mode: str,
    problem: str,
    reason: str,
) -> None:
    if problem == "another CA":
        bad = pki.server_context(signed_by=pki.stranger, names=("127.0.0.1", "localhost"))
    else:
        bad = pki.server_context(signed_by=pki.ca, names=("mail.elsewhere.example",))
    tls_server.start(mode, bad)
    service = await start_service(**tls_settings(tls_server, pki, mode))
    event = personalize(sample(REGISTERED))
    envelope = await publisher.publish(event)

    row = await retried_with(service, envelope.id, "TLS certificate verification failed")
    assert reason in row["last_error"], row["last_error"]
    assert f"127.0.0.1:{tls_server.port}" in row["last_error"]
    assert row["status"] == "pending" and row["next_attempt_at"] is not None
    assert row["smtp_code"] is None and row["sent_at"] is None and row["failed_at"] is None
    # Nothing was delivered, and the password never went to the unverified server.
    assert tls_server.handler.to(event.email) == []
    assert tls_server.handler.auth_attempts == []

    # The operator installs a certificate that verifies: the retry delivers it, same id.
    tls_server.start(mode, pki.good())
    row = await sent(service, envelope.id)
    [arrival] = tls_server.handler.to(event.email)
    assert arrival.tls_version and arrival.login == USER
    assert arrival.message()["Message-ID"] == row["message_id"]
    assert row["message_id"] == message_id(envelope.id, event.email, TEMPLATE, ID_DOMAIN)
    assert row["attempts"] >= 3 and row["last_error"] is None


async def test_wrong_credentials_send_nothing_and_are_retried_with_the_servers_reason(
    start_service: Any,
    publisher: Any,
    personalize: Any,
    tls_server: TlsMailServer,
    pki: Pki,
) -> None:
    tls_server.handler.password = "the password the service does not have"
    tls_server.start("starttls", pki.good())
    service = await start_service(**tls_settings(tls_server, pki, "starttls"))
    event = personalize(sample(REGISTERED))
    envelope = await publisher.publish(event)

    row = await retried_with(service, envelope.id, f"SMTP AUTH refused for user '{USER}'")
    assert "535" in row["last_error"] and row["smtp_code"] == 535
    assert row["status"] == "pending" and row["failed_at"] is None  # not the message's fault
    assert tls_server.handler.to(event.email) == []
    attempts = tls_server.handler.auth_attempts
    assert attempts and all(a.over_tls and not a.accepted for a in attempts)

    # The mailbox's password is set to the one the service has: the retry delivers.
    tls_server.handler.password = PASSWORD
    row = await sent(service, envelope.id)
    [arrival] = tls_server.handler.to(event.email)
    assert arrival.login == USER and arrival.tls_version
    assert arrival.message()["Message-ID"] == row["message_id"]


async def test_a_server_that_does_not_offer_starttls_gets_nothing_and_it_fails_with_the_reason(
    start_service: Any,
    publisher: Any,
    personalize: Any,
    tls_server: TlsMailServer,
    pki: Pki,
) -> None:
    """STARTTLS stripped (or never configured): no plain-text fallback, no AUTH."""
    tls_server.start("starttls", None)  # plain SMTP only
    service = await start_service(**tls_settings(tls_server, pki, "starttls"), retry_max_attempts=2)
    event = personalize(sample(REGISTERED))
    envelope = await publisher.publish(event)

    async def failed() -> dict[str, Any] | None:
        row = await delivery_of(service, envelope.id)
        return row if row and row["status"] == "failed" else None

    row = await wait_for(failed, within=60, what="the delivery recorded as failed")
    assert "STARTTLS required but refused or not offered" in row["last_error"]
    assert row["attempts"] == 2 and row["failed_at"] is not None
    assert tls_server.handler.to(event.email) == []
    assert tls_server.handler.auth_attempts == []
