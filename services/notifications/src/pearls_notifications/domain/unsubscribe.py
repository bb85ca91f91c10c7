"""Signed unsubscribe tokens: HMAC-SHA256 over (recipient, category).

Only the holder of the link (the recipient's mailbox) can switch a category
off; the token needs no storage and cannot be forged for another address.
"""

from __future__ import annotations

import hashlib
import hmac

from pearls_notifications.domain.model import OPTIONAL_CATEGORIES, Category


def sign(secret: bytes, recipient: str, category: Category) -> str:
    message = f"unsubscribe\n{recipient.lower()}\n{category.value}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def verify(secret: bytes, recipient: str, category: str, token: str) -> Category | None:
    """The category the token allows switching off, or None when it is not valid."""
    try:
        cat = Category(category)
    except ValueError:
        return None
    if cat not in OPTIONAL_CATEGORIES:
        return None
    expected = sign(secret, recipient, cat)
    return cat if hmac.compare_digest(expected, token.lower()) else None
