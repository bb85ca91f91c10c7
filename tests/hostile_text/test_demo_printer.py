"""What ``make run`` prints cannot drive the terminal (issue 12).

The demo shows users' text (city names, contact names, titles) from the HTTP
answers and from the events it tails; an ANSI escape sequence in such a value
reached the terminal raw. Every line goes through one printer that shows
non-printable characters as escapes.
"""

from __future__ import annotations

import pytest

from pearls_demo.cli import _printer
from pearls_demo.watch import describe

CITY = "Kuld\x1b[2J\x1b[31mīga\x1b[0m\r\nBcc: x\u2028\x07\x9b"


def test_an_ansi_escape_in_a_city_name_comes_out_escaped(
    capsys: pytest.CaptureFixture[str],
) -> None:
    say = _printer()
    say(f"> {CITY} (LV) applied")
    out = capsys.readouterr().out
    assert (
        out == "> Kuld\\x1b[2J\\x1b[31mīga\\x1b[0m\\x0d\\x0aBcc: x\\u2028\\x07\\x9b (LV) applied\n"
    )


def test_an_event_line_with_hostile_values_comes_out_escaped(
    capsys: pytest.CaptureFixture[str],
) -> None:
    line = describe(
        "pearls.application.submitted",
        "subject",
        {"city_name": CITY, "country": "LV", "title": {"en": "\x1b]0;owned\x07"}},
    )
    _printer()(line)
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and out.endswith("\n")
    assert not any(ch != "\n" and not ch.isprintable() for ch in out), out
    assert "Kuld\\x1b[2J" in out
