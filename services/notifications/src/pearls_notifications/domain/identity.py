"""Deterministic identities: the same e-mail always has the same Message-ID."""

from __future__ import annotations

import base64
import hashlib

MESSAGE_ID_DOMAIN = "pearls"


def message_id(event_id: str, recipient: str, template: str) -> str:
    """RFC 5322 Message-ID from (causing event id, recipient, template).

    A resend after the one unclosable window (server said 250, the record did
    not commit) carries the same id, so the duplicate is detectable downstream.
    """
    digest = hashlib.sha256(f"{event_id}\n{recipient.lower()}\n{template}".encode()).digest()
    # base32 keeps all 256 bits yet short enough that the header is never folded.
    token = base64.b32encode(digest).decode().rstrip("=").lower()
    return f"<{token}@{MESSAGE_ID_DOMAIN}>"
