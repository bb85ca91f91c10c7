"""Free text accepted by the services' HTTP APIs: only what they can store and mail.

PostgreSQL refuses NUL characters in text and JSON, and UTF-8 cannot carry a
lone surrogate (legal as a JSON escape), so every free text refuses both up
front with a 422 naming the field, instead of failing later in the database.
A place's name must also show a letter: one made only of invisible characters
(a zero-width space) or of digits and punctuation names no place.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, StringConstraints

from pearls_shared.lines import single_line
from pearls_shared.names import has_letter


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


def has_visible_letter(value: str) -> str:
    """Refuse a name that shows no letter: empty once invisible characters are gone,
    or made only of digits, punctuation and symbols."""
    if not has_letter(value):
        raise ValueError("must contain at least one visible letter")
    return value


PlaceName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    AfterValidator(storable),
    AfterValidator(single_line),
    AfterValidator(has_visible_letter),
]
"""The name of a city or region as written (kept for display); compared by
:func:`pearls_shared.names.identity_key`."""
