"""SMTP submission over one persistent aiosmtplib connection, rate limited.

One ``SmtpClient`` is one connection; the sender runs several (one per worker)
that share one ``RateLimiter``, so the mail provider's limit holds for the
process whatever the number of connections. ``send`` returns an outcome
instead of raising, classified the way the retry policy needs it: accepted
(250), temporary (4xx, timeouts, lost connection) or permanent (5xx). The
connection is opened lazily, reused across messages and re-opened after any
failure.

Security: with ``smtp_tls`` (implicit TLS) or ``smtp_starttls`` the server's
certificate is verified against the system's trust store, or only against
``smtp_cafile`` when set, host name included, TLS 1.2 at least; STARTTLS is
required, never opportunistic (a server that does not offer it is refused, so
a man in the middle cannot strip it). No setting turns verification off.
Failures of the connection itself — a certificate that does not verify, a
handshake that fails, STARTTLS not offered, AUTH refused, a server that turns
connections away — are not the message's fault: they are temporary whatever
the reply code (the e-mail is retried later; the operator may fix the cause),
recorded with a reason that says what failed, and those an operator must fix
are logged at error level (``smtp_connection_refused``).
"""

from __future__ import annotations

import asyncio
import ssl
import time
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Literal

import aiosmtplib
import structlog

from pearls_notifications.config import Settings

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Outcome:
    kind: Literal["accepted", "temporary", "permanent"]
    code: int | None = None
    reason: str = ""


class ConnectionFailed(Exception):
    """No usable connection: down, TLS not verified, STARTTLS missing, AUTH refused."""

    def __init__(self, reason: str, code: int | None, *, loud: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code
        self.loud = loud  # the configuration or the server's certificate needs an operator


class RateLimiter:
    """At most ``per_minute`` acquisitions per minute, evenly spaced, however many
    coroutines share it."""

    def __init__(self, per_minute: float) -> None:
        self._interval = 60.0 / per_minute
        self._next = 0.0

    async def acquire(self) -> None:
        # The slot is taken before sleeping: concurrent callers each get their own.
        now = time.monotonic()
        slot = max(now, self._next)
        self._next = slot + self._interval
        if slot > now:
            await asyncio.sleep(slot - now)


def tls_context(settings: Settings) -> ssl.SSLContext:
    """Client context that verifies the server: certificate chain and host name.

    ``smtp_cafile`` replaces the system's trust store (a private CA is then the
    only one trusted); unset, the system's store is used.
    """
    cafile = str(settings.smtp_cafile) if settings.smtp_cafile is not None else None
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=cafile)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # create_default_context already does both; stated so no one weakens them by accident.
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    return context


