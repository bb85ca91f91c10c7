"""PostgreSQL access of the mentoring service: every query in plain sight.

Functions take the caller's connection, so the service layer decides the
transaction; nothing here commits.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

import asyncpg

from pearls_mentoring.domain.model import Assignment, AuditEntry, Mentor, Participant
from pearls_mentoring.domain.plans import MilestoneState, PlanDraft, PlanStatus
from pearls_shared.db import Conn
from pearls_shared.events.common import ContactPerson
from pearls_shared.privacy import ERASED_NAME

Lock = Literal["update", "share"] | None
_LOCKS = {"update": " FOR UPDATE", "share": " FOR SHARE", None: ""}

# -- participants ------------------------------------------------------------


def _participant(row: asyncpg.Record) -> Participant:
    return Participant(
        id=row["participant_id"],
        call_id=row["call_id"],
        status=row["status"],
        city_name=row["city_name"] or "",
        country=(row["country"] or "").strip(),
        contacts=tuple(ContactPerson.model_validate(c) for c in row["contacts"] or ()),
        themes=tuple(row["themes"]),
        languages=tuple(row["languages"]),
        token_sha256=row["applicant_token_sha256"],
        accepted_at=row["accepted_at"],
        withdrawn_at=row["withdrawn_at"],
        unmatched_reasons=tuple(row["unmatched_reasons"]) if row["unmatched_reasons"] else None,
        unmatched_summary=row["unmatched_summary"],
    )


async def load_participant(
    conn: Conn, participant_id: uuid.UUID, lock: Lock = None
) -> Participant | None:
    query = "SELECT * FROM participants WHERE participant_id = $1" + _LOCKS[lock]  # noqa: S608
    row = await conn.fetchrow(query, participant_id)
    return _participant(row) if row else None


async def save_participant(conn: Conn, p: Participant, *, has_data: bool = True) -> None:
    """Insert or overwrite a participant's row (the caller holds its lock)."""
    await conn.execute(
        """
        INSERT INTO participants (participant_id, call_id, status, city_name, city_key, country,
            contacts, themes, languages, applicant_token_sha256, accepted_at, withdrawn_at,
            updated_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, now())
        ON CONFLICT (participant_id) DO UPDATE SET
            call_id = EXCLUDED.call_id, status = EXCLUDED.status,
            city_name = EXCLUDED.city_name, city_key = EXCLUDED.city_key,
            country = EXCLUDED.country, contacts = EXCLUDED.contacts,
            themes = EXCLUDED.themes, languages = EXCLUDED.languages,
            applicant_token_sha256 = EXCLUDED.applicant_token_sha256,
            accepted_at = EXCLUDED.accepted_at, withdrawn_at = EXCLUDED.withdrawn_at,
            updated_at = now()
        """,
        p.id,
        p.call_id,
        p.status,
        p.city_name if has_data else None,
        p.city_key if has_data else None,
        p.country if has_data else None,
        [c.model_dump(mode="json") for c in p.contacts] if has_data else None,
        list(p.themes),
        list(p.languages),
        p.token_sha256,
        p.accepted_at,
        p.withdrawn_at,
    )


async def lock_participant_id(conn: Conn, participant_id: uuid.UUID) -> None:
    """Serialise everything about one participant, even before its row exists."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 7))", str(participant_id))


async def waiting_participants(conn: Conn) -> list[Participant]:
    """Active participants without a current mentor, oldest acceptance first."""
    rows = await conn.fetch(
        """
        SELECT p.* FROM participants p
        WHERE p.status = 'active'
          AND NOT EXISTS (SELECT 1 FROM assignments a
                          WHERE a.participant_id = p.participant_id AND a.ended_at IS NULL)
        ORDER BY p.accepted_at, p.participant_id
        """
    )
    return [_participant(r) for r in rows]


async def set_unmatched(
    conn: Conn, participant_id: uuid.UUID, reasons: Sequence[str], summary: str, at: datetime
) -> None:
    await conn.execute(
        "UPDATE participants SET unmatched_reasons = $2, unmatched_summary = $3,"
        " unmatched_since = COALESCE(unmatched_since, $4) WHERE participant_id = $1",
        participant_id,
        list(reasons),
        summary,
        at,
    )


async def clear_unmatched(conn: Conn, participant_id: uuid.UUID) -> None:
    await conn.execute(
        "UPDATE participants SET unmatched_reasons = NULL, unmatched_summary = NULL,"
        " unmatched_since = NULL WHERE participant_id = $1",
        participant_id,
    )


@dataclass(frozen=True, slots=True)
class ParticipantView:
    participant: Participant
    assignment: Assignment | None
    mentor_name: str | None
    plan_status: str | None


# A participant with its current assignment, mentor's name and plan status.
_PARTICIPANT_VIEW = """
        SELECT p.*, a.mentor_id AS a_mentor_id, a.assigned_at AS a_assigned_at,
               a.assigned_by AS a_assigned_by, a.explanation AS a_explanation,
               a.score AS a_score, a.overridden AS a_overridden,
               a.override_reason AS a_override_reason, m.name AS mentor_name,
               pl.status AS plan_status
        FROM participants p
        LEFT JOIN assignments a ON a.participant_id = p.participant_id AND a.ended_at IS NULL
        LEFT JOIN mentors m ON m.mentor_id = a.mentor_id
        LEFT JOIN plans pl ON pl.participant_id = p.participant_id
