"""Names of places accepted by the services' HTTP APIs.

A place's name is a single line (``pearls_shared.lines``: storable, no control
characters) that shows a letter: one made only of invisible characters (a
zero-width space) or of digits and punctuation names no place. It is kept as
written for display and compared by :func:`pearls_shared.names.identity_key`.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator

from pearls_shared.lines import SingleLine
from pearls_shared.names import has_letter


def has_visible_letter(value: str) -> str:
    """Refuse a name that shows no letter: empty once invisible characters are gone,
    or made only of digits, punctuation and symbols."""
    if not has_letter(value):
        raise ValueError("must contain at least one visible letter")
    return value


PlaceName = Annotated[SingleLine, AfterValidator(has_visible_letter)]
"""The name of a city or region as written (kept for display); compared by
:func:`pearls_shared.names.identity_key`."""