class SmtpClient:
    def __init__(self, settings: Settings, limiter: RateLimiter | None = None) -> None:
        self._settings = settings
        self._smtp: aiosmtplib.SMTP | None = None
        self._limiter = limiter or RateLimiter(settings.rate_limit_per_minute)
        # Built once: an unreadable or malformed CA file fails at start-up, not per e-mail.
        uses_tls = settings.smtp_tls or settings.smtp_starttls
        self._tls_context = tls_context(settings) if uses_tls else None

    async def _connection(self) -> aiosmtplib.SMTP:
        if self._smtp is not None and self._smtp.is_connected:
            return self._smtp
        s = self._settings
        smtp = aiosmtplib.SMTP(
            hostname=s.smtp_host,
            port=s.smtp_port,
            use_tls=s.smtp_tls,
            start_tls=False,  # done below, as its own step, when configured
            tls_context=self._tls_context,
            timeout=s.smtp_timeout_s,
        )
        step = "connect"
        try:
            await smtp.connect()
            if s.smtp_starttls:
                step = "starttls"
                await smtp.starttls()  # required: fails when the server does not offer it
            if s.smtp_username:
                step = "auth"
                password = s.smtp_password.get_secret_value() if s.smtp_password else ""
                await smtp.login(s.smtp_username, password)
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            smtp.close()
            raise self._refused(step, exc) from exc
        except BaseException:
            smtp.close()
            raise
        self._smtp = smtp
        session = smtp.get_transport_info("ssl_object")
        log.info(
            "smtp_connected",
            host=s.smtp_host,
            port=s.smtp_port,
            tls=session.version() if isinstance(session, ssl.SSLObject) else None,
            authenticated=bool(s.smtp_username),
        )
        return smtp

    def _refused(self, step: str, exc: BaseException) -> ConnectionFailed:
        """Why no usable connection came about, in words an operator can act on."""
        s = self._settings
        where = f"{s.smtp_host}:{s.smtp_port}"
        code: int | None = None
        said = str(exc)
        if isinstance(exc, aiosmtplib.SMTPResponseException):
            code, said = exc.code, f"{exc.code} {exc.message}".strip()
        tls = _tls_error(exc)
        if isinstance(tls, ssl.SSLCertVerificationError):
            detail = tls.verify_message or tls.reason or str(tls)
            reason = f"TLS certificate verification failed for {where}: {detail}"
        elif tls is not None:
            reason = f"TLS handshake with {where} failed: {tls.reason or tls}"
        elif step == "starttls":
            reason = f"STARTTLS required but refused or not offered by {where}: {said}"
        elif step == "auth":
            reason = f"SMTP AUTH refused for user {s.smtp_username!r} by {where}: {said}"
        else:  # the server is down, unreachable or turns connections away
            return ConnectionFailed(f"{type(exc).__name__}: {exc}", code, loud=False)
        return ConnectionFailed(reason, code, loud=True)

    async def send(self, message: EmailMessage, sender: str, recipient: str) -> Outcome:
        await self._limiter.acquire()
        reused = self._smtp is not None and self._smtp.is_connected
        outcome = await self._attempt(message, sender, recipient)
        if reused and outcome.kind == "temporary" and outcome.code is None:
            # A kept-open connection the server has since dropped (idle timeout, 421
            # on the last reply): try once more on a fresh one before deferring.
            outcome = await self._attempt(message, sender, recipient)
        return outcome

    async def _attempt(self, message: EmailMessage, sender: str, recipient: str) -> Outcome:
        try:
            smtp = await self._connection()
        except ConnectionFailed as exc:
            # Not this message's fault, whatever the code (a 535 for a wrong password, a
            # 554 greeting): retried later, when the operator may have fixed the cause.
            if exc.loud:
                log.error(
                    "smtp_connection_refused", host=self._settings.smtp_host, reason=exc.reason
                )
            return Outcome("temporary", exc.code, exc.reason[:4000])
        try:
            errors, response = await smtp.send_message(
                message, sender=sender, recipients=[recipient]
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            refused = exc.recipients[0] if exc.recipients else None
            code = refused.code if refused else None
            reason = refused.message if refused else str(exc)
            return _classified(code, reason)
        except aiosmtplib.SMTPResponseException as exc:
            await self._reset()
            return _classified(exc.code, exc.message)
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            await self._reset()
            return Outcome("temporary", None, f"{type(exc).__name__}: {exc}"[:4000])
        if errors:  # one recipient per message: a non-empty dict means it was refused
            code, reason = next(iter(errors.values()))
            return _classified(code, reason)
        return Outcome("accepted", 250, response)

    async def _reset(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None and smtp.is_connected:
            try:
                smtp.close()
            except Exception:  # noqa: S110 - already failing; a fresh connection follows
                pass

    async def close(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None and smtp.is_connected:
            try:
                await smtp.quit()
            except (aiosmtplib.SMTPException, OSError):
                smtp.close()


def _classified(code: int | None, reason: str) -> Outcome:
    text = (reason or "no reason given").strip()[:4000] or "no reason given"
    if code is not None and 500 <= code < 600:
        return Outcome("permanent", code, text)
    return Outcome("temporary", code, text)


def _tls_error(exc: BaseException) -> ssl.SSLError | None:
    """The ``ssl`` error behind ``exc``, if any.

    aiosmtplib wraps the one of an implicit-TLS connect (``SMTPConnectError``) and
    passes on the one of a STARTTLS upgrade as it is: the cause chain holds it.
    """
    seen: BaseException | None = exc
    for _ in range(8):  # a cause chain is short; never follow a cycle forever
        if seen is None or isinstance(seen, ssl.SSLError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None
