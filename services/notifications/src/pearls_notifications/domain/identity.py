"""Deterministic identities: the same e-mail always has the same Message-ID."""

from __future__ import annotations

import base64
import hashlib
import re

# One DNS label (RFC 1123): letters, digits and inner hyphens, 1 to 63 characters.
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


def hostname(value: str) -> str:
    """``value`` as a lower-case ASCII host name, or ``ValueError`` saying why not.

    A name in another script is converted to its IDNA form (``xn--…``), so the
    result is always valid as the right-hand side of a Message-ID (a dot-atom).
    """
    try:
        name = value.lower().encode("idna").decode("ascii")
    except UnicodeError:  # an empty or over-long label
        name = ""
    labels = name.split(".")
    if not name or len(name) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise ValueError(
            f"{value!r} is not a host name (dot-separated labels of letters, digits and "
            "inner hyphens, each 1 to 63 characters, no trailing dot)"
        )
    return name


def message_id(event_id: str, recipient: str, template: str, domain: str) -> str:
    """RFC 5322 Message-ID from (causing event id, recipient, template), at ``domain``.

    ``domain`` is the configured host name (``Settings.message_id_host``), already
    checked by ``hostname``. A resend after the one unclosable window (server said
    250, the record did not commit) carries the same id, so the duplicate is
    detectable downstream; the id is stored with the delivery when it is planned, so
    every attempt of one e-mail uses it even if the setting changes in between.
    """
    digest = hashlib.sha256(f"{event_id}\n{recipient.lower()}\n{template}".encode()).digest()
    # base32 keeps all 256 bits in 52 characters (the header is written unfolded: mime.py).
    token = base64.b32encode(digest).decode().rstrip("=").lower()
    return f"<{token}@{domain}>"
