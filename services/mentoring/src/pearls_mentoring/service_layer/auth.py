"""Who is calling: coordinators (settings), mentors (their registration token) and
applicants (the token the applications service gave them).

Only SHA-256 digests are kept. Coordinator tokens are compared in constant time
over the whole configured list; a mentor token is looked up by its digest and
compared again in constant time. An applicant is recognised by the digest the
applications service published with ``pearls.application.accepted``
(``applicant_token_sha256``): mentoring never sees or stores the token itself.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import asyncpg

from pearls_mentoring.adapters import repository as repo
from pearls_shared.tokens import Principal as TokenPrincipal
from pearls_shared.tokens import TokenBook, TokenEntry, digest_matches, hash_token


class Principal(TokenPrincipal):
    """A coordinator, or a mentor (whose id is its mentor id)."""

    __slots__ = ()

    @property
    def mentor_id(self) -> uuid.UUID | None:
        return uuid.UUID(self.id) if self.role == "mentor" else None


class Authenticator:
    def __init__(
        self, pool: asyncpg.Pool[Any], coordinators: Sequence[TokenEntry] | TokenBook[Principal]
    ) -> None:
        self._pool = pool
        # A book (``TokenFiles.book``, see bootstrap) follows the tokens file; a list is fixed.
        self._coordinators: TokenBook[Principal] = (
            coordinators
            if isinstance(coordinators, TokenBook)
            else TokenBook((c.digest, Principal("coordinator", c.id)) for c in coordinators)
        )

    async def identify(self, token: str) -> Principal | None:
        found = self._coordinators.identify(token)
        if found is not None:
            return found
        async with self._pool.acquire() as conn:
            mentor = await repo.mentor_by_token(conn, hash_token(token))
        if mentor is not None and digest_matches(mentor[1], token):
            return Principal("mentor", str(mentor[0]))
        return None

    async def owns(self, participant_id: uuid.UUID, token: str) -> bool:
        """Whether ``token`` is the applicant token of that participant."""
        async with self._pool.acquire() as conn:
            participant = await repo.load_participant(conn, participant_id)
        return participant is not None and digest_matches(participant.token_sha256, token)
