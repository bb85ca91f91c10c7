"""SMTP submission over one persistent aiosmtplib connection, rate limited.

``send`` returns an outcome instead of raising, classified the way the retry
policy needs it: accepted (250), temporary (4xx, timeouts, lost connection)
or permanent (5xx). The connection is opened lazily, reused across messages
and re-opened after any failure.
"""

from __future__ import annotations

import asyncio
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


class RateLimiter:
    """At most ``per_minute`` acquisitions per minute, evenly spaced."""

    def __init__(self, per_minute: float) -> None:
        self._interval = 60.0 / per_minute
        self._next = 0.0

    async def acquire(self) -> None:
        now = time.monotonic()
        wait = self._next - now
        if wait > 0:
            await asyncio.sleep(wait)
            now = time.monotonic()
        self._next = max(now, self._next) + self._interval


class SmtpClient:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._smtp: aiosmtplib.SMTP | None = None
        self._limiter = RateLimiter(settings.rate_limit_per_minute)

    async def _connection(self) -> aiosmtplib.SMTP:
        if self._smtp is not None and self._smtp.is_connected:
            return self._smtp
        s = self._settings
        smtp = aiosmtplib.SMTP(
            hostname=s.smtp_host,
            port=s.smtp_port,
            use_tls=s.smtp_tls,
            start_tls=s.smtp_starttls,
            timeout=s.smtp_timeout_s,
        )
        await smtp.connect()
        if s.smtp_username:
            password = s.smtp_password.get_secret_value() if s.smtp_password else ""
            await smtp.login(s.smtp_username, password)
        self._smtp = smtp
        log.info("smtp_connected", host=s.smtp_host, port=s.smtp_port)
        return smtp

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
