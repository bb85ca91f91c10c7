"""The public showcase of the BSR Cultural Pearls: award winners as the public sees them.

Winners "are made visible as Baltic Sea cultural pearls through supra-regional
communication". A ``Pearl`` is everything the showcase publishes about one award
and nothing more: no contact persons, no people's names, no scores.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from pearls_shared.events.common import FALLBACK_LANGUAGE

SLUG_PATTERN = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
# The shape of a language tag ("lv", "nb", "en-GB"): it becomes an HTML lang attribute.
_LANGUAGE_TAG = re.compile(r"^[a-z]{2,3}(?:-[A-Za-z0-9]{2,8})*$")


@dataclass(frozen=True, slots=True)
class Pearl:
    """One award winner as the public sees it: no personal data (no contacts, no names)."""

    participant_id: uuid.UUID
    slug: str  # URL slug, e.g. "2026-kuldiga"; unique per showcase (see make_slug)
    city_name: str
    country: str  # ISO 3166-1 alpha-2
    year: int
    round_id: uuid.UUID
    round_title: str  # English title of the round
    rank: int
    additional_award: bool
    citation: dict[str, str]  # language -> text, 'en' always present
    themes: tuple[str, ...]  # theme slugs
    achievements: tuple[str, ...]  # what the action plan achieved, one sentence each
    granted_at: datetime  # aware

    def __post_init__(self) -> None:
        if not SLUG_PATTERN.fullmatch(self.slug):
            raise ValueError(f"not a showcase slug: {self.slug!r}")
        if not self.citation.get(FALLBACK_LANGUAGE):
            raise ValueError(f"the citation needs a text in {FALLBACK_LANGUAGE!r}")
        bad = [lang for lang in self.citation if not _LANGUAGE_TAG.fullmatch(lang)]
        if bad:
            raise ValueError(f"not language codes: {bad!r}")
        if self.granted_at.utcoffset() is None:
            raise ValueError("granted_at must be timezone-aware")

    @property
    def country_name(self) -> str:
        return country_name(self.country)

    @property
    def theme_labels(self) -> tuple[str, ...]:
        return tuple(theme_label(t) for t in self.themes)

    def citation_in(self, language: str) -> str:
        """The citation in ``language``, else in English."""
        return self.citation.get(language) or self.citation[FALLBACK_LANGUAGE]

    def other_citations(self) -> list[tuple[str, str]]:
        """(language, text) of the citation in every language but English, by language code."""
        return sorted((k, v) for k, v in self.citation.items() if k != FALLBACK_LANGUAGE and v)


# Letters that Unicode does not decompose into a base letter and a mark, as
# written in the BSR languages (Polish ł, Danish/Norwegian ø and æ, German ß,
# Icelandic þ and ð).
_FOLD = str.maketrans(
    {
        "ł": "l", "Ł": "L", "ø": "o", "Ø": "O", "æ": "ae", "Æ": "Ae", "ß": "ss",
        "þ": "th", "Þ": "Th", "ð": "d", "Ð": "D", "đ": "d", "Đ": "D", "œ": "oe",
        "Œ": "Oe", "\u0131": "i",  # dotless i
    }
)  # fmt: skip
_APOSTROPHES = re.compile("['\u2019\u02bc]")  # ', right single quote, modifier apostrophe
_NOT_SLUG = re.compile(r"[^a-z0-9]+")


def ascii_fold(text: str) -> str:
    """``Kuldīga`` -> ``Kuldiga``, ``Łódź`` -> ``Lodz``: letters without their marks."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_FOLD))
    return (
        "".join(c for c in decomposed if not unicodedata.combining(c))
        .encode("ascii", "ignore")
        .decode("ascii")
    )


def make_slug(year: int, city_name: str, taken: Collection[str] = ()) -> str:
    """``2026-kuldiga``, ``2026-jelenia-gora``; ``-2``, ``-3`` … appended if already taken.

    A name with no Latin letters or digits at all becomes ``<year>-pearl``.
    """
    name = _NOT_SLUG.sub("-", _APOSTROPHES.sub("", ascii_fold(city_name)).lower()).strip("-")
    base = f"{year}-{name or 'pearl'}"
    slug, n = base, 1
    while slug in taken:
        n += 1
        slug = f"{base}-{n}"
    return slug


# English labels of the default themes (pearls_shared.events.common.DEFAULT_THEMES).
THEME_LABELS: dict[str, str] = {
    "ecology_health": "Ecology and health",
    "innovation_economy": "Innovation and economy",
    "leisure_youth_social": "Leisure, youth and social",
    "city_administration_development": "City administration and development",
    "culture_creative_industries": "Culture and creative industries",
    "digital_participation": "Digital participation",
}

# English names of the BSR countries (pearls_shared.events.common.BSR_COUNTRIES).
COUNTRY_NAMES: dict[str, str] = {
    "DK": "Denmark",
    "EE": "Estonia",
    "FI": "Finland",
    "DE": "Germany",
    "IS": "Iceland",
    "LV": "Latvia",
    "LT": "Lithuania",
    "NO": "Norway",
    "PL": "Poland",
    "SE": "Sweden",
}

# English names of the BSR languages (pearls_shared.events.common.LANGUAGES),
# to say which language a translated citation is in.
LANGUAGE_NAMES: dict[str, str] = {
    "da": "Danish",
    "de": "German",
    "en": "English",
    "et": "Estonian",
    "fi": "Finnish",
    "is": "Icelandic",
    "lt": "Lithuanian",
    "lv": "Latvian",
    "nb": "Norwegian (Bokmål)",
    "nn": "Norwegian (Nynorsk)",
    "no": "Norwegian",
    "pl": "Polish",
    "sv": "Swedish",
}


def theme_label(slug: str) -> str:
    """The English label of a theme; an unknown slug prettified (``urban_water``: Urban water)."""
    if slug in THEME_LABELS:
        return THEME_LABELS[slug]
    words = slug.replace("_", " ").replace("-", " ").split()
    return " ".join(words).capitalize() if words else slug


def country_name(code: str) -> str:
    """The English name of a BSR country; an unknown code as it is."""
    return COUNTRY_NAMES.get(code, code)


def language_name(code: str) -> str:
    """The English name of a BSR language; an unknown code as it is."""
    return LANGUAGE_NAMES.get(code, code)
