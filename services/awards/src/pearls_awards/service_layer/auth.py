"""Who is calling: coordinators (settings) and jurors (the token of their round).

Only SHA-256 digests are kept; coordinator tokens are compared in constant time
over the whole list, a juror token is looked up by digest and compared again.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from pearls_awards.adapters import repository as repo
from pearls_shared.tokens import Principal as TokenPrincipal
from pearls_shared.tokens import TokenBook, TokenEntry, digest_matches, hash_token


@dataclass(frozen=True, slots=True)
class Principal(TokenPrincipal):
    """A coordinator, or a juror (who sits on one round's jury)."""

    round_id: uuid.UUID | None = None


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
            juror = await repo.juror_by_token(conn, hash_token(token))
        if juror is not None and digest_matches(juror[2], token):
            return Principal("juror", str(juror[1]), juror[0])
        return None
