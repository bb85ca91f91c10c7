"""How every service compares names of places: one identity key per spelling.

Services keep the name as written for display and compare keys, so that
"Kuldīga", "KULDĪGA" and "Kuldīga " are one city everywhere, and so are the
spellings a person cannot tell apart on screen:

1. Unicode NFKC (compatibility forms: full-width letters, ligatures, the
   no-break space …), then case folding, then NFKC again.
2. Invisible characters are removed: every default-ignorable code point of
   Unicode (zero-width space, ZWJ/ZWNJ, soft hyphen, the direction marks and
   bidi controls, word joiner, BOM, variation selectors, Hangul fillers, tags)
   and every other format character (category Cf).
3. Letters of another script that look like a Latin letter are replaced by
   that Latin letter (Cyrillic a, o, i, dze U+0455, Greek omicron, alpha,
   iota …), so a name that mixes in look-alikes, or is written entirely in
   them, has the key of its Latin twin. Which letters look alike comes from the Unicode
   confusables data (UTS #39) as shipped by the ``confusable-homoglyphs``
   package, with its script table, not from a table of our own. A letter is
   compared with its small form first and its capital second, because the key
   ignores case: Cyrillic capital Ve looks like "B", so its small letter keys
   as "b" as well. Where a script's small and capital letter look like two
   different Latin letters (Greek nu: "v" and "N", upsilon: "u" and "Y"), the
   small letter decides. Only letters of other scripts change: Latin letters,
   diacritics and Latin's own look-alikes (dotless i, "ł", "ß") stay as they are, so
   "Gdańsk" and "Gdansk" remain two names, and a name written in another
   script still has a key of its own (only its look-alike letters change).
4. White space collapses to single spaces, none at either end.

Keys are computed in Python whenever they are compared, from the name as
written; a key stored in a database is what the key was when the row was
written (see the applications service's ``normalise_city``). ``KEY_RULE`` names
the rule that computes keys today, so a stored key can say which rule made it.
"""

from __future__ import annotations

import functools
import unicodedata
from importlib.metadata import version
from typing import Any, cast

from confusable_homoglyphs import categories as _scripts
from confusable_homoglyphs import confusables as _confusables

# Default_Ignorable_Code_Point (Unicode DerivedCoreProperties.txt) outside
# category Cf, which is removed as a whole: the combining grapheme joiner,
# Hangul fillers, Khmer inherent vowels, Mongolian and other variation
# selectors, unassigned code points reserved as ignorable, tag space.
_IGNORABLE_RANGES: tuple[tuple[int, int], ...] = (
    (0x034F, 0x034F),
    (0x115F, 0x1160),
    (0x17B4, 0x17B5),
    (0x180B, 0x180F),
    (0x2060, 0x206F),
    (0x3164, 0x3164),
    (0xFE00, 0xFE0F),
    (0xFFA0, 0xFFA0),
    (0xFFF0, 0xFFF8),
    (0xE0000, 0xE0FFF),
)

# The rule that computes keys today. Bump the first part whenever this module changes
# what a key is (tests/unit/test_names.py pins the keys of a probe set to it); Unicode's
# and the confusables' data are part of the rule, so a new Python or package is a new
# rule by itself. A key stored under another rule must be computed again to compare.
_DATA = f"unicode-{unicodedata.unidata_version}/confusables-{version('confusable-homoglyphs')}"
KEY_RULE = f"names-1/{_DATA}"

_LOOKALIKES: dict[str, list[dict[str, str]]] = cast(
    "dict[str, list[dict[str, str]]]", _confusables.confusables_data
)


@functools.lru_cache(maxsize=4096)
def is_invisible(char: str) -> bool:
    """Whether ``char`` is a default-ignorable or format character (shows nothing)."""
    # Cached: asked for every character of a name, several times per request.
    if unicodedata.category(char) == "Cf":
        return True
    code = ord(char)
    return any(low <= code <= high for low, high in _IGNORABLE_RANGES)


def visible(name: str) -> str:
    """``name`` in NFKC without its invisible characters."""
    return "".join(c for c in unicodedata.normalize("NFKC", name) if not is_invisible(c))


def has_letter(name: str) -> bool:
    """Whether ``name`` shows at least one letter once invisible characters are gone."""
    return any(unicodedata.category(c).startswith("L") for c in visible(name))


def _script(char: str) -> str:
    alias: Any = _scripts.alias(char)
    return str(alias)


def _latin_twin(char: str) -> str | None:
    """The ASCII letter ``char`` (a letter of another script) looks like, if any."""
    twins = sorted(
        h["c"]
        for h in _LOOKALIKES.get(char, ())
        if len(h["c"]) == 1 and h["c"].isascii() and h["c"].isalpha()
    )
    if not twins:
        return None
    # UTS #39 counts capital I and small l as one glyph; for a capital letter
    # (Cyrillic U+0406, Greek capital iota) the capital I is meant.
    twin = twins[0]
    return "I" if twin == "l" and char.isupper() else twin


@functools.lru_cache(maxsize=4096)
def _fold(char: str) -> str:
    """The key's form of one case-folded, decomposed character."""
    if not unicodedata.category(char).startswith("L") or _script(char) in ("LATIN", "COMMON"):
        return char
    twin = _latin_twin(char)
    if twin is None:
        capital = char.upper()
        twin = _latin_twin(capital) if len(capital) == 1 else None
    return char if twin is None else twin.casefold()


def identity_key(name: str) -> str:
    """The key two names share when a person would read them as the same place."""
    # Place names are short and the same ones are keyed again and again (every
    # submission compares with the call's others); a long input is not kept.
    return _identity_key(name) if len(name) <= 256 else _identity_key.__wrapped__(name)


@functools.lru_cache(maxsize=65536)
def _identity_key(name: str) -> str:
    text = visible(name)
    text = visible(text.casefold())
    decomposed = unicodedata.normalize("NFD", text)
    folded = unicodedata.normalize("NFC", "".join(_fold(c) for c in decomposed))
    return " ".join(folded.split())
