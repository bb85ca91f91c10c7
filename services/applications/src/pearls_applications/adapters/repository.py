"""PostgreSQL access of the applications service: every query in plain sight.

Functions take the caller's connection, so the service layer decides the
transaction; nothing here commits.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import asyncpg

from pearls_applications.domain.model import (
    Application,
    AuditEntry,
    Call,
    CallBook,
    Criterion,
    Rubric,
)
from pearls_applications.domain.review import Reviewer
from pearls_shared.db import Conn
from pearls_shared.errors import NotFound
from pearls_shared.events.common import ContactPerson
from pearls_shared.names import KEY_RULE

Lock = Literal["update", "share"] | None
_LOCKS = {"update": " FOR UPDATE", "share": " FOR SHARE", None: ""}


# -- calls -------------------------------------------------------------------


def _rubric_json(rubric: Rubric) -> dict[str, Any]:
    return {
        "scale_min": rubric.scale_min,
        "scale_max": rubric.scale_max,
        "criteria": [{"key": c.key, "weight": c.weight, "label": c.label} for c in rubric.criteria],
    }


def _call(row: asyncpg.Record) -> Call:
    rubric = row["rubric"]
    return Call(
        id=row["call_id"],
        title=row["title"],
        description=row["description"],
        opens_at=row["opens_at"],
        closes_at=row["closes_at"],
        places=row["places"],
        themes=tuple(row["themes"]),
        eligible_countries=tuple(row["eligible_countries"]),
        population_min=row["population_min"],
        population_max=row["population_max"],
        rubric=Rubric(
            rubric["scale_min"],
            rubric["scale_max"],
            tuple(Criterion(c["key"], c["weight"], c.get("label", {})) for c in rubric["criteria"]),
        ),
        reviews_required=row["reviews_required"],
        conflict_same_country=row["conflict_same_country"],
        status=row["status"],
        closed_at=row["closed_at"],
        closed_early=row["closed_early"],
        public_url=row["public_url"],
        scores_visible_to_applicants=row["scores_visible_to_applicants"],
    )


async def insert_call(conn: Conn, call: Call, created_by: str) -> None:
    await conn.execute(
        """
        INSERT INTO calls (call_id, title, description, opens_at, closes_at, places, themes,
            eligible_countries, population_min, population_max, rubric, reviews_required,
            conflict_same_country, public_url, status, created_by, scores_visible_to_applicants)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
        """,
        call.id,
        call.title,
        call.description,
        call.opens_at,
        call.closes_at,
        call.places,
        list(call.themes),
        list(call.eligible_countries),
        call.population_min,
        call.population_max,
        _rubric_json(call.rubric),
        call.reviews_required,
        call.conflict_same_country,
        call.public_url,
        call.status,
        created_by,
        call.scores_visible_to_applicants,
    )


async def save_call_status(conn: Conn, call: Call) -> None:
    await conn.execute(
        "UPDATE calls SET status = $2, closed_at = $3, closed_early = $4 WHERE call_id = $1",
        call.id,
        call.status,
        call.closed_at,
        call.closed_early,
    )


async def load_call(conn: Conn, call_id: uuid.UUID, lock: Lock = None) -> Call:
    query = "SELECT * FROM calls WHERE call_id = $1" + _LOCKS[lock]  # noqa: S608 (fixed suffixes)
    row = await conn.fetchrow(query, call_id)
    if row is None:
        raise NotFound(("path", "call_id"), "exists", "no such call")
    return _call(row)


async def list_calls(conn: Conn, status: str | None, limit: int, offset: int) -> list[Call]:
    rows = await conn.fetch(
        "SELECT * FROM calls WHERE ($1::text IS NULL OR status = $1)"
        " ORDER BY opens_at DESC, call_id LIMIT $2 OFFSET $3",
        status,
        limit,
        offset,
    )
    return [_call(r) for r in rows]


async def calls_due(conn: Conn, now: datetime) -> list[uuid.UUID]:
    """Calls whose opening or closing time has come (each is then changed under its lock)."""
    rows = await conn.fetch(
        """
        SELECT call_id FROM calls
        WHERE (status = 'scheduled' AND opens_at <= $1) OR (status <> 'closed' AND closes_at <= $1)
        ORDER BY closes_at
        LIMIT 50
        """,
        now,
    )
    return [r["call_id"] for r in rows]


# -- applications --------------------------------------------------------------


def _application(row: asyncpg.Record) -> Application:
    return Application(
        id=row["application_id"],
        call_id=row["call_id"],
        city_name=row["city_name"],
        place_kind=row["place_kind"],
        country=row["country"],
        population=row["population"],
        organisation_name=row["organisation_name"],
        organisation_type=row["organisation_type"],
        contacts=tuple(ContactPerson.model_validate(c) for c in row["contacts"]),
        themes=tuple(row["themes"]),
        languages=tuple(row["languages"]),
        motivation=row["motivation"],
        challenges=row["challenges"],
        commitments=row["commitments"],
        submitted_at=row["submitted_at"],
        updated_at=row["updated_at"],
        status=row["status"],
        score=row["score"],
        review_count=row["review_count"],
        decided_at=row["decided_at"],
        reason_code=row["reason_code"],
        decision_reason=row["decision_reason"],
        from_waitlist=row["from_waitlist"],
        withdrawn_reason=row["withdrawn_reason"],
        token_sha256=bytes(row["token_hash"]),
    )


async def load_book(conn: Conn, call_id: uuid.UUID, lock: Lock) -> CallBook:
    """The call (locked as asked) with all its applications."""
    call = await load_call(conn, call_id, lock)
    rows = await conn.fetch("SELECT * FROM applications WHERE call_id = $1", call_id)
    return CallBook(call, {r["application_id"]: _application(r) for r in rows})


async def load_book_for_submission(
    conn: Conn, call_id: uuid.UUID, country: str, city_key: str
) -> CallBook:
    """The call (share-locked) and where those of its applications come from that could
    be the place of ``(country, city_key)``: the domain checks one city per call against
    them. Those are the rows of that country whose stored key, of today's rule, is this
    key, and every row whose key another rule made (its key is computed again). Loading
    the whole call made each submission slower as the call filled."""
    call = await load_call(conn, call_id, "share")
    # The ranges on city_key_rule (not <>) keep every arm an index scan.
    rows = await conn.fetch(
        """
        SELECT country, city_name FROM applications
        WHERE call_id = $1 AND country = $2
          AND (city_key = $3 OR city_key_rule IS NULL
               OR city_key_rule < $4 OR city_key_rule > $4)
        """,
        call_id,
        country,
        city_key,
        KEY_RULE,
    )
    return CallBook(call, other_places=tuple((r["country"], r["city_name"]) for r in rows))


async def call_of(conn: Conn, application_id: uuid.UUID) -> uuid.UUID:
    call_id = await conn.fetchval(
        "SELECT call_id FROM applications WHERE application_id = $1", application_id
    )
    if call_id is None:
        raise NotFound(("path", "application_id"), "exists", "no such application")
    return uuid.UUID(str(call_id))


async def load_application(conn: Conn, application_id: uuid.UUID) -> Application:
    row = await conn.fetchrow(
        "SELECT * FROM applications WHERE application_id = $1", application_id
    )
    if row is None:
        raise NotFound(("path", "application_id"), "exists", "no such application")
    return _application(row)


async def token_hash_of(conn: Conn, application_id: uuid.UUID) -> bytes | None:
    value = await conn.fetchval(
        "SELECT token_hash FROM applications WHERE application_id = $1", application_id
    )
    return bytes(value) if value is not None else None


def _contacts(app: Application) -> list[dict[str, Any]]:
    return [c.model_dump(mode="json") for c in app.contacts]


async def insert_application(conn: Conn, app: Application, token_hash: bytes) -> None:
    await conn.execute(
        """
        INSERT INTO applications (application_id, call_id, status, city_name, city_key,
            place_kind, country, population, organisation_name, organisation_type, contacts,
            themes, languages, motivation, challenges, commitments, token_hash, submitted_at,
            updated_at, city_key_rule)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17,
            $18, $19, $20)
        """,
        app.id,
        app.call_id,
        app.status,
        app.city_name,
        app.city_key,
        app.place_kind,
        app.country,
        app.population,
        app.organisation_name,
        app.organisation_type,
        _contacts(app),
        list(app.themes),
        list(app.languages),
        app.motivation,
        app.challenges,
        app.commitments,
        token_hash,
        app.submitted_at,
        app.updated_at,
        KEY_RULE,
    )


async def update_application(conn: Conn, app: Application) -> None:
    await conn.execute(
        """
        UPDATE applications SET status = $2, place_kind = $3, population = $4,
            organisation_name = $5, organisation_type = $6, contacts = $7, themes = $8,
            languages = $9, motivation = $10, challenges = $11, commitments = $12,
            updated_at = $13, decided_at = $14, reason_code = $15, decision_reason = $16,
            from_waitlist = $17, withdrawn_reason = $18
        WHERE application_id = $1
        """,
        app.id,
        app.status,
        app.place_kind,
        app.population,
        app.organisation_name,
        app.organisation_type,
        _contacts(app),
        list(app.themes),
        list(app.languages),
        app.motivation,
        app.challenges,
        app.commitments,
        app.updated_at,
        app.decided_at,
        app.reason_code,
        app.decision_reason,
        app.from_waitlist,
        app.withdrawn_reason,
    )


async def save_score(conn: Conn, application_id: uuid.UUID, score: float, count: int) -> None:
    await conn.execute(
        "UPDATE applications SET score = $2, review_count = $3 WHERE application_id = $1",
        application_id,
        score,
        count,
    )


@dataclass(frozen=True, slots=True)
class Page:
    items: list[tuple[Application, int | None]]
    total: int


async def search_applications(
    conn: Conn,
    *,
    call_id: uuid.UUID | None,
    status: str | None,
    country: str | None,
    theme: str | None,
    min_score: float | None,
    max_score: float | None,
    limit: int,
    offset: int,
) -> Page:
    """Applications matching every given filter, best score first, with their rank."""
    rows = await conn.fetch(
        """
        WITH ranked AS (
            SELECT a.*, CASE WHEN a.score IS NOT NULL AND a.status <> 'withdrawn' THEN
                row_number() OVER (
                    PARTITION BY a.call_id, (a.score IS NOT NULL AND a.status <> 'withdrawn')
                    ORDER BY a.score DESC, a.submitted_at, a.application_id::text)
                END AS rank
            FROM applications a
            WHERE ($1::uuid IS NULL OR a.call_id = $1)
        )
        SELECT *, count(*) OVER () AS total FROM ranked
        WHERE ($2::text IS NULL OR status = $2)
          AND ($3::text IS NULL OR country = $3)
          AND ($4::text IS NULL OR $4 = ANY(themes))
          AND ($5::float8 IS NULL OR score >= $5)
          AND ($6::float8 IS NULL OR score <= $6)
        ORDER BY score DESC NULLS LAST, submitted_at, application_id
        LIMIT $7 OFFSET $8
        """,
        call_id,
        status,
        country,
        theme,
        min_score,
        max_score,
        limit,
        offset,
    )
    total = (
        rows[0]["total"]
        if rows
        else await _count_only(conn, call_id, status, country, theme, min_score, max_score)
    )
    return Page([(_application(r), r["rank"]) for r in rows], int(total))


async def _count_only(
    conn: Conn,
    call_id: uuid.UUID | None,
    status: str | None,
    country: str | None,
    theme: str | None,
    min_score: float | None,
    max_score: float | None,
) -> int:
    # A page past the end still reports how many there are.
    value = await conn.fetchval(
        """
        SELECT count(*) FROM applications
        WHERE ($1::uuid IS NULL OR call_id = $1) AND ($2::text IS NULL OR status = $2)
          AND ($3::text IS NULL OR country = $3) AND ($4::text IS NULL OR $4 = ANY(themes))
          AND ($5::float8 IS NULL OR score >= $5) AND ($6::float8 IS NULL OR score <= $6)
        """,
        call_id,
        status,
        country,
        theme,
        min_score,
        max_score,
    )
    return int(value)


# -- idempotency ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IdempotentResult:
    request_hash: bytes
    application_id: uuid.UUID
    sealed_token: bytes


async def find_idempotent(
    conn: Conn, call_id: uuid.UUID, key_hash: bytes
) -> IdempotentResult | None:
    row = await conn.fetchrow(
        "SELECT request_hash, application_id, sealed_token FROM idempotency_keys"
        " WHERE call_id = $1 AND key_hash = $2",
        call_id,
        key_hash,
    )
    if row is None:
        return None
    return IdempotentResult(
        bytes(row["request_hash"]), row["application_id"], bytes(row["sealed_token"])
    )


async def insert_idempotent(
    conn: Conn, call_id: uuid.UUID, key_hash: bytes, result: IdempotentResult
) -> None:
    await conn.execute(
        "INSERT INTO idempotency_keys (call_id, key_hash, request_hash, application_id,"
        " sealed_token) VALUES ($1, $2, $3, $4, $5)",
        call_id,
        key_hash,
        result.request_hash,
        result.application_id,
        result.sealed_token,
    )


async def purge_idempotent(conn: Conn, before: datetime, batch: int) -> int:
    """Delete up to ``batch`` idempotency records created before ``before``; return how many.

    Rows another replica is deleting at the same moment are skipped (``SKIP
    LOCKED``), so replicas purging together never wait on each other.
    """
    deleted = await conn.fetchval(
        """
        WITH gone AS (
            DELETE FROM idempotency_keys WHERE ctid IN (
                SELECT ctid FROM idempotency_keys WHERE created_at < $1
                ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED
            )
            RETURNING 1
        )
        SELECT count(*) FROM gone
        """,
        before,
        batch,
    )
    return int(deleted)


# -- reviewers, assignments, reviews ------------------------------------------------


def _reviewer(row: asyncpg.Record) -> Reviewer:
    return Reviewer(row["reviewer_id"], row["name"], row["city_name"], row["country"])


async def insert_reviewer(conn: Conn, reviewer: Reviewer, token_hash: bytes, by: str) -> None:
    await conn.execute(
        "INSERT INTO reviewers (reviewer_id, name, city_name, country, token_hash, registered_by)"
        " VALUES ($1, $2, $3, $4, $5, $6)",
        reviewer.id,
        reviewer.name,
        reviewer.city_name,
        reviewer.country,
        token_hash,
        by,
    )


async def registered_reviewers(conn: Conn) -> list[Reviewer]:
    rows = await conn.fetch("SELECT * FROM reviewers ORDER BY reviewer_id")
    return [_reviewer(r) for r in rows]


async def reviewer_by_token(conn: Conn, token_hash: bytes) -> tuple[Reviewer, bytes] | None:
    row = await conn.fetchrow("SELECT * FROM reviewers WHERE token_hash = $1", token_hash)
    return (_reviewer(row), bytes(row["token_hash"])) if row else None


async def assignments_of(conn: Conn, application_id: uuid.UUID) -> list[str]:
    rows = await conn.fetch(
        "SELECT reviewer_id FROM review_assignments WHERE application_id = $1 ORDER BY assigned_at",
        application_id,
    )
    return [r["reviewer_id"] for r in rows]


async def assignments_in_call(conn: Conn, call_id: uuid.UUID) -> list[tuple[uuid.UUID, str]]:
    rows = await conn.fetch(
        "SELECT ra.application_id, ra.reviewer_id FROM review_assignments ra"
        " JOIN applications a USING (application_id) WHERE a.call_id = $1",
        call_id,
    )
    return [(r["application_id"], r["reviewer_id"]) for r in rows]


async def insert_assignments(
    conn: Conn, pairs: Iterable[tuple[uuid.UUID, str]], by: str, at: datetime
) -> None:
    await conn.executemany(
        "INSERT INTO review_assignments (application_id, reviewer_id, assigned_by, assigned_at)"
        " VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        [(app_id, reviewer_id, by, at) for app_id, reviewer_id in pairs],
    )


async def assignments_for_reviewer(conn: Conn, reviewer_id: str) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        """
        SELECT ra.application_id, a.call_id, a.city_name, a.country, ra.assigned_at,
               (r.reviewer_id IS NOT NULL) AS reviewed
        FROM review_assignments ra
        JOIN applications a USING (application_id)
        LEFT JOIN reviews r ON r.application_id = ra.application_id
                            AND r.reviewer_id = ra.reviewer_id
        WHERE ra.reviewer_id = $1 AND a.status <> 'withdrawn'
        ORDER BY ra.assigned_at, ra.application_id
        """,
        reviewer_id,
    )
    return rows


async def insert_review(
    conn: Conn,
    application_id: uuid.UUID,
    reviewer_id: str,
    scores: dict[str, int],
    comment: str,
    score: float,
    at: datetime,
) -> None:
    await conn.execute(
        "INSERT INTO reviews (application_id, reviewer_id, scores, comment, score, reviewed_at)"
        " VALUES ($1, $2, $3, $4, $5, $6)",
        application_id,
        reviewer_id,
        scores,
        comment,
        score,
        at,
    )


async def review_scores(conn: Conn, application_id: uuid.UUID) -> list[float]:
    rows = await conn.fetch("SELECT score FROM reviews WHERE application_id = $1", application_id)
    return [float(r["score"]) for r in rows]


async def reviews_of(conn: Conn, application_id: uuid.UUID) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        "SELECT * FROM reviews WHERE application_id = $1 ORDER BY reviewed_at", application_id
    )
    return rows


# -- audit ---------------------------------------------------------------------


async def write_audit(conn: Conn, entries: Sequence[AuditEntry]) -> None:
    await conn.executemany(
        "INSERT INTO audit_log (call_id, application_id, actor, action, details, at)"
        " VALUES ($1, $2, $3, $4, $5, $6)",
        [(e.call_id, e.application_id, e.actor, e.action, e.details, e.at) for e in entries],
    )


async def read_audit(
    conn: Conn,
    *,
    call_id: uuid.UUID | None,
    application_id: uuid.UUID | None,
    limit: int,
    offset: int,
) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        """
        SELECT entry_id, call_id, application_id, actor, action, details, at FROM audit_log
        WHERE ($1::uuid IS NULL OR call_id = $1) AND ($2::uuid IS NULL OR application_id = $2)
        ORDER BY entry_id LIMIT $3 OFFSET $4
        """,
        call_id,
        application_id,
        limit,
        offset,
    )
    return rows


# -- erasure ----------------------------------------------------------------------


async def applications_with_address(conn: Conn, email: str) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """(application id, call id) of every application with this contact address."""
    rows = await conn.fetch(
        "SELECT application_id, call_id FROM applications a WHERE EXISTS ("
        " SELECT 1 FROM jsonb_array_elements(a.contacts) c"
        " WHERE lower(btrim(c->>'email')) = $1) ORDER BY application_id",
        email,
    )
    return [(r["application_id"], r["call_id"]) for r in rows]


async def lock_calls(conn: Conn, call_ids: Sequence[uuid.UUID]) -> None:
    """The lock every change of an application takes (its call's row), in one order."""
    await conn.execute(
        "SELECT 1 FROM calls WHERE call_id = ANY($1::uuid[]) ORDER BY call_id FOR UPDATE",
        sorted(set(call_ids)),
    )


async def insert_erasure(
    conn: Conn,
    erasure_id: uuid.UUID,
    scope: str,
    email_hashes: Sequence[str],
    application_id: uuid.UUID | None,
    applications: Sequence[uuid.UUID],
    actor: str,
    at: datetime,
) -> None:
    await conn.execute(
        "INSERT INTO erasures (erasure_id, scope, email_hashes, application_id, applications,"
        " requested_by, requested_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        erasure_id,
        scope,
        list(email_hashes),
        application_id,
        list(applications),
        actor,
        at,
    )
