"""PostgreSQL access of the awards service: every query in plain sight.

Functions take the caller's connection, so the service layer decides the
transaction; nothing here commits.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from pearls_awards.domain.ranking import Criterion, Score
from pearls_awards.domain.rounds import Eligibility, Juror, Round
from pearls_awards.domain.showcase import Pearl
from pearls_awards.domain.view import ParticipantView
from pearls_shared.db import Conn
from pearls_shared.privacy import ERASED_NAME

# -- the participants' view --------------------------------------------------


def _view(row: asyncpg.Record) -> ParticipantView:
    return ParticipantView(
        participant_id=row["participant_id"],
        call_id=row["call_id"],
        city_name=row["city_name"],
        country=row["country"].strip() if row["country"] else None,
        contacts=row["contacts"],
        contacts_as_of=row["contacts_as_of"],
        themes=tuple(row["themes"]),
        accepted_at=row["accepted_at"],
        withdrawn_at=row["withdrawn_at"],
        plan_stage=row["plan_stage"],
        approved_revision=row["approved_revision"],
        approved_milestones=dict(row["approved_milestones"]),
        reached=dict(row["reached"]),
        overdue=tuple(row["overdue"]),
        achievements=tuple(row["achievements"]),
        mentors=dict(row["mentors"]),
    )


async def lock_participant(conn: Conn, participant_id: uuid.UUID) -> None:
    """Serialise changes of one participant's view, even before its row exists."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 11))", str(participant_id)
    )


async def load_view(conn: Conn, participant_id: uuid.UUID) -> ParticipantView | None:
    row = await conn.fetchrow(
        "SELECT * FROM participants WHERE participant_id = $1", participant_id
    )
    return _view(row) if row else None


async def save_view(conn: Conn, v: ParticipantView) -> None:
    await conn.execute(
        """
        INSERT INTO participants (participant_id, call_id, city_name, city_key, country,
            contacts, themes, accepted_at, withdrawn_at, plan_stage, approved_revision,
            approved_milestones, reached, overdue, achievements, mentors, contacts_as_of)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
        ON CONFLICT (participant_id) DO UPDATE SET
            call_id = EXCLUDED.call_id, city_name = EXCLUDED.city_name,
            city_key = EXCLUDED.city_key, country = EXCLUDED.country,
            contacts = EXCLUDED.contacts, themes = EXCLUDED.themes,
            accepted_at = EXCLUDED.accepted_at, withdrawn_at = EXCLUDED.withdrawn_at,
            plan_stage = EXCLUDED.plan_stage, approved_revision = EXCLUDED.approved_revision,
            approved_milestones = EXCLUDED.approved_milestones, reached = EXCLUDED.reached,
            overdue = EXCLUDED.overdue, achievements = EXCLUDED.achievements,
            mentors = EXCLUDED.mentors, contacts_as_of = EXCLUDED.contacts_as_of
        """,
        v.participant_id,
        v.call_id,
        v.city_name,
        v.city_key,
        v.country,
        v.contacts,
        list(v.themes),
        v.accepted_at,
        v.withdrawn_at,
        v.plan_stage,
        v.approved_revision,
        v.approved_milestones,
        v.reached,
        list(v.overdue),
        list(v.achievements),
        v.mentors,
        v.contacts_as_of,
    )


async def all_views(conn: Conn) -> list[ParticipantView]:
    rows = await conn.fetch("SELECT * FROM participants ORDER BY participant_id")
    return [_view(r) for r in rows]


async def views(conn: Conn, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, ParticipantView]:
    rows = await conn.fetch(
        "SELECT * FROM participants WHERE participant_id = ANY($1::uuid[])", list(ids)
    )
    return {r["participant_id"]: _view(r) for r in rows}


async def list_views(conn: Conn, limit: int, offset: int) -> list[ParticipantView]:
    rows = await conn.fetch(
        "SELECT * FROM participants WHERE accepted_at IS NOT NULL"
        " ORDER BY city_name, participant_id LIMIT $1 OFFSET $2",
        limit,
        offset,
    )
    return [_view(r) for r in rows]