"""


async def list_participants(
    conn: Conn,
    *,
    mentor_id: uuid.UUID | None,
    waiting: bool | None,
    limit: int,
    offset: int,
) -> list[ParticipantView]:
    rows = await conn.fetch(
        _PARTICIPANT_VIEW
        + """
        WHERE p.city_name IS NOT NULL
          AND ($1::uuid IS NULL OR a.mentor_id = $1)
          AND ($2::boolean IS NULL OR (p.status = 'active' AND (a.mentor_id IS NULL) = $2))
        ORDER BY p.city_name, p.participant_id
        LIMIT $3 OFFSET $4
        """,
        mentor_id,
        waiting,
        limit,
        offset,
    )
    return [_view(r) for r in rows]


async def participant_view(conn: Conn, participant_id: uuid.UUID) -> ParticipantView | None:
    row = await conn.fetchrow(
        _PARTICIPANT_VIEW
        + """
        WHERE p.participant_id = $1 AND p.city_name IS NOT NULL
        """,
        participant_id,
    )
    return _view(row) if row else None


def _view(row: asyncpg.Record) -> ParticipantView:
    assignment = None
    if row["a_mentor_id"] is not None:
        assignment = Assignment(
            participant_id=row["participant_id"],
            mentor_id=row["a_mentor_id"],
            assigned_at=row["a_assigned_at"],
            assigned_by=row["a_assigned_by"],
            explanation=row["a_explanation"],
            score=row["a_score"],
            overridden=row["a_overridden"],
            override_reason=row["a_override_reason"],
        )
    return ParticipantView(_participant(row), assignment, row["mentor_name"], row["plan_status"])


# -- mentors -----------------------------------------------------------------


def _mentor(row: asyncpg.Record) -> Mentor:
    return Mentor(
        id=row["mentor_id"],
        kind=row["kind"],
        name=row["name"],
        email=row["email"],
        language=row["language"],
        languages=tuple(row["languages"]),
        country=row["country"].strip(),
        city_name=row["city_name"],
        organisation=row["organisation"],
        capacity=row["capacity"],
        themes=tuple(row["themes"]),
        status=row["status"],
        registered_at=row["registered_at"],
        load=row["load"] if "load" in row else 0,
    )


_WITH_LOAD = """
    SELECT m.*, (SELECT count(*) FROM assignments a
                 WHERE a.mentor_id = m.mentor_id AND a.ended_at IS NULL)::int AS load
    FROM mentors m
