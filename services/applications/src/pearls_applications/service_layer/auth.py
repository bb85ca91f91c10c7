"""Who is calling: coordinators and reviewers by bearer token, applicants by their own.

Only SHA-256 digests of tokens are kept (settings and database). Every
comparison is constant-time and the configured list is walked whole
(``pearls_shared.tokens``), so timing does not tell which entry nearly matched.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from pearls_applications.adapters import repository as repo
from pearls_applications.config import CoordinatorEntry, ReviewerEntry
from pearls_shared.db import Conn
from pearls_shared.tokens import Principal, TokenBook, digest_matches, hash_token


class Authenticator:
    def __init__(
        self,
        coordinators: Sequence[CoordinatorEntry] | TokenBook[Principal],
        reviewers: Sequence[ReviewerEntry] = (),
    ) -> None:
        # A book (``Settings.token_files().book``) follows the tokens files; lists are fixed.
        self._staff: TokenBook[Principal] = (
            coordinators
            if isinstance(coordinators, TokenBook)
            else TokenBook(
                [(c.digest, Principal("coordinator", c.id)) for c in coordinators]
                + [(r.digest, Principal("reviewer", r.id)) for r in reviewers]
            )
        )

    async def identify(self, conn: Conn, token: str) -> Principal | None:
        found = self._staff.identify(token)
        if found is not None:
            return found
        registered = await repo.reviewer_by_token(conn, hash_token(token))
        if registered and digest_matches(registered[1], token):
            return Principal("reviewer", registered[0].id)
        return None

    @staticmethod
    async def owns(conn: Conn, application_id: uuid.UUID, token: str) -> bool:
        """Whether ``token`` is the applicant token of that application."""
        return digest_matches(await repo.token_hash_of(conn, application_id), token)