# -- rounds and jurors ------------------------------------------------------------


def _criteria_json(round_: Round) -> list[dict[str, Any]]:
    return [
        {
            "criterion_id": c.criterion_id,
            "weight": c.weight,
            "scale_min": c.scale_min,
            "scale_max": c.scale_max,
            "name": round_.criterion_names.get(c.criterion_id, {}),
        }
        for c in round_.criteria
    ]


async def insert_round(
    conn: Conn, r: Round, opened_by: str, juror_digests: Mapping[uuid.UUID, bytes]
) -> None:
    await conn.execute(
        """
        INSERT INTO rounds (round_id, title, opened_at, closes_at, criteria,
            plan_approved_required, min_milestone_share, call_ids, awards_count, per_country,
            additional_award_allowed, tight_margin, normalise, status, opened_by)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 'open', $14)
        """,
        r.round_id,
        r.title,
        r.opened_at,
        r.closes_at,
        _criteria_json(r),
        r.eligibility.plan_approved_required,
        r.eligibility.min_milestone_share,
        list(r.eligibility.call_ids),
        r.awards_count,
        r.per_country,
        r.additional_award_allowed,
        r.tight_margin,
        r.normalise,
        opened_by,
    )
    await conn.executemany(
        """
        INSERT INTO jurors (round_id, juror_id, name, email, language, city_name, city_key,
            country, mentor_id, token_sha256)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
        """,
        [
            (
                r.round_id,
                j.juror_id,
                j.name,
                j.email,
                j.language,
                j.city_name,
                j.city_key,
                j.country,
                j.mentor_id,
                juror_digests[j.juror_id],
            )
            for j in r.jurors
        ],
    )


def _round(row: asyncpg.Record, jurors: Sequence[asyncpg.Record]) -> Round:
    return Round(
        round_id=row["round_id"],
        title=dict(row["title"]),
        opened_at=row["opened_at"],
        closes_at=row["closes_at"],
        criteria=tuple(
            Criterion(c["criterion_id"], c["weight"], c["scale_min"], c["scale_max"])
            for c in row["criteria"]
        ),
        criterion_names={c["criterion_id"]: c.get("name", {}) for c in row["criteria"]},
        eligibility=Eligibility(
            plan_approved_required=row["plan_approved_required"],
            min_milestone_share=row["min_milestone_share"],
            call_ids=tuple(row["call_ids"]),
        ),
        awards_count=row["awards_count"],
        per_country=row["per_country"],
        additional_award_allowed=row["additional_award_allowed"],
        tight_margin=row["tight_margin"],
        normalise=row["normalise"],
        status=row["status"],
        closed_at=row["closed_at"],
        jurors=tuple(
            Juror(
                juror_id=j["juror_id"],
                name=j["name"],
                email=j["email"],
                language=j["language"],
                city_name=j["city_name"],
                country=j["country"].strip() if j["country"] else None,
                mentor_id=j["mentor_id"],
            )
            for j in jurors
        ),
    )


async def load_round(conn: Conn, round_id: uuid.UUID, *, lock: bool = False) -> Round | None:
    query = "SELECT * FROM rounds WHERE round_id = $1" + (" FOR UPDATE" if lock else "")  # noqa: S608
    row = await conn.fetchrow(query, round_id)
    if row is None:
        return None
    jurors = await conn.fetch(
        "SELECT * FROM jurors WHERE round_id = $1 ORDER BY name, juror_id", round_id
    )
    return _round(row, jurors)


async def round_result(conn: Conn, round_id: uuid.UUID) -> dict[str, Any] | None:
    result: dict[str, Any] | None = await conn.fetchval(
        "SELECT result FROM rounds WHERE round_id = $1", round_id
    )
    return result


async def open_round_ids(conn: Conn) -> list[uuid.UUID]:
    rows = await conn.fetch(
        "SELECT round_id FROM rounds WHERE status = 'open' ORDER BY opened_at, round_id"
    )
    return [r["round_id"] for r in rows]


