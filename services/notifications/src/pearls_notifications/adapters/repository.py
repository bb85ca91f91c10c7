"""SQL of the notifications service, kept visible: directory, deliveries, preferences.

Every function takes the caller's connection, so the caller decides the
transaction (the consumer's inbox transaction, or the sender's claim).
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any, TypeAlias

import asyncpg

from pearls_notifications.domain.identity import message_id
from pearls_notifications.domain.model import Category, Mail, Mode, Recipient
from pearls_shared.privacy import ERASED_NAME
from pearls_shared.tracing import current_carrier, trace_id_hex

Conn: TypeAlias = "asyncpg.Connection[Any]"

# --- contact directory --------------------------------------------------------


async def replace_contacts(
    conn: Conn,
    participant_id: uuid.UUID,
    city_name: str,
    contacts: list[Recipient],
    roles: list[str],
    as_of: datetime,
) -> bool:
    """The event's contact list is the current one (staff change): replace, not merge.

    Skipped (False) when the directory already holds a newer list, or the
    participant was erased (withdrawn or rejected: no further mail is owed that
    the directory would be needed for).
    """
    newer = await conn.fetchval(
        "SELECT max(as_of) FROM participant_contacts WHERE participant_id = $1", participant_id
    )
    if newer is not None and newer > as_of:
        return False
    if await conn.fetchval(
        "SELECT 1 FROM erased_participants WHERE participant_id = $1", participant_id
    ):
        return False  # erased for good: later events carry their own contacts
    await conn.execute("DELETE FROM participant_contacts WHERE participant_id = $1", participant_id)
    await conn.executemany(
        "INSERT INTO participant_contacts"
        " (participant_id, email, name, language, role, city_name, as_of)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7)",
        [
            (participant_id, c.email, c.name, c.language, role, city_name, as_of)
            for c, role in zip(contacts, roles, strict=True)
        ],
    )
    return True


async def erase_participant(conn: Conn, participant_id: uuid.UUID, as_of: datetime) -> None:
    """Forget the participant's contacts; remember that, so no event restores them."""
    await conn.execute("DELETE FROM participant_contacts WHERE participant_id = $1", participant_id)
    await conn.execute(
        "INSERT INTO erased_participants (participant_id, as_of) VALUES ($1, $2)"
        " ON CONFLICT (participant_id) DO UPDATE SET as_of = greatest("
        "erased_participants.as_of, EXCLUDED.as_of)",
        participant_id,
        as_of,
    )


async def forget_erased(conn: Conn, pseudonyms: list[str]) -> int:
    """After the sweep replaced the addresses: names go too, unsent mail to them is
    cancelled (never written to a pseudonym), their preferences are dropped. The log
    rows stay (who = the pseudonym, what, when, outcome). Returns the cancelled count."""
    await conn.execute(
        "UPDATE participant_contacts SET name = $2 WHERE email = ANY($1::text[])",
        pseudonyms,
        ERASED_NAME,
    )
    await conn.execute(
        "UPDATE mentors SET name = $2 WHERE email = ANY($1::text[])", pseudonyms, ERASED_NAME
    )
    await conn.execute(
        "UPDATE deliveries SET recipient_name = $2 WHERE recipient = ANY($1::text[])",
        pseudonyms,
        ERASED_NAME,
    )
    await conn.execute("DELETE FROM preferences WHERE recipient = ANY($1::text[])", pseudonyms)
    result = await conn.execute(
        "UPDATE deliveries SET status = 'suppressed', last_error = 'recipient erased'"
        " WHERE recipient = ANY($1::text[]) AND status IN ('pending', 'digest')",
        pseudonyms,
    )
    return int(result.split()[-1])


async def upsert_mentor(conn: Conn, mentor_id: uuid.UUID, who: Recipient, as_of: datetime) -> None:
    await conn.execute(
        "INSERT INTO mentors (mentor_id, email, name, language, as_of)"
        " VALUES ($1, $2, $3, $4, $5)"
        " ON CONFLICT (mentor_id) DO UPDATE SET email = EXCLUDED.email, name = EXCLUDED.name,"
        " language = EXCLUDED.language, as_of = EXCLUDED.as_of"
        " WHERE mentors.as_of <= EXCLUDED.as_of",
        mentor_id,
        who.email,
        who.name,
        who.language,
        as_of,
    )


async def assign_mentor(
    conn: Conn, participant_id: uuid.UUID, mentor_id: uuid.UUID, as_of: datetime
) -> None:
    """Record the participant's mentor unless a newer event said otherwise."""
    await conn.execute(
        "INSERT INTO mentor_assignments (participant_id, mentor_id, as_of) VALUES ($1, $2, $3)"
        " ON CONFLICT (participant_id) DO UPDATE SET mentor_id = EXCLUDED.mentor_id,"
        " as_of = EXCLUDED.as_of WHERE mentor_assignments.as_of <= EXCLUDED.as_of",
        participant_id,
        mentor_id,
        as_of,
    )