"""


async def insert_mentor(conn: Conn, m: Mentor, token_digest: bytes, actor: str) -> None:
    await conn.execute(
        """
        INSERT INTO mentors (mentor_id, kind, name, email, language, languages, country,
            city_name, city_key, organisation, capacity, themes, status, token_sha256,
            registered_at, registered_by)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
        """,
        m.id,
        m.kind,
        m.name,
        m.email,
        m.language,
        list(m.languages),
        m.country,
        m.city_name,
        m.city_key,
        m.organisation,
        m.capacity,
        list(m.themes),
        m.status,
        token_digest,
        m.registered_at,
        actor,
    )


async def load_mentor(conn: Conn, mentor_id: uuid.UUID) -> Mentor | None:
    row = await conn.fetchrow(_WITH_LOAD + " WHERE m.mentor_id = $1", mentor_id)
    return _mentor(row) if row else None


async def lock_mentor(conn: Conn, mentor_id: uuid.UUID) -> bool:
    return bool(
        await conn.fetchval("SELECT true FROM mentors WHERE mentor_id = $1 FOR UPDATE", mentor_id)
    )


async def active_mentors(conn: Conn) -> list[Mentor]:
    rows = await conn.fetch(_WITH_LOAD + " WHERE m.status = 'active' ORDER BY m.mentor_id")
    return [_mentor(r) for r in rows]


async def list_mentors(conn: Conn, limit: int, offset: int) -> list[Mentor]:
    rows = await conn.fetch(
        _WITH_LOAD + " ORDER BY m.name, m.mentor_id LIMIT $1 OFFSET $2", limit, offset
    )
    return [_mentor(r) for r in rows]


async def set_mentor_status(conn: Conn, mentor_id: uuid.UUID, status: str) -> None:
    await conn.execute("UPDATE mentors SET status = $2 WHERE mentor_id = $1", mentor_id, status)


async def replace_mentor_token(conn: Conn, mentor_id: uuid.UUID, digest: bytes) -> bool:
    done = await conn.fetchval(
        "UPDATE mentors SET token_sha256 = $2 WHERE mentor_id = $1 RETURNING true",
        mentor_id,
        digest,
    )
    return bool(done)


async def mentor_by_token(conn: Conn, digest: bytes) -> tuple[uuid.UUID, bytes] | None:
    row = await conn.fetchrow(
        "SELECT mentor_id, token_sha256 FROM mentors WHERE token_sha256 = $1", digest
    )
    return (row["mentor_id"], bytes(row["token_sha256"])) if row else None


# -- assignments -------------------------------------------------------------


async def current_assignment(conn: Conn, participant_id: uuid.UUID) -> Assignment | None:
    row = await conn.fetchrow(
        "SELECT * FROM assignments WHERE participant_id = $1 AND ended_at IS NULL",
        participant_id,
    )
    if row is None:
        return None
    return Assignment(
        participant_id=row["participant_id"],
        mentor_id=row["mentor_id"],
        assigned_at=row["assigned_at"],
        assigned_by=row["assigned_by"],
        explanation=row["explanation"],
        score=row["score"],
        overridden=row["overridden"],
        override_reason=row["override_reason"],
    )


async def insert_assignment(conn: Conn, a: Assignment) -> None:
    await conn.execute(
        """
        INSERT INTO assignments (participant_id, mentor_id, assigned_at, assigned_by,
            explanation, score, overridden, override_reason)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
        """,
        a.participant_id,
        a.mentor_id,
        a.assigned_at,
        a.assigned_by,
        a.explanation,
        a.score,
        a.overridden,
        a.override_reason,
    )


async def end_assignment(
    conn: Conn, participant_id: uuid.UUID, at: datetime, reason: str
) -> uuid.UUID | None:
    mentor_id: uuid.UUID | None = await conn.fetchval(
        "UPDATE assignments SET ended_at = $2, end_reason = $3"
        " WHERE participant_id = $1 AND ended_at IS NULL RETURNING mentor_id",
        participant_id,
        at,
        reason,
    )
    return mentor_id


async def participants_of(conn: Conn, mentor_id: uuid.UUID) -> list[uuid.UUID]:
    rows = await conn.fetch(
        "SELECT participant_id FROM assignments WHERE mentor_id = $1 AND ended_at IS NULL"
        " ORDER BY assigned_at, participant_id",
        mentor_id,
    )
    return [r["participant_id"] for r in rows]


async def mentor_of(conn: Conn, participant_id: uuid.UUID) -> Mentor | None:
    row = await conn.fetchrow(
        _WITH_LOAD + " JOIN assignments a2 ON a2.mentor_id = m.mentor_id"
        " WHERE a2.participant_id = $1 AND a2.ended_at IS NULL",
        participant_id,
    )
    return _mentor(row) if row else None


# -- plans -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlanRow:
    plan_id: uuid.UUID
    participant_id: uuid.UUID
    status: PlanStatus
    current_revision: int
    approved_revision: int | None
    approved_at: datetime | None
    completed_at: datetime | None


@dataclass(frozen=True, slots=True)
class Revision:
    revision: int
    draft: PlanDraft
    submitted_at: datetime
    review_status: str
    reviewed_at: datetime | None
    reviewed_by: uuid.UUID | None
    comments: str | None


async def load_plan(conn: Conn, participant_id: uuid.UUID, lock: Lock = None) -> PlanRow | None:
    query = "SELECT * FROM plans WHERE participant_id = $1" + _LOCKS[lock]  # noqa: S608
    row = await conn.fetchrow(query, participant_id)
    if row is None:
        return None
    return PlanRow(
        plan_id=row["plan_id"],
        participant_id=row["participant_id"],
        status=row["status"],
        current_revision=row["current_revision"],
        approved_revision=row["approved_revision"],
        approved_at=row["approved_at"],
        completed_at=row["completed_at"],
    )


async def insert_plan(
    conn: Conn, plan_id: uuid.UUID, participant_id: uuid.UUID, at: datetime
) -> None:
    await conn.execute(
        "INSERT INTO plans (plan_id, participant_id, status, current_revision, created_at,"
        " updated_at) VALUES ($1, $2, 'submitted', 1, $3, $3)",
        plan_id,
        participant_id,
        at,
    )


async def update_plan(
    conn: Conn,
    plan_id: uuid.UUID,
    *,
    status: PlanStatus,
    current_revision: int,
    at: datetime,
    approved_revision: int | None = None,
    completed: bool = False,
) -> None:
    await conn.execute(
        """
        UPDATE plans SET status = $2, current_revision = $3, updated_at = $4,
            approved_revision = COALESCE($5, approved_revision),
            approved_at = CASE WHEN $5::int IS NULL THEN approved_at ELSE $4 END,
            completed_at = CASE WHEN $6 THEN $4 ELSE completed_at END
        WHERE plan_id = $1
        """,
        plan_id,
        status,
        current_revision,
        at,
        approved_revision,
        completed,
    )


def _draft_json(draft: PlanDraft) -> dict[str, Any]:
    return {
        "goals": list(draft.goals),
        "measures": [
            {
                "measure_id": str(m.measure_id),
                "title": m.title,
                "description": m.description,
                "theme": m.theme,
                "responsible": m.responsible,
                "starts_on": m.starts_on.isoformat(),
                "ends_on": m.ends_on.isoformat(),
                "share_consent": m.share_consent,
            }
            for m in draft.measures
        ],
        "milestones": [
            {
                "milestone_id": str(m.milestone_id),
                "title": m.title,
                "due_date": m.due_date.isoformat(),
            }
            for m in draft.milestones
        ],
    }


async def insert_revision(
    conn: Conn, plan_id: uuid.UUID, revision: int, draft: PlanDraft, at: datetime
) -> None:
    body = _draft_json(draft)
    await conn.execute(
        """
        INSERT INTO plan_revisions (plan_id, revision, title, language, starts_on, ends_on,
            goals, measures, milestones, submitted_at, review_status)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'pending')
        """,
        plan_id,
        revision,
        draft.title,
        draft.language,
        draft.starts_on,
        draft.ends_on,
        body["goals"],
        body["measures"],
        body["milestones"],
        at,
    )


async def supersede_pending(conn: Conn, plan_id: uuid.UUID) -> None:
    await conn.execute(
        "UPDATE plan_revisions SET review_status = 'superseded'"
        " WHERE plan_id = $1 AND review_status = 'pending'",
        plan_id,
    )


async def review_revision(
    conn: Conn,
    plan_id: uuid.UUID,
    revision: int,
    status: str,
    at: datetime,
    mentor_id: uuid.UUID,
    comments: str | None,
) -> None:
    await conn.execute(
        "UPDATE plan_revisions SET review_status = $3, reviewed_at = $4, reviewed_by = $5,"
        " comments = $6 WHERE plan_id = $1 AND revision = $2",
        plan_id,
        revision,
        status,
        at,
        mentor_id,
        comments,
    )


def _revision(row: asyncpg.Record) -> Revision:
    from pearls_mentoring.domain.plans import MeasureDraft, MilestoneDraft

    draft = PlanDraft(
        title=row["title"],
        language=row["language"],
        starts_on=row["starts_on"],
        ends_on=row["ends_on"],
        goals=tuple(row["goals"]),
        measures=tuple(
            MeasureDraft(
                measure_id=uuid.UUID(m["measure_id"]),
                title=m["title"],
                description=m["description"],
                theme=m["theme"],
                responsible=m["responsible"],
                starts_on=date.fromisoformat(m["starts_on"]),
                ends_on=date.fromisoformat(m["ends_on"]),
                share_consent=m["share_consent"],
            )
            for m in row["measures"]
        ),
        milestones=tuple(
            MilestoneDraft(
                milestone_id=uuid.UUID(m["milestone_id"]),
                title=m["title"],
                due_date=date.fromisoformat(m["due_date"]),
            )
            for m in row["milestones"]
        ),
    )
    return Revision(
        revision=row["revision"],
        draft=draft,
        submitted_at=row["submitted_at"],
        review_status=row["review_status"],
        reviewed_at=row["reviewed_at"],
        reviewed_by=row["reviewed_by"],
        comments=row["comments"],
    )


async def load_revision(conn: Conn, plan_id: uuid.UUID, revision: int) -> Revision | None:
    row = await conn.fetchrow(
        "SELECT * FROM plan_revisions WHERE plan_id = $1 AND revision = $2", plan_id, revision
    )
    return _revision(row) if row else None


async def revisions(conn: Conn, plan_id: uuid.UUID) -> list[Revision]:
    rows = await conn.fetch(
        "SELECT * FROM plan_revisions WHERE plan_id = $1 ORDER BY revision", plan_id
    )
    return [_revision(r) for r in rows]


async def insert_milestones(conn: Conn, plan_id: uuid.UUID, draft: PlanDraft) -> None:
    await conn.executemany(
        "INSERT INTO milestones (milestone_id, plan_id, position, title, due_date)"
        " VALUES ($1, $2, $3, $4, $5)",
        [(m.milestone_id, plan_id, i, m.title, m.due_date) for i, m in enumerate(draft.milestones)],
    )


def _milestone(row: asyncpg.Record) -> MilestoneState:
    return MilestoneState(
        milestone_id=row["milestone_id"],
        title=row["title"],
        due_date=row["due_date"],
        reached_at=row["reached_at"],
        evidence_summary=row["evidence_summary"],
    )


async def milestones(conn: Conn, plan_id: uuid.UUID) -> list[MilestoneState]:
    rows = await conn.fetch(
        "SELECT * FROM milestones WHERE plan_id = $1 ORDER BY position", plan_id
    )
    return [_milestone(r) for r in rows]


@dataclass(frozen=True, slots=True)
class MilestoneProgress:
    state: MilestoneState
    evidence_urls: tuple[str, ...]
    overdue_noticed_on: date | None
    reports: int


async def milestone_progress(conn: Conn, plan_id: uuid.UUID) -> list[MilestoneProgress]:
    rows = await conn.fetch(
        """
        SELECT m.*, (SELECT count(*) FROM progress_reports r
                     WHERE r.milestone_id = m.milestone_id)::int AS reports
        FROM milestones m WHERE m.plan_id = $1 ORDER BY m.position
        """,
        plan_id,
    )
    return [
        MilestoneProgress(
            _milestone(r), tuple(r["evidence_urls"]), r["overdue_noticed_on"], r["reports"]
        )
        for r in rows
    ]


async def mark_reached(
    conn: Conn, milestone_id: uuid.UUID, at: datetime, summary: str, urls: Sequence[str]
) -> None:
    await conn.execute(
        "UPDATE milestones SET reached_at = $2, evidence_summary = $3, evidence_urls = $4"
        " WHERE milestone_id = $1",
        milestone_id,
        at,
        summary,
        list(urls),
    )


async def insert_report(
    conn: Conn, milestone_id: uuid.UUID, at: datetime, note: str, urls: Sequence[str], reached: bool
) -> None:
    await conn.execute(
        "INSERT INTO progress_reports (milestone_id, reported_at, note, evidence_urls, reached)"
        " VALUES ($1, $2, $3, $4, $5)",
        milestone_id,
        at,
        note,
        list(urls),
        reached,
    )


@dataclass(frozen=True, slots=True)
class DueMilestone:
    milestone: MilestoneState
    plan_id: uuid.UUID
    participant_id: uuid.UUID


async def claim_overdue(conn: Conn, today: date) -> DueMilestone | None:
    """One overdue milestone not yet noticed, locked; others' claims are skipped."""
    row = await conn.fetchrow(
        """
        SELECT m.*, p.participant_id FROM milestones m JOIN plans p USING (plan_id)
        WHERE m.reached_at IS NULL AND m.overdue_noticed_on IS NULL AND m.due_date < $1
          AND p.status = 'approved'
        ORDER BY m.due_date, m.milestone_id
        LIMIT 1
        FOR UPDATE OF m SKIP LOCKED
        """,
        today,
    )
    if row is None:
        return None
    return DueMilestone(_milestone(row), row["plan_id"], row["participant_id"])