async def list_rounds(conn: Conn, limit: int, offset: int) -> list[Round]:
    rows = await conn.fetch(
        "SELECT * FROM rounds ORDER BY opened_at DESC, round_id LIMIT $1 OFFSET $2",
        limit,
        offset,
    )
    found = []
    for row in rows:
        jurors = await conn.fetch(
            "SELECT * FROM jurors WHERE round_id = $1 ORDER BY name, juror_id", row["round_id"]
        )
        found.append(_round(row, jurors))
    return found


async def close_round(
    conn: Conn, round_id: uuid.UUID, at: datetime, result: dict[str, Any]
) -> None:
    await conn.execute(
        "UPDATE rounds SET status = 'closed', closed_at = $2, result = $3 WHERE round_id = $1",
        round_id,
        at,
        result,
    )


async def juror_by_token(conn: Conn, digest: bytes) -> tuple[uuid.UUID, uuid.UUID, bytes] | None:
    row = await conn.fetchrow(
        "SELECT round_id, juror_id, token_sha256 FROM jurors WHERE token_sha256 = $1", digest
    )
    return (row["round_id"], row["juror_id"], bytes(row["token_sha256"])) if row else None


# -- nominations, exclusions, scores -----------------------------------------------


@dataclass(frozen=True, slots=True)
class Nomination:
    round_id: uuid.UUID
    participant_id: uuid.UUID
    nominated_at: datetime
    nominated_by: str
    statement: str | None


async def insert_nomination(conn: Conn, n: Nomination) -> bool:
    """False when the participant is nominated in that round already."""
    done = await conn.fetchval(
        "INSERT INTO nominations (round_id, participant_id, nominated_at, nominated_by,"
        " statement) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING true",
        n.round_id,
        n.participant_id,
        n.nominated_at,
        n.nominated_by,
        n.statement,
    )
    return bool(done)


async def nominations(conn: Conn, round_id: uuid.UUID) -> list[Nomination]:
    rows = await conn.fetch(
        "SELECT * FROM nominations WHERE round_id = $1 ORDER BY nominated_at, participant_id",
        round_id,
    )
    return [
        Nomination(
            r["round_id"], r["participant_id"], r["nominated_at"], r["nominated_by"], r["statement"]
        )
        for r in rows
    ]


async def is_nominated(conn: Conn, round_id: uuid.UUID, participant_id: uuid.UUID) -> bool:
    return bool(
        await conn.fetchval(
            "SELECT true FROM nominations WHERE round_id = $1 AND participant_id = $2",
            round_id,
            participant_id,
        )
    )


@dataclass(frozen=True, slots=True)
class Exclusion:
    juror_id: uuid.UUID
    participant_id: uuid.UUID
    reason: str
    detail: str
    noticed_at: datetime


async def record_exclusions(conn: Conn, round_id: uuid.UUID, found: Iterable[Exclusion]) -> None:
    await conn.executemany(
        "INSERT INTO exclusions (round_id, juror_id, participant_id, reason, detail, noticed_at)"
        " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        [(round_id, e.juror_id, e.participant_id, e.reason, e.detail, e.noticed_at) for e in found],
    )


async def exclusions(conn: Conn, round_id: uuid.UUID) -> list[Exclusion]:
    rows = await conn.fetch(
        "SELECT * FROM exclusions WHERE round_id = $1 ORDER BY noticed_at, juror_id", round_id
    )
    return [
        Exclusion(r["juror_id"], r["participant_id"], r["reason"], r["detail"], r["noticed_at"])
        for r in rows
    ]


async def save_scores(
    conn: Conn,
    round_id: uuid.UUID,
    juror_id: uuid.UUID,
    participant_id: uuid.UUID,
    values: Mapping[str, int],
    at: datetime,
) -> None:
    """A juror's scores of one nominee; a later submission replaces the earlier one."""
    await conn.executemany(
        """
        INSERT INTO scores (round_id, juror_id, participant_id, criterion_id, value, scored_at)
        VALUES ($1, $2, $3, $4, $5, $6)
        ON CONFLICT (round_id, juror_id, participant_id, criterion_id)
        DO UPDATE SET value = EXCLUDED.value, scored_at = EXCLUDED.scored_at
        """,
        [(round_id, juror_id, participant_id, k, v, at) for k, v in values.items()],
    )


