"""The read side: what the HTTP API shows, without going through the use cases."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg

from pearls_mentoring.adapters import repository as repo
from pearls_mentoring.domain.model import AuditEntry, Mentor


@dataclass(frozen=True, slots=True)
class PlanView:
    plan: repo.PlanRow
    revisions: list[repo.Revision]
    milestones: list[repo.MilestoneProgress]


class Queries:
    def __init__(self, pool: asyncpg.Pool[Any]) -> None:
        self._pool = pool

    async def mentors(self, limit: int, offset: int) -> list[Mentor]:
        async with self._pool.acquire() as conn:
            return await repo.list_mentors(conn, limit, offset)

    async def mentor(self, mentor_id: uuid.UUID) -> Mentor | None:
        async with self._pool.acquire() as conn:
            return await repo.load_mentor(conn, mentor_id)

    async def participants(
        self, *, mentor_id: uuid.UUID | None, waiting: bool | None, limit: int, offset: int
    ) -> list[repo.ParticipantView]:
        async with self._pool.acquire() as conn:
            return await repo.list_participants(
                conn, mentor_id=mentor_id, waiting=waiting, limit=limit, offset=offset
            )

    async def participant(self, participant_id: uuid.UUID) -> repo.ParticipantView | None:
        async with self._pool.acquire() as conn:
            return await repo.participant_view(conn, participant_id)

    async def audit(self, participant_id: uuid.UUID) -> list[AuditEntry]:
        async with self._pool.acquire() as conn:
            return await repo.audit_of(conn, participant_id)

    async def plan(self, participant_id: uuid.UUID) -> PlanView | None:
        async with self._pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
            plan = await repo.load_plan(conn, participant_id)
            if plan is None:
                return None
            return PlanView(
                plan,
                await repo.revisions(conn, plan.plan_id),
                await repo.milestone_progress(conn, plan.plan_id),
            )

    async def sessions(
        self, host: uuid.UUID | None, limit: int, offset: int
    ) -> list[repo.SessionRow]:
        async with self._pool.acquire() as conn:
            return await repo.list_sessions(conn, host, limit, offset)

    async def session(self, session_id: uuid.UUID) -> repo.SessionRow | None:
        async with self._pool.acquire() as conn:
            return await repo.load_session(conn, session_id)

    async def playbook(
        self, *, theme: str | None, language: str | None, text: str | None, limit: int, offset: int
    ) -> list[repo.PlaybookEntry]:
        async with self._pool.acquire() as conn:
            return await repo.search_playbook(
                conn, theme=theme, language=language, text=text, limit=limit, offset=offset
            )

    async def practice(self, entry_id: uuid.UUID) -> repo.PlaybookEntry | None:
        async with self._pool.acquire() as conn:
            return await repo.load_entry(conn, entry_id)