async def mark_overdue_noticed(conn: Conn, milestone_id: uuid.UUID, today: date) -> None:
    await conn.execute(
        "UPDATE milestones SET overdue_noticed_on = $2 WHERE milestone_id = $1",
        milestone_id,
        today,
    )


# -- sessions ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SessionRow:
    session_id: uuid.UUID
    title: str
    language: str
    starts_at: datetime
    ends_at: datetime
    time_zone: str
    location: str | None
    online_url: str | None
    themes: tuple[str, ...]
    agenda: tuple[str, ...]
    hosts: tuple[uuid.UUID, ...]
    invited: tuple[uuid.UUID, ...]
    attended: tuple[uuid.UUID, ...] | None
    notes: str | None
    created_by: str


def _session(row: asyncpg.Record) -> SessionRow:
    return SessionRow(
        session_id=row["session_id"],
        title=row["title"],
        language=row["language"],
        starts_at=row["starts_at"],
        ends_at=row["ends_at"],
        time_zone=row["time_zone"],
        location=row["location"],
        online_url=row["online_url"],
        themes=tuple(row["themes"]),
        agenda=tuple(row["agenda"]),
        hosts=tuple(row["hosts"]),
        invited=tuple(row["invited"]),
        attended=tuple(row["attended"]) if row["attended"] is not None else None,
        notes=row["notes"],
        created_by=row["created_by"],
    )


