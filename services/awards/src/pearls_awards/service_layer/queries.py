"""The read side: rounds, nominees, results, the participants' view and the showcase."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from pearls_awards.adapters import repository as repo
from pearls_awards.domain.rounds import Round
from pearls_awards.domain.showcase import Pearl
from pearls_awards.domain.view import ParticipantView


class Queries:
    def __init__(self, pool: asyncpg.Pool[Any]) -> None:
        self._pool = pool

    async def round(self, round_id: uuid.UUID) -> Round | None:
        async with self._pool.acquire() as conn:
            return await repo.load_round(conn, round_id)

    async def rounds(self, limit: int, offset: int) -> list[Round]:
        async with self._pool.acquire() as conn:
            return await repo.list_rounds(conn, limit, offset)

    async def nominees(self, round_id: uuid.UUID) -> list[tuple[repo.Nomination, ParticipantView]]:
        async with self._pool.acquire() as conn:
            found = await repo.nominations(conn, round_id)
            views = await repo.views(conn, [n.participant_id for n in found])
        return [(n, views[n.participant_id]) for n in found]

    async def exclusions(self, round_id: uuid.UUID) -> list[repo.Exclusion]:
        async with self._pool.acquire() as conn:
            return await repo.exclusions(conn, round_id)

    async def final_result(self, round_id: uuid.UUID) -> dict[str, Any] | None:
        async with self._pool.acquire() as conn:
            return await repo.round_result(conn, round_id)

    async def participants(self, limit: int, offset: int) -> list[ParticipantView]:
        async with self._pool.acquire() as conn:
            return await repo.list_views(conn, limit, offset)

    async def participant(self, participant_id: uuid.UUID) -> ParticipantView | None:
        async with self._pool.acquire() as conn:
            return await repo.load_view(conn, participant_id)

    async def pearls(self) -> list[Pearl]:
        async with self._pool.acquire() as conn:
            return await repo.pearls(conn)
