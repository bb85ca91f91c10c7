# ruff: noqa: RUF001 — Cyrillic and Greek look-alikes are what these tests are about.
"""One identity key for every spelling of a place that a person reads as the same.

The variants are generated: invisible and format characters inserted anywhere,
the case changed, Latin letters replaced by their Cyrillic or Greek look-alikes,
NFC against NFD. The look-alikes below are the test's own list of what a reader
cannot tell apart, independent of the confusables data the key uses.
"""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pearls_shared.names import KEY_RULE, has_letter, identity_key

# What a person does not see: zero-width space, non-joiner and joiner, soft hyphen,
# direction marks, bidi embeddings, overrides and isolates, word joiner,
# invisible operators, BOM, combining grapheme joiner, variation selector 16,
# Arabic letter mark, Mongolian vowel separator, a tag character.
INVISIBLE = [
    "\u200b", "\u200c", "\u200d", "\u00ad", "\u200e", "\u200f", "\u202a", "\u202b",
    "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069", "\u2060",
    "\u2062", "\u2063", "\ufeff", "\u034f", "\ufe0f", "\u061c", "\u180e", "\U000e0041",
]  # fmt: skip

# Latin letters and the letters of other scripts that a reader takes for them.
# Greek capital Nu and Upsilon are left out on purpose: their small letters look
# like "v" and "u", and one key cannot be both (see pearls_shared.names).
LOOKALIKES = {
    "a": "\u0430\u03b1",  # Cyrillic a, Greek alpha
    "c": "\u0441",  # Cyrillic es
    "d": "\u0501",  # Cyrillic komi de
    "e": "\u0435",  # Cyrillic ie
    "h": "\u04bb",  # Cyrillic shha
    "i": "\u0456\u03b9",  # Cyrillic byelorussian-ukrainian i, Greek iota
    "j": "\u0458",  # Cyrillic je
    "o": "\u043e\u03bf",  # Cyrillic o, Greek omicron
    "p": "\u0440\u03c1",  # Cyrillic er, Greek rho
    "q": "\u051b",  # Cyrillic qa
    "s": "\u0455",  # Cyrillic dze
    "v": "\u03bd",  # Greek nu
    "w": "\u051d",  # Cyrillic we
    "x": "\u0445",  # Cyrillic ha
    "y": "\u0443\u03b3",  # Cyrillic u, Greek gamma
    "A": "\u0410\u0391",
    "B": "\u0412\u0392",
    "C": "\u0421",
    "E": "\u0415\u0395",
    "H": "\u041d\u0397",
    "I": "\u0406\u0399",
    "J": "\u0408",
    "K": "\u041a\u039a",
    "M": "\u041c\u039c",
    "O": "\u041e\u039f",
    "P": "\u0420\u03a1",
    "S": "\u0405",
    "T": "\u0422\u03a4",
    "X": "\u0425\u03a7",
    "Y": "\u0423",
    "Z": "\u0396",
}

LATIN = "abcdefghijklmnopqrstuvwxyzāčēģīķļņšūžąćęłńóśźżäöüõåæø"
CITIES = [
    "Kuldīga", "Gdańsk", "Tartu", "Kaunas", "Cēsis", "Jēkabpils", "Šiauliai",
    "Võru", "Sopot", "Pärnu", "Örebro", "Mikkeli", "Greifswald", "Sankt Peterburg",
    "Bad Doberan", "Szczecinek", "Haapsalu", "Kėdainiai", "Åbo", "Næstved",
]  # fmt: skip


@st.composite
def place_names(draw: st.DrawFn) -> str:
    """A real city of the region or a made-up name in Latin letters (with diacritics)."""
    made_up = st.lists(
        st.text(alphabet=LATIN, min_size=1, max_size=10), min_size=1, max_size=3
    ).map(lambda words: " ".join(w.capitalize() for w in words))
    return draw(st.sampled_from(CITIES) | made_up)


@st.composite
def read_the_same(draw: st.DrawFn, name: str) -> str:
    """A spelling of ``name`` a person reads as the same name."""
    out: list[str] = []
    for char in unicodedata.normalize("NFD", name):
        case = draw(st.sampled_from(["keep", "upper", "lower"]))
        char = {"keep": char, "upper": char.upper(), "lower": char.lower()}[case]
        if char in LOOKALIKES and draw(st.booleans()):
            char = draw(st.sampled_from(LOOKALIKES[char]))
        out.append(char)
        out.extend(draw(st.lists(st.sampled_from(INVISIBLE), max_size=2)))
    before = "".join(draw(st.lists(st.sampled_from(INVISIBLE), max_size=2)))
    spacing = draw(st.sampled_from(["", " ", "  ", "\u00a0"]))
    form = draw(st.sampled_from(["NFC", "NFD"]))
    return unicodedata.normalize(form, spacing + before + "".join(out) + spacing)