async def insert_session(conn: Conn, s: SessionRow, at: datetime) -> None:
    await conn.execute(
        """
        INSERT INTO sessions (session_id, title, language, starts_at, ends_at, time_zone,
            location, online_url, themes, agenda, hosts, invited, created_by, created_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
        """,
        s.session_id,
        s.title,
        s.language,
        s.starts_at,
        s.ends_at,
        s.time_zone,
        s.location,
        s.online_url,
        list(s.themes),
        list(s.agenda),
        list(s.hosts),
        list(s.invited),
        s.created_by,
        at,
    )


async def load_session(conn: Conn, session_id: uuid.UUID, lock: Lock = None) -> SessionRow | None:
    query = "SELECT * FROM sessions WHERE session_id = $1" + _LOCKS[lock]  # noqa: S608
    row = await conn.fetchrow(query, session_id)
    return _session(row) if row else None


async def list_sessions(
    conn: Conn, host: uuid.UUID | None, limit: int, offset: int
) -> list[SessionRow]:
    rows = await conn.fetch(
        "SELECT * FROM sessions WHERE ($1::uuid IS NULL OR $1 = ANY(hosts))"
        " ORDER BY starts_at, session_id LIMIT $2 OFFSET $3",
        host,
        limit,
        offset,
    )
    return [_session(r) for r in rows]


