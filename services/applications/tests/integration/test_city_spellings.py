"""One application per city, whatever the spelling: a property test over the real API.

Two spellings a person reads as the same city (invisible and format characters
anywhere, another case, Cyrillic or Greek look-alike letters, NFC or NFD) are
one city: the second application to the same call is refused with 409. A name
that shows no letter is refused with 422 naming ``body.city_name``.
"""

from __future__ import annotations

import asyncio
import unicodedata
from collections.abc import Coroutine
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.integration

INVISIBLE = "\u200b\u200c\u200d\u00ad\u200e\u200f\u202a\u202e\u2066\u2069\u2060\ufeff\u034f"
LOOKALIKES = {
    "a": "\u0430\u03b1",
    "c": "\u0441",
    "e": "\u0435",
    "i": "\u0456\u03b9",
    "o": "\u043e\u03bf",
    "p": "\u0440\u03c1",
    "s": "\u0455",
    "x": "\u0445",
    "y": "\u0443",
    "A": "\u0410\u0391",
    "B": "\u0412\u0392",
    "C": "\u0421",
    "E": "\u0415\u0395",
    "H": "\u041d\u0397",
    "I": "\u0406\u0399",
    "K": "\u041a\u039a",
    "M": "\u041c\u039c",
    "O": "\u041e\u039f",
    "P": "\u0420\u03a1",
    "S": "\u0405",
    "T": "\u0422\u03a4",
    "X": "\u0425\u03a7",
}
CITIES = ["Kuldīga", "Cēsis", "Tartu", "Kaunas", "Sopot", "Pärnu", "Mikkeli", "Åbo", "Haapsalu"]


@st.composite
def spelling(draw: st.DrawFn, name: str) -> str:
    """``name`` as a person would read it, spelled differently."""
    out: list[str] = []
    for char in unicodedata.normalize("NFD", name):
        char = draw(st.sampled_from([char, char.upper(), char.lower()]))
        if char in LOOKALIKES and draw(st.booleans()):
            char = draw(st.sampled_from(LOOKALIKES[char]))
        out.append(char + "".join(draw(st.lists(st.sampled_from(INVISIBLE), max_size=2))))
    form = draw(st.sampled_from(["NFC", "NFD"]))
    return unicodedata.normalize(form, "".join(out))


@st.composite
def two_spellings(draw: st.DrawFn) -> tuple[str, str]:
    name = draw(st.sampled_from(CITIES))
    return draw(spelling(name)), draw(spelling(name))


async def test_the_second_spelling_of_a_city_is_refused_whatever_it_looks_like(service):
    loop = asyncio.get_running_loop()

    def run(coro: Coroutine[Any, Any, None]) -> None:
        asyncio.run_coroutine_threadsafe(coro, loop).result(timeout=120)

    async def one_city_twice(first: str, second: str) -> None:
        call = await service.create_call()
        receipt = await service.submit(call["call_id"], city=first)
        response = await service.client.post(
            f"/calls/{call['call_id']}/applications",
            json=service.application_body(city=second),
        )
        assert response.status_code == 409, (ascii(first), ascii(second), response.text)
        [error] = response.json()["detail"]
        assert error["loc"] == ["body", "city_name"]
        assert error["type"] == "one_application_per_city"
        # The name stays as the applicant wrote it.
        own = await service.client.get(
            f"/applications/{receipt['application_id']}",
            headers={"Authorization": f"Bearer {receipt['applicant_token']}"},
        )
        assert own.status_code == 200, own.text
        assert own.json()["city_name"] == first

    @settings(
        max_examples=15,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(two_spellings())
    def property(pair: tuple[str, str]) -> None:
        run(one_city_twice(*pair))

    # Hypothesis drives the examples from a thread; each runs on the test's loop.
    await asyncio.to_thread(property)


async def test_a_city_name_without_a_visible_letter_is_refused(service):
    call = await service.create_call()
    for name in ["\u200b", "\u200b\u200b", "\u00ad", "\u200e\u200f", "\ufeff", "\u2060\u034f",
                 "\u3164", " \u200b ", "1"]:  # fmt: skip
        response = await service.client.post(
            f"/calls/{call['call_id']}/applications", json=service.application_body(city=name)
        )
        assert response.status_code == 422, (ascii(name), response.text)
        [error] = response.json()["detail"]
        assert error["loc"] == ["body", "city_name"], error
    # A name with a letter among invisible characters is a name (kept as written).
    await service.submit(call["call_id"], city="\u200bSopot")