async def unassign_mentor(
    conn: Conn, participant_id: uuid.UUID, mentor_id: uuid.UUID, as_of: datetime
) -> None:
    """End this mentor's assignment; a replacement already recorded stays."""
    await conn.execute(
        "INSERT INTO mentor_assignments (participant_id, mentor_id, as_of) VALUES ($1, NULL, $3)"
        " ON CONFLICT (participant_id) DO UPDATE SET mentor_id = NULL, as_of = EXCLUDED.as_of"
        " WHERE mentor_assignments.mentor_id = $2 AND mentor_assignments.as_of <= EXCLUDED.as_of",
        participant_id,
        mentor_id,
        as_of,
    )


async def assigned_mentor(conn: Conn, participant_id: uuid.UUID) -> Recipient | None:
    row = await conn.fetchrow(
        "SELECT m.email, m.name, m.language FROM mentor_assignments a"
        " JOIN mentors m USING (mentor_id) WHERE a.participant_id = $1",
        participant_id,
    )
    return Recipient(row["email"], row["name"], row["language"]) if row else None


# --- preferences --------------------------------------------------------------


async def preference(conn: Conn, recipient: str, category: Category) -> Mode:
    if category is Category.ESSENTIAL:
        return Mode.IMMEDIATE
    mode = await conn.fetchval(
        "SELECT mode FROM preferences WHERE recipient = $1 AND category = $2",
        recipient.lower(),
        category.value,
    )
    return Mode(mode) if mode else Mode.IMMEDIATE


async def preferences_of(conn: Conn, recipient: str) -> dict[str, str]:
    rows = await conn.fetch(
        "SELECT category, mode FROM preferences WHERE recipient = $1", recipient.lower()
    )
    return {r["category"]: r["mode"] for r in rows}


async def set_preference(conn: Conn, recipient: str, category: Category, mode: Mode) -> None:
    await conn.execute(
        "INSERT INTO preferences (recipient, category, mode) VALUES ($1, $2, $3)"
        " ON CONFLICT (recipient, category) DO UPDATE SET mode = EXCLUDED.mode, updated_at = now()",
        recipient.lower(),
        category.value,
        mode.value,
    )


async def suppress_held(conn: Conn, recipient: str, category: Category) -> int:
    """Held digest items of a category the recipient has just switched off."""
    result = await conn.execute(
        "UPDATE deliveries SET status = 'suppressed'"
        " WHERE recipient = $1 AND category = $2 AND status = 'digest'",
        recipient.lower(),
        category.value,
    )
    return int(result.split()[-1])


# --- deliveries ---------------------------------------------------------------

DELIVERY_COLUMNS = (
    "id, event_id, event_type, correlation_id, recipient, recipient_name, language, template,"
    " category, context, message_id, status, attempts, next_attempt_at, last_error, smtp_code,"
    " digest_id, created_at, sent_at, failed_at, trace_id, trace_context::text AS trace_context"
)


async def plan_delivery(
    conn: Conn,
    mail: Mail,
    *,
    event_id: str,
    event_type: str,
    correlation_id: str,
    status: str,
    message_id_domain: str,
    delivery_id: uuid.UUID | None = None,
) -> bool:
    """Insert the delivery row; False when this (event, recipient, template) exists.

    The Message-ID is fixed here, once: every attempt of this e-mail carries it. The row
    keeps the current trace (the consumer span of the causing event), so the e-mail's
    delivery continues it and the trace id can be looked up from the row."""
    carrier = current_carrier()
    inserted = await conn.fetchval(
        "INSERT INTO deliveries (id, event_id, event_type, correlation_id, recipient,"
        " recipient_name, language, template, category, context, message_id, status,"
        " trace_id, trace_context)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14::text::jsonb)"
        " ON CONFLICT (event_id, recipient, template) DO NOTHING RETURNING true",
        delivery_id or uuid.uuid4(),
        event_id,
        event_type,
        correlation_id,
        mail.recipient.email,
        mail.recipient.name,
        mail.recipient.language,
        mail.template,
        mail.category.value,
        mail.context,
        message_id(event_id, mail.recipient.email, mail.template, message_id_domain),
        status,
        trace_id_hex() if carrier else None,
        json.dumps(carrier) if carrier else None,
    )
    return bool(inserted)


def trace_context_of(row: asyncpg.Record) -> dict[str, str]:
    """The trace headers stored with a delivery (empty when it was planned untraced)."""
    stored = row["trace_context"]
    if not stored:
        return {}
    loaded = json.loads(stored)
    return {str(k): str(v) for k, v in loaded.items()} if isinstance(loaded, dict) else {}


