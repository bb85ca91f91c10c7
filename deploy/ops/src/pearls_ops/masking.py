"""Settings with their secrets masked, for `pearls settings`."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, SecretStr

MASK = "********"
_SECRET_NAME = re.compile(r"password|secret|token|credential|api_key|private", re.IGNORECASE)


def mask_url(text: str) -> str:
    """A URL/DSN with its password replaced by the mask (user, host, database kept)."""
    try:
        parts = urlsplit(text)
    except ValueError:
        return text
    if not parts.scheme or "@" not in parts.netloc:
        return text
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user, sep, _password = userinfo.partition(":")
    if not sep:
        return text
    return urlunsplit((parts.scheme, f"{user}:{MASK}@{hostport}", parts.path, parts.query, ""))


def masked(value: Any, name: str = "") -> Any:
    """A JSON-friendly copy of ``value`` with every secret masked."""
    if value is None:
        return None
    if isinstance(value, SecretStr):
        secret = value.get_secret_value()
        # A DSN keeps its user, host and database (useful, not secret); its password goes.
        return mask_url(secret) if "://" in secret else MASK
    if isinstance(value, BaseModel):
        return {k: masked(getattr(value, k), k) for k in type(value).model_fields}
    if isinstance(value, dict):
        return {str(k): masked(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [masked(v, name) for v in value]
    if isinstance(value, bool | int | float):
        return value
    if isinstance(value, Path):
        return str(value)
    text = str(value)
    if name and _SECRET_NAME.search(name):
        return MASK
    return mask_url(text)
