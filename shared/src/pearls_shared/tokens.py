"""Bearer tokens: hashing, the settings format, and constant-time lookups.

Services keep only SHA-256 digests of tokens (in settings and in their
databases). Tokens are long random strings, so one unsalted SHA-256 is enough
to store them: nobody can guess 256 random bits from the digest.

Staff tokens are configured as JSON entries, either by digest or, handy in
development, in plain (hashed when the settings load and never kept)::

    {"id": "anna", "token_sha256": "9f86d0…"}    # printf %s TOKEN | sha256sum
    {"id": "anna", "token": "plain-token"}

Every lookup compares digests with ``hmac.compare_digest`` and walks the whole
list, so timing tells a caller neither which entry nearly matched nor where in
the list it sits. Lists that change without a restart (a tokens file, SIGHUP)
are ``pearls_shared.token_files``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Self, TypeVar

from pydantic import BaseModel, Field, SecretStr, model_validator

T = TypeVar("T")

_DIGEST_SIZE = hashlib.sha256().digest_size
_NO_DIGEST = bytes(_DIGEST_SIZE)  # compared against when nothing is stored: same work


def hash_token(token: str) -> bytes:
    """The SHA-256 digest under which a token is stored."""
    return hashlib.sha256(token.encode()).digest()


def new_token() -> tuple[str, bytes]:
    """A fresh token (URL-safe text of 32 random bytes) and its digest."""
    text = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
    return text, hash_token(text)


class TokenEntry(BaseModel):
    """One configured holder of a bearer token; services subclass it with their fields."""

    id: str = Field(min_length=1, max_length=100, description="Stable id, used in the audit.")
    token_sha256: str | None = Field(
        default=None, pattern=r"^[0-9a-f]{64}$", description="Hex SHA-256 of the token."
    )
    token: SecretStr | None = Field(default=None, description="Plain token; hashed at load.")

    @model_validator(mode="before")
    @classmethod
    def _hash_plain(cls, values: Any) -> Any:
        if isinstance(values, dict) and values.get("token") and not values.get("token_sha256"):
            plain = values["token"]
            plain = plain.get_secret_value() if isinstance(plain, SecretStr) else str(plain)
            values = {**values, "token_sha256": hash_token(plain).hex(), "token": None}
        return values

    @model_validator(mode="after")
    def _has_hash(self) -> Self:
        if not self.token_sha256:
            raise ValueError("give token_sha256 (or token)")
        self.token = None  # the plain token is never kept
        return self

    @property
    def digest(self) -> bytes:
        """The token's SHA-256 digest."""
        assert self.token_sha256 is not None  # the validator guarantees it
        return bytes.fromhex(self.token_sha256)


def check_distinct(kind_entries: Mapping[str, Sequence[TokenEntry]]) -> None:
    """Refuse an id given twice within a kind, or one token shared by any two entries.

    ``kind_entries`` maps a kind ("coordinator", "reviewer" …) to its entries.
    A shared token or id would make the audit trail name the wrong person.
    """
    for kind, entries in kind_entries.items():
        ids = [e.id for e in entries]
        if len(set(ids)) != len(ids):
            raise ValueError(f"every {kind} id must be given once")
    holders: dict[bytes, str] = {}
    for kind, entries in kind_entries.items():
        for entry in entries:
            first = holders.setdefault(entry.digest, f"{kind} {entry.id!r}")
            if first != f"{kind} {entry.id!r}":
                raise ValueError(
                    f"every {_listed(list(kind_entries))} needs a token of its own"
                    f" ({first} and {kind} {entry.id!r} have the same one)"
                )


def _listed(words: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return " and ".join(words) if len(words) < 3 else f"{', '.join(words[:-1])} and {words[-1]}"


class TokenBook(Generic[T]):
    """Who holds a token: digests mapped to values, looked up in constant time."""

    def __init__(self, entries: Iterable[tuple[bytes, T]]) -> None:
        self._entries = tuple(entries)

    def identify(self, token: str) -> T | None:
        """The value of the entry whose digest matches ``token``, or None.

        Compares with every entry, never stopping at a match. An empty token
        matches nothing.
        """
        given = hash_token(token)
        found: T | None = None
        matched = False
        for known, value in self._entries:
            if hmac.compare_digest(known, given) and not matched:
                found, matched = value, True
        return found if token else None


def digest_matches(stored: bytes | None, token: str) -> bool:
    """Whether ``token`` hashes to the ``stored`` digest (None: nothing stored, no match)."""
    given = hash_token(token)
    same = hmac.compare_digest(stored if stored is not None else _NO_DIGEST, given)
    return same and stored is not None and bool(token)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling, once a token was recognised: a role and an id."""

    role: str
    id: str

    @property
    def actor(self) -> str:
        """How audit trails name this caller."""
        return f"{self.role}:{self.id}"
