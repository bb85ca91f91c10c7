"""Free text accepted by the services' HTTP APIs: only what they can store and mail.

PostgreSQL refuses NUL characters in text and JSON, and UTF-8 cannot carry a
lone surrogate (legal as a JSON escape), so every free text refuses both up
front with a 422 naming the field, instead of failing later in the database.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, StringConstraints


def storable(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    if any("\ud800" <= ch <= "\udfff" for ch in value):
        raise ValueError("must be valid Unicode (no lone surrogates)")
    return value


ShortText = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    AfterValidator(storable),
]
LongText = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=4000),
    AfterValidator(storable),
]