@st.composite
def same_name_pairs(draw: st.DrawFn) -> tuple[str, str]:
    name = draw(place_names())
    return draw(read_the_same(name)), draw(read_the_same(name))


@settings(max_examples=400)
@given(same_name_pairs())
def test_names_a_person_reads_as_the_same_share_one_key(pair):
    first, second = pair
    assert identity_key(first) == identity_key(second), [ascii(first), ascii(second)]


@given(place_names().flatmap(lambda name: st.tuples(st.just(name), read_the_same(name))))
def test_a_variant_has_the_key_of_the_name_as_written(pair):
    name, variant = pair
    assert identity_key(variant) == identity_key(name)
    assert identity_key(name) == " ".join(unicodedata.normalize("NFC", name).casefold().split())


@given(st.text())
def test_the_key_is_its_own_key(text):
    key = identity_key(text)
    assert identity_key(key) == key
    assert key == key.strip() and "  " not in key


@pytest.mark.parametrize("char", INVISIBLE)
def test_no_invisible_character_reaches_the_key(char):
    assert identity_key(f"Kul{char}dīga") == "kuldīga"
    assert identity_key(char) == ""
    assert not has_letter(char * 3)


@pytest.mark.parametrize(
    "name", ["\u200b", "\u00ad\u200e", " \ufeff ", "\u3164", "12", "-", "\u200b1\u200b", ""]
)
def test_a_name_without_a_visible_letter_has_no_letter(name):
    assert not has_letter(name)


@pytest.mark.parametrize("name", ["Kuldīga", "\u200bŁódź", "Москва", "Αθήνα", "Ísafjörður"])
def test_a_name_with_a_letter_has_one(name):
    assert has_letter(name)


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("Gdańsk", "Gdansk"),
        ("Kuldīga", "Kuldiga"),
        ("Łódź", "Lodz"),
        ("Diyarbakır", "Diyarbakir"),
        ("Pärnu", "Parnu"),
        ("Rome", "Rorne"),  # look-alikes within Latin stay apart
        ("Москва", "Минск"),
        ("Київ", "Кийв"),
    ],
)
def test_different_names_keep_different_keys(one, other):
    assert identity_key(one) != identity_key(other)


# Whole words in Cyrillic and Greek: any case, one key, not empty, stable.
CYRILLIC = "абвгдеёжзийклмнопрстуфхцчшщъыьэюяіїєґў"
GREEK = "αβγδεζηθικλμνξοπρστυφχψω"


@given(st.text(alphabet=CYRILLIC + GREEK + " ", min_size=1, max_size=30))
def test_a_name_in_another_script_has_one_key_whatever_its_case(name):
    key = identity_key(name)
    assert identity_key(name.upper()) == key
    assert identity_key(name.title()) == key
    assert identity_key(name) == key  # the same every time
    assert bool(key) == bool(name.strip())


def test_a_russian_spelling_keeps_a_key_of_its_own():
    assert identity_key("Москва") == identity_key("МОСКВА") == identity_key("москва")
    assert identity_key("Калининград") != identity_key("Kaliningrad")
    # Entirely look-alike letters read as the Latin name: one key.
    assert identity_key("Сосо") == identity_key("Coco")


# The keys of the rule named "names-1" (KEY_RULE): stored keys say which rule made them,
# so a change here that is not a bump of KEY_RULE would let old keys pass as current.
KEYS_OF_THE_RULE = {
    "Kuldīga": "kuldīga",
    " KULDĪGA ": "kuldīga",
    "Kuld\u200bīga": "kuldīga",
    "\u041auld\u0456ga": "kuldiga",
    "Gdańsk": "gdańsk",
    "Gdansk": "gdansk",
    "Ｔａｒｔｕ": "tartu",
    "Straße": "strasse",
    "Łódź": "łódź",
    "Ísafjörður": "ísafjörður",
    "Vilnius\u00ad": "vilnius",
    "\u03bd\u03c5": "vu",
    "\u039d\u03a5": "vu",
    "ǅ": "dž",
    "İstanbul": "i\u0307stanbul",
    "ﬁnnland": "finnland",
    "Saint\u00a0 Petersburg": "saint petersburg",
    "a\u0301b": "áb",
    "\U000e0041x": "x",
    "Ⅻ": "xii",
}


def test_the_keys_are_those_of_the_rule_named_key_rule():
    assert KEY_RULE.startswith("names-1/"), "update KEYS_OF_THE_RULE with the new rule"
    assert {name: identity_key(name) for name in KEYS_OF_THE_RULE} == KEYS_OF_THE_RULE, (
        "the key rule changed: bump the first part of pearls_shared.names.KEY_RULE"
        " (stored keys of the old rule are then computed again) and update this table"
    )