async def record_attendance(
    conn: Conn, session_id: uuid.UUID, attended: Sequence[uuid.UUID], notes: str | None
) -> None:
    await conn.execute(
        "UPDATE sessions SET attended = $2, notes = $3 WHERE session_id = $1",
        session_id,
        list(attended),
        notes,
    )


async def active_participants(
    conn: Conn, ids: Iterable[uuid.UUID] | None = None
) -> list[Participant]:
    wanted = list(ids) if ids is not None else None
    rows = await conn.fetch(
        "SELECT * FROM participants WHERE status = 'active'"
        " AND ($1::uuid[] IS NULL OR participant_id = ANY($1)) ORDER BY city_name",
        wanted,
    )
    return [_participant(r) for r in rows]


# -- playbook ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlaybookEntry:
    entry_id: uuid.UUID
    theme: str
    language: str
    title: str
    summary: str
    body: str
    city_name: str | None
    country: str | None
    source: str
    published_at: datetime


def _entry(row: asyncpg.Record) -> PlaybookEntry:
    return PlaybookEntry(
        entry_id=row["entry_id"],
        theme=row["theme"],
        language=row["language"],
        title=row["title"],
        summary=row["summary"],
        body=row["body"],
        city_name=row["city_name"],
        country=row["country"].strip() if row["country"] else None,
        source=row["source"],
        published_at=row["published_at"],
    )


