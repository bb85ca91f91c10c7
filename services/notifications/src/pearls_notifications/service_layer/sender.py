"""The sender: ``sender_concurrency`` workers, each claiming a due delivery,
rendering, sending and recording it — one e-mail at a time per worker, over the
worker's own SMTP connection.

Each e-mail is one database transaction: the row is locked with ``FOR UPDATE
SKIP LOCKED`` (another worker, or another replica's sender, skips it), the
message goes to the mail server, and right after the server's reply the
outcome is written — with ``pearls.notification.sent`` / ``.failed`` in the
outbox — and committed. The lock is held across the SMTP call on purpose: it
is what keeps two workers from sending the same e-mail. Every worker thus holds
one pool connection while it talks to the mail server (the setting is checked
against ``pool_max_size``). The workers share one rate limiter, so
``rate_limit_per_minute`` is the process's limit. E-mails are claimed in due
order but may leave in a slightly different one (several are in flight).

The one window no transaction can close: the server has said 250 and the
process dies before the commit. The row is still 'pending', so the e-mail is
sent again after restart, with the same deterministic Message-ID: a duplicate
that any mail client or audit can detect, never a lost e-mail.

Each attempt is a span ("email deliver") in the trace of the event that planned
the e-mail (stored with the delivery row), so one trace runs from the request
that caused the event to the mail server's answer.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import structlog
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from pearls_notifications.adapters import repository as repo
from pearls_notifications.adapters.mime import Envelope, build_message
from pearls_notifications.adapters.smtp import Outcome, RateLimiter, SmtpClient
from pearls_notifications.adapters.templates import Templates
from pearls_notifications.config import Settings
from pearls_notifications.domain import unsubscribe
from pearls_notifications.domain.model import Category, Mail, Recipient
from pearls_notifications.domain.routing import DIGEST_TEMPLATE
from pearls_notifications.service_layer.handlers import WAKE_CHANNEL
from pearls_shared.db import connect
from pearls_shared.events.notifications import NotificationFailed, NotificationSent
from pearls_shared.metrics import EMAILS_DEFERRED, EMAILS_FAILED, EMAILS_SENT
from pearls_shared.outbox import record_event
from pearls_shared.tracing import context_from, trace_id_hex, tracer

log = structlog.get_logger(__name__)

DIGEST_EVENT_TYPE = "pearls.notification.digest"


def unsubscribe_url(settings: Settings, recipient: str, category: Category) -> str:
    from urllib.parse import urlencode

    token = unsubscribe.sign(settings.unsubscribe_key(), recipient, category)
    query = urlencode({"recipient": recipient, "category": category.value, "token": token})
    return f"{str(settings.public_base_url).rstrip('/')}/unsubscribe?{query}"


def backoff(settings: Settings, attempts: int) -> float:
    """Seconds before attempt ``attempts + 1``: doubling from the initial delay, capped."""
    delay = settings.retry_backoff_initial_s * (2 ** max(attempts - 1, 0))
    return float(min(delay, settings.retry_backoff_max_s))


class Sender:
    def __init__(
        self,
        settings: Settings,
        pool: asyncpg.Pool[Any],
        templates: Templates | None = None,
    ) -> None:
        self.settings = settings
        self.pool = pool
        # One limiter for every connection: the provider's limit is per sender, not per
        # connection.
        limiter = RateLimiter(settings.rate_limit_per_minute)
        self.clients: list[SmtpClient] = [
            SmtpClient(settings, limiter) for _ in range(settings.sender_concurrency)
        ]
        self.templates = templates or Templates()
        self._wakes = [asyncio.Event() for _ in self.clients]
        self._last_digest_check: datetime | None = None

    def wake(self) -> None:
        """New work may be due: every idle worker looks (the claims sort out who gets what)."""
        for wake in self._wakes:
            wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Run every worker until ``stop``; each closes its own connection on the way out."""
        listener = await self._listen()
        try:
            async with asyncio.TaskGroup() as workers:
                for number in range(len(self.clients)):
                    workers.create_task(self._work(number, stop), name=f"sender-{number}")
        finally:
            if listener is not None:
                await listener.close()

    async def _work(self, number: int, stop: asyncio.Event) -> None:
        wake = self._wakes[number]
        try:
            while not stop.is_set():
                # Cleared before looking, so a wake that arrives while this worker finds
                # nothing due is not lost.
                wake.clear()
                try:
                    await self.compose_digests_if_due()
                    worked = await self.send_next(self.clients[number])
                except (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError) as exc:
                    log.warning("sender_database_unavailable", error=repr(exc))
                    worked = False
                except Exception:  # never let one surprise stop all e-mail; the row stays due
                    log.exception("sender_iteration_failed")
                    worked = False
                if worked:
                    continue
                waiter = asyncio.create_task(wake.wait())
                stopper = asyncio.create_task(stop.wait())
                await asyncio.wait(
                    {waiter, stopper},
                    timeout=self.settings.sender_idle_poll_s,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                waiter.cancel()
                stopper.cancel()
        finally:
            await self.clients[number].close()

    async def _listen(self) -> asyncpg.Connection[Any] | None:
        try:
            conn = await connect(self.settings.database_url.get_secret_value())
            await conn.add_listener(WAKE_CHANNEL, lambda *_: self.wake())
            return conn
        except (OSError, asyncpg.PostgresError) as exc:  # polling still works
            log.warning("sender_listen_failed", error=repr(exc))
            return None

    async def send_next(self, smtp: SmtpClient | None = None) -> bool:
        """Send one due e-mail over ``smtp`` (default: the first worker's connection);
        False when none is due."""
        smtp = smtp or self.clients[0]
        async with self.pool.acquire() as conn, conn.transaction():
            row = await repo.claim_due(conn)
            if row is None:
                return False
            try:
                async with conn.transaction():  # savepoint: a surprise undoes only this try
                    await self._deliver(conn, row, smtp)
            except (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError):
                raise
            except Exception as exc:
                log.exception("delivery_crashed", delivery_id=str(row["id"]))
                await self._crashed(conn, row, exc)
            return True

    async def _crashed(
        self, conn: asyncpg.Connection[Any], row: asyncpg.Record, exc: Exception
    ) -> None:
        """An attempt that failed in a way nothing above foresaw: deferred like a temporary
        failure so it cannot block the queue, and, like one, given up after
        ``retry_max_attempts``: recorded as failed and announced."""
        reason = f"unexpected error: {exc!r}"[:4000]
        attempts = row["attempts"] + 1
        if attempts < self.settings.retry_max_attempts:
            delay = backoff(self.settings, attempts)
            await repo.mark_retry(
                conn, row["id"], datetime.now(UTC) + timedelta(seconds=delay), reason, None
            )
            return
        try:
            async with conn.transaction():
                await self._failed(conn, row, row["language"], Outcome("temporary", None, reason))
        except Exception:
            # Not even the announcement can be recorded (the same surprise, likely): the
            # delivery log still says failed and why; the error log says it went unannounced.
            log.exception("email_failed_unannounced", delivery_id=str(row["id"]))
            await repo.mark_failed(conn, row["id"], datetime.now(UTC), reason, None)
            EMAILS_FAILED.labels(row["template"], "false").inc()

    async def _deliver(
        self, conn: asyncpg.Connection[Any], row: asyncpg.Record, smtp: SmtpClient
    ) -> None:
        with tracer("notifications").start_as_current_span(
            "email deliver",
            context=context_from(repo.trace_context_of(row)),
            kind=SpanKind.CLIENT,
            attributes={
                "pearls.delivery_id": str(row["id"]),
                "pearls.template": row["template"],
                "pearls.cause_event_id": row["event_id"],
                "pearls.correlation_id": row["correlation_id"],
                "pearls.attempt": row["attempts"] + 1,
            },
        ) as span:
            trace_id = trace_id_hex(span)
            if row["trace_id"] is None and trace_id is not None:
                await repo.record_trace_id(conn, row["id"], trace_id)
            await self._deliver_in_span(conn, row, smtp)

    async def _deliver_in_span(
        self, conn: asyncpg.Connection[Any], row: asyncpg.Record, smtp: SmtpClient
    ) -> None:
        s = self.settings
        category = Category(row["category"])
        link = (
            unsubscribe_url(s, row["recipient"], category)
            if category is not Category.ESSENTIAL
            else None
        )
        with structlog.contextvars.bound_contextvars(
            delivery_id=str(row["id"]), template=row["template"], cause_event_id=row["event_id"]
        ):
            try:
                rendered = self.templates.render(
                    row["template"],
                    row["language"],
                    {
                        "event": row["context"],
                        "recipient": {"name": row["recipient_name"], "email": row["recipient"]},
                        "unsubscribe_url": link,
                    },
                )
                message = build_message(
                    Envelope(
                        sender_email=str(s.from_address),
                        sender_name=s.from_name,
                        recipient_email=row["recipient"],
                        recipient_name=row["recipient_name"],
                        subject=rendered.subject,
                        message_id=row["message_id"],
                        date=datetime.now(UTC),
                        text=rendered.text,
                        html=rendered.html,
                        language=rendered.language,
                        unsubscribe_url=link,
                    )
                )
                # Validated before sending: after the server's 250 nothing may fail but the
                # database, or the e-mail would go out again on every retry.
                announcement = NotificationSent(
                    recipient=row["recipient"],
                    notification_id=row["id"],
                    template=row["template"],
                    language=rendered.language,
                    cause_event_id=row["event_id"],
                    cause_event_type=row["event_type"],
                    message_id=row["message_id"],
                    attempts=row["attempts"] + 1,
                    sent_at=datetime.now(UTC),
                    digest=row["template"] == DIGEST_TEMPLATE,
                )
            except Exception as exc:  # a broken template or unsafe header: permanent
                log.exception("compose_failed")
                await self._failed(
                    conn, row, row["language"], Outcome("permanent", None, repr(exc))
                )
                return
            outcome = await smtp.send(message, str(s.from_address), row["recipient"])
            now = datetime.now(UTC)
            span = trace.get_current_span()
            span.set_attribute("pearls.outcome", outcome.kind)
            if outcome.code is not None:
                span.set_attribute("pearls.smtp_code", outcome.code)
            if outcome.kind == "accepted":
                attempts = await repo.mark_sent(conn, row["id"], now)
                await record_event(
                    conn,
                    announcement.model_copy(update={"attempts": attempts, "sent_at": now}),
                    correlation_id=row["correlation_id"],
                    causation_id=row["event_id"],
                )
                EMAILS_SENT.labels(row["template"]).inc()
                log.info("email_sent", attempts=attempts)
            elif outcome.kind == "temporary" and row["attempts"] + 1 < s.retry_max_attempts:
                delay = backoff(s, row["attempts"] + 1)
                await repo.mark_retry(
                    conn, row["id"], now + timedelta(seconds=delay), outcome.reason, outcome.code
                )
                EMAILS_DEFERRED.labels(row["template"]).inc()
                log.warning(
                    "email_deferred", reason=outcome.reason, code=outcome.code, retry_in=delay
                )
            else:
                await self._failed(conn, row, rendered.language, outcome)

    async def _failed(
        self, conn: asyncpg.Connection[Any], row: asyncpg.Record, language: str, outcome: Outcome
    ) -> None:
        now = datetime.now(UTC)
        attempts = await repo.mark_failed(conn, row["id"], now, outcome.reason, outcome.code)
        await record_event(
            conn,
            NotificationFailed(
                recipient=row["recipient"],
                notification_id=row["id"],
                template=row["template"],
                language=language,
                cause_event_id=row["event_id"],
                cause_event_type=row["event_type"],
                message_id=row["message_id"],
                attempts=attempts,
                failed_at=now,
                permanent=outcome.kind == "permanent",
                reason=outcome.reason or "unknown",
                smtp_code=outcome.code,
            ),
            correlation_id=row["correlation_id"],
            causation_id=row["event_id"],
        )
        EMAILS_FAILED.labels(row["template"], str(outcome.kind == "permanent").lower()).inc()
        trace.get_current_span().set_status(Status(StatusCode.ERROR, "e-mail failed"))
        log.error("email_failed", reason=outcome.reason, code=outcome.code, attempts=attempts)

    # --- daily digest ---------------------------------------------------------

    def digest_cutoff(self, now: datetime) -> datetime:
        """The latest digest moment at or before ``now``."""
        today = now.replace(hour=self.settings.digest_hour_utc, minute=0, second=0, microsecond=0)
        return today if today <= now else today - timedelta(days=1)

    async def compose_digests_if_due(self, now: datetime | None = None) -> int:
        now = now or datetime.now(UTC)
        if self._last_digest_check and now - self._last_digest_check < timedelta(minutes=1):
            return 0
        self._last_digest_check = now
        await self.erase_old_contexts(now)
        return await self.compose_digests(self.digest_cutoff(now))

    async def erase_old_contexts(self, now: datetime) -> int:
        """Data minimisation: finished e-mails keep their log row, not the personal data."""
        before = now - timedelta(days=self.settings.context_retention_days)
        async with self.pool.acquire() as conn:
            erased = await repo.erase_old_contexts(conn, before)
        if erased:
            log.info("delivery_contexts_erased", count=erased)
        return erased

    async def compose_digests(self, cutoff: datetime) -> int:
        """Bundle each recipient's held items older than ``cutoff`` into one digest e-mail."""
        made = 0
        async with self.pool.acquire() as conn:
            for who in await repo.digest_recipients(conn, cutoff):
                async with conn.transaction():
                    made += await self._compose_one(conn, who, cutoff)
        return made

    async def _compose_one(
        self, conn: asyncpg.Connection[Any], who: asyncpg.Record, cutoff: datetime
    ) -> int:
        recipient = who["recipient"]
        # Stands in for the causing event's id: deterministic per recipient and day, and
        # short whatever the address (the contract caps cause_event_id at 200 characters).
        who_hash = hashlib.sha256(recipient.encode()).hexdigest()[:32]
        event_id = f"digest:{cutoff.date().isoformat()}:{who_hash}"
        digest_id = uuid.uuid4()
        items = await repo.take_digest_items(conn, recipient, cutoff, digest_id)
        if not items:
            return 0
        entries = []
        for item in items:
            rendered = self.templates.render(
                item["template"],
                item["language"],
                {
                    "event": item["context"],
                    "recipient": {"name": item["recipient_name"], "email": recipient},
                    "unsubscribe_url": None,
                },
                bare=True,
            )
            entries.append(
                {"subject": rendered.subject, "text": rendered.text.strip(), "html": rendered.html}
            )
        mail = Mail(
            Recipient(recipient, who["name"], who["language"]),
            DIGEST_TEMPLATE,
            Category.PROGRESS,
            {"items": entries, "day": cutoff.date().isoformat()},
        )
        fresh = await repo.plan_delivery(
            conn,
            mail,
            event_id=event_id,
            event_type=DIGEST_EVENT_TYPE,
            correlation_id=event_id,
            status="pending",
            message_id_domain=self.settings.message_id_host(),
            delivery_id=digest_id,
        )
        if not fresh:  # today's digest already went; late items wait for tomorrow's
            await repo.return_digest_items(conn, digest_id)
            return 0
        await conn.execute("SELECT pg_notify($1, '')", WAKE_CHANNEL)
        return 1