async def scores(conn: Conn, round_id: uuid.UUID) -> list[Score]:
    rows = await conn.fetch(
        "SELECT * FROM scores WHERE round_id = $1 ORDER BY juror_id, participant_id, criterion_id",
        round_id,
    )
    return [
        Score(str(r["juror_id"]), r["participant_id"], r["criterion_id"], r["value"]) for r in rows
    ]


# -- awards and the showcase --------------------------------------------------------------


async def insert_award(conn: Conn, round_id: uuid.UUID, p: Pearl, score: float) -> None:
    await conn.execute(
        """
        INSERT INTO awards (round_id, participant_id, slug, rank, score, additional_award,
            citation, achievements, themes, city_name, country, year, round_title, granted_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
        """,
        round_id,
        p.participant_id,
        p.slug,
        p.rank,
        score,
        p.additional_award,
        p.citation,
        list(p.achievements),
        list(p.themes),
        p.city_name,
        p.country,
        p.year,
        p.round_title,
        p.granted_at,
    )


def _pearl(row: asyncpg.Record) -> Pearl:
    return Pearl(
        participant_id=row["participant_id"],
        slug=row["slug"],
        city_name=row["city_name"],
        country=row["country"].strip(),
        year=row["year"],
        round_id=row["round_id"],
        round_title=row["round_title"],
        rank=row["rank"],
        additional_award=row["additional_award"],
        citation=dict(row["citation"]),
        themes=tuple(row["themes"]),
        achievements=tuple(row["achievements"]),
        granted_at=row["granted_at"],
    )


async def pearls(conn: Conn) -> list[Pearl]:
    rows = await conn.fetch(
        "SELECT * FROM awards WHERE revoked_at IS NULL ORDER BY year DESC, round_id, rank"
    )
    return [_pearl(r) for r in rows]


async def slugs(conn: Conn) -> set[str]:
    return {r["slug"] for r in await conn.fetch("SELECT slug FROM awards")}


async def revoke(
    conn: Conn, round_id: uuid.UUID, participant_id: uuid.UUID, at: datetime, reason: str
) -> str | None:
    """'revoked', 'already' (revoked before), or None (no such award)."""
    row = await conn.fetchrow(
        "SELECT revoked_at FROM awards WHERE round_id = $1 AND participant_id = $2 FOR UPDATE",
        round_id,
        participant_id,
    )
    if row is None:
        return None
    if row["revoked_at"] is not None:
        return "already"
    await conn.execute(
        "UPDATE awards SET revoked_at = $3, revoke_reason = $4"
        " WHERE round_id = $1 AND participant_id = $2",
        round_id,
        participant_id,
        at,
        reason,
    )
    return "revoked"


# -- audit --------------------------------------------------------------------------------


async def audit(
    conn: Conn,
    at: datetime,
    actor: str,
    action: str,
    *,
    round_id: uuid.UUID | None = None,
    participant_id: uuid.UUID | None = None,
    details: Mapping[str, Any] | None = None,
) -> None:
    await conn.execute(
        "INSERT INTO audit (at, actor, action, round_id, participant_id, details)"
        " VALUES ($1, $2, $3, $4, $5, $6)",
        at,
        actor,
        action,
        round_id,
        participant_id,
        dict(details or {}),
    )


async def audit_of_round(conn: Conn, round_id: uuid.UUID) -> list[asyncpg.Record]:
    return list(
        await conn.fetch("SELECT * FROM audit WHERE round_id = $1 ORDER BY at, audit_id", round_id)
    )


async def anonymise_jurors(conn: Conn, pseudonyms: Sequence[str]) -> int:
    """Jurors whose address was erased keep their scores, not their name."""
    result = await conn.execute(
        "UPDATE jurors SET name = $2 WHERE lower(email) = ANY($1::text[])",
        list(pseudonyms),
        ERASED_NAME,
    )
    return int(result.split()[-1])