async def insert_entry(
    conn: Conn,
    e: PlaybookEntry,
    actor: str,
    *,
    plan_id: uuid.UUID | None = None,
    measure_id: uuid.UUID | None = None,
) -> bool:
    """False when that measure is already in the playbook."""
    done = await conn.fetchval(
        """
        INSERT INTO playbook (entry_id, theme, language, title, summary, body, city_name,
            country, source, source_plan_id, source_measure, published_at, published_by)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
        ON CONFLICT (source_plan_id, source_measure) DO NOTHING RETURNING true
        """,
        e.entry_id,
        e.theme,
        e.language,
        e.title,
        e.summary,
        e.body,
        e.city_name,
        e.country,
        e.source,
        plan_id,
        measure_id,
        e.published_at,
        actor,
    )
    return bool(done)


async def search_playbook(
    conn: Conn,
    *,
    theme: str | None,
    language: str | None,
    text: str | None,
    limit: int,
    offset: int,
) -> list[PlaybookEntry]:
    rows = await conn.fetch(
        """
        SELECT * FROM playbook
        WHERE ($1::text IS NULL OR theme = $1) AND ($2::text IS NULL OR language = $2)
          AND ($3::text IS NULL OR search @@ plainto_tsquery('simple', $3))
        ORDER BY published_at DESC, entry_id LIMIT $4 OFFSET $5
        """,
        theme,
        language,
        text,
        limit,
        offset,
    )
    return [_entry(r) for r in rows]


async def load_entry(conn: Conn, entry_id: uuid.UUID) -> PlaybookEntry | None:
    row = await conn.fetchrow("SELECT * FROM playbook WHERE entry_id = $1", entry_id)
    return _entry(row) if row else None


# -- audit -------------------------------------------------------------------


async def write_audit(conn: Conn, entries: Iterable[AuditEntry]) -> None:
    await conn.executemany(
        "INSERT INTO audit (at, actor, action, participant_id, mentor_id, details)"
        " VALUES ($1, $2, $3, $4, $5, $6)",
        [(e.at, e.actor, e.action, e.participant_id, e.mentor_id, e.details) for e in entries],
    )


async def audit_of(conn: Conn, participant_id: uuid.UUID) -> list[AuditEntry]:
    rows = await conn.fetch(
        "SELECT * FROM audit WHERE participant_id = $1 ORDER BY at, audit_id", participant_id
    )
    return [
        AuditEntry(
            r["at"], r["actor"], r["action"], r["participant_id"], r["mentor_id"], r["details"]
        )
        for r in rows
    ]


# -- contacts and erasure -------------------------------------------------------------


async def contacts_as_of(conn: Conn, participant_id: uuid.UUID) -> datetime | None:
    found: datetime | None = await conn.fetchval(
        "SELECT coalesce(contacts_as_of, accepted_at) FROM participants"
        " WHERE participant_id = $1 AND contacts IS NOT NULL",
        participant_id,
    )
    return found


async def replace_contacts(
    conn: Conn, participant_id: uuid.UUID, contacts: Sequence[ContactPerson], as_of: datetime
) -> bool:
    """The newer list wins; False when the row holds a newer one (or no data yet)."""
    result = await conn.execute(
        "UPDATE participants SET contacts = $2, contacts_as_of = $3, updated_at = now()"
        " WHERE participant_id = $1 AND contacts IS NOT NULL"
        " AND coalesce(contacts_as_of, accepted_at, '-infinity') <= $3",
        participant_id,
        [c.model_dump(mode="json") for c in contacts],
        as_of,
    )
    return bool(int(result.split()[-1]))


async def set_contacts_as_of(conn: Conn, participant_id: uuid.UUID, as_of: datetime) -> None:
    await conn.execute(
        "UPDATE participants SET contacts_as_of = $2 WHERE participant_id = $1",
        participant_id,
        as_of,
    )


async def retire_erased_mentors(conn: Conn, pseudonyms: Sequence[str]) -> int:
    """Mentors whose address was erased: nameless, and paused (no new mentees)."""
    result = await conn.execute(
        "UPDATE mentors SET name = $2, status = 'paused' WHERE lower(email) = ANY($1::text[])",
        list(pseudonyms),
        ERASED_NAME,
    )
    return int(result.split()[-1])
