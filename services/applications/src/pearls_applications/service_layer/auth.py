"""Who is calling: coordinators and reviewers by bearer token, applicants by their own.

Only SHA-256 digests of tokens are kept (settings and database). Every
comparison uses ``hmac.compare_digest`` and walks the whole configured list,
so timing does not tell which entry nearly matched.
"""

from __future__ import annotations

import hmac
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from pearls_applications.adapters import repository as repo
from pearls_applications.config import CoordinatorEntry, ReviewerEntry, hash_token

Role = Literal["coordinator", "reviewer"]


@dataclass(frozen=True, slots=True)
class Principal:
    role: Role
    id: str

    @property
    def actor(self) -> str:
        """How the audit trail names this caller."""
        return f"{self.role}:{self.id}"


class Authenticator:
    def __init__(
        self, coordinators: Sequence[CoordinatorEntry], reviewers: Sequence[ReviewerEntry]
    ) -> None:
        self._staff: list[tuple[bytes, Principal]] = [
            (c.digest, Principal("coordinator", c.id)) for c in coordinators
        ] + [(r.digest, Principal("reviewer", r.id)) for r in reviewers]

    async def identify(self, conn: repo.Conn, token: str) -> Principal | None:
        digest = hash_token(token)
        found: Principal | None = None
        for known, principal in self._staff:
            if hmac.compare_digest(known, digest) and found is None:
                found = principal
        if found is not None:
            return found
        registered = await repo.reviewer_by_token(conn, digest)
        if registered and hmac.compare_digest(registered[1], digest):
            return Principal("reviewer", registered[0].id)
        return None

    @staticmethod
    async def owns(conn: repo.Conn, application_id: uuid.UUID, token: str) -> bool:
        """Whether ``token`` is the applicant token of that application."""
        stored = await repo.token_hash_of(conn, application_id)
        return stored is not None and hmac.compare_digest(stored, hash_token(token))
