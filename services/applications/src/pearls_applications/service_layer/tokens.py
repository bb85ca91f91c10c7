"""How an idempotent retry gets its applicant token back.

Tokens are made by ``pearls_shared.tokens.new_token``; the database keeps
only the token's digest. For a retried submission to return the first
answer, the token's raw bytes are also kept *sealed*: XOR-ed with an
HMAC-SHA256 keystream derived from the client's Idempotency-Key (which the
server never stores in clear). Only a client presenting that key again can
unseal it; the table alone reveals nothing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid


def token_text(raw: bytes) -> str:
    """The token's URL-safe text from its raw bytes."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def token_raw(text: str) -> bytes:
    """The raw bytes of a token's text (what is sealed), undoing ``token_text``."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _keystream(idempotency_key: str, application_id: uuid.UUID) -> bytes:
    return hmac.new(
        idempotency_key.encode(), b"pearls-applicant-token:" + application_id.bytes, "sha256"
    ).digest()


def seal(raw: bytes, idempotency_key: str, application_id: uuid.UUID) -> bytes:
    return bytes(
        a ^ b for a, b in zip(raw, _keystream(idempotency_key, application_id), strict=True)
    )


unseal = seal  # XOR with the same keystream undoes itself


def key_digest(idempotency_key: str) -> bytes:
    return hashlib.sha256(idempotency_key.encode()).digest()