async def record_trace_id(conn: Conn, delivery_id: uuid.UUID, trace_id: str) -> None:
    """Give a delivery planned outside any trace the id of the trace its sending started."""
    await conn.execute(
        "UPDATE deliveries SET trace_id = $2 WHERE id = $1 AND trace_id IS NULL",
        delivery_id,
        trace_id,
    )


async def claim_due(conn: Conn) -> asyncpg.Record | None:
    """Lock one due delivery; other senders skip it until this transaction ends."""
    return await conn.fetchrow(
        f"SELECT {DELIVERY_COLUMNS} FROM deliveries"  # noqa: S608 - constant column list
        " WHERE status = 'pending' AND next_attempt_at <= now()"
        " ORDER BY next_attempt_at, created_at LIMIT 1 FOR UPDATE SKIP LOCKED"
    )


async def mark_sent(conn: Conn, delivery_id: uuid.UUID, at: datetime) -> int:
    attempts: int = await conn.fetchval(
        "UPDATE deliveries SET status = 'sent', sent_at = $2, attempts = attempts + 1,"
        " smtp_code = 250, last_error = NULL WHERE id = $1 RETURNING attempts",
        delivery_id,
        at,
    )
    return attempts


async def mark_retry(
    conn: Conn, delivery_id: uuid.UUID, next_at: datetime, error: str, code: int | None
) -> None:
    await conn.execute(
        "UPDATE deliveries SET attempts = attempts + 1, next_attempt_at = $2, last_error = $3,"
        " smtp_code = $4 WHERE id = $1",
        delivery_id,
        next_at,
        error,
        code,
    )


async def mark_failed(
    conn: Conn, delivery_id: uuid.UUID, at: datetime, error: str, code: int | None
) -> int:
    attempts: int = await conn.fetchval(
        "UPDATE deliveries SET status = 'failed', failed_at = $2, attempts = attempts + 1,"
        " last_error = $3, smtp_code = $4 WHERE id = $1 RETURNING attempts",
        delivery_id,
        at,
        error,
        code,
    )
    return attempts


async def requeue_failed(conn: Conn, delivery_id: uuid.UUID) -> asyncpg.Record | None:
    """A failed delivery goes back to pending with a fresh retry budget."""
    return await conn.fetchrow(
        "UPDATE deliveries SET status = 'pending', attempts = 0, next_attempt_at = now(),"  # noqa: S608
        " failed_at = NULL WHERE id = $1 AND status = 'failed'"
        f" RETURNING {DELIVERY_COLUMNS}",
        delivery_id,
    )


async def get_delivery(conn: Conn, delivery_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE id = $1",  # noqa: S608
        delivery_id,
    )


async def list_deliveries(
    conn: Conn, *, recipient: str | None, event_id: str | None, limit: int
) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        f"SELECT {DELIVERY_COLUMNS} FROM deliveries"  # noqa: S608 - constant column list
        " WHERE ($1::text IS NULL OR recipient = lower($1))"
        " AND ($2::text IS NULL OR event_id = $2)"
        " ORDER BY created_at DESC, recipient, template LIMIT $3",
        recipient,
        event_id,
        limit,
    )
    return rows


# --- digests ------------------------------------------------------------------


async def digest_recipients(conn: Conn, before: datetime) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        "SELECT recipient, min(recipient_name) AS name, min(language) AS language"
        " FROM deliveries WHERE status = 'digest' AND created_at < $1 GROUP BY recipient",
        before,
    )
    return rows


async def take_digest_items(
    conn: Conn, recipient: str, before: datetime, digest_id: uuid.UUID
) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        "UPDATE deliveries SET status = 'digested', digest_id = $3"  # noqa: S608
        " WHERE id IN (SELECT id FROM deliveries WHERE recipient = $1 AND status = 'digest'"
        " AND created_at < $2 ORDER BY created_at FOR UPDATE SKIP LOCKED)"
        f" RETURNING {DELIVERY_COLUMNS}",
        recipient,
        before,
        digest_id,
    )
    return rows


async def return_digest_items(conn: Conn, digest_id: uuid.UUID) -> None:
    await conn.execute(
        "UPDATE deliveries SET status = 'digest', digest_id = NULL WHERE digest_id = $1",
        digest_id,
    )


async def erase_old_contexts(conn: Conn, before: datetime) -> int:
    """Drop the rendering data of finished e-mails; failed ones keep it for a resend."""
    result = await conn.execute(
        "UPDATE deliveries SET context = '{}'::jsonb, recipient_name = ''"
        " WHERE status IN ('sent', 'suppressed', 'digested') AND created_at < $1"
        " AND context <> '{}'::jsonb",
        before,
    )
    return int(result.split()[-1])
