"""How every service compares names of places: one identity key per spelling.

Services keep the name as written for display and compare keys, so that
"Kuldīga", "KULDĪGA" and "Kuldīga " are one city everywhere.
"""

from __future__ import annotations

import unicodedata


def identity_key(name: str) -> str:
    """NFKC, case-folded, inner white space collapsed."""
    folded = unicodedata.normalize("NFKC", name).casefold()
    return " ".join(unicodedata.normalize("NFKC", folded).split())
