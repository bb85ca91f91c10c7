"""One line or free text: which control characters each accepts (issue 12)."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from pearls_shared.lines import FreeText, SingleLine, printable


class Form(BaseModel):
    name: SingleLine
    text: FreeText


LINE_BREAKS = ["\n", "\r", "\r\n", "\u2028", "\u2029", "\x85", "\x0b", "\x0c"]
OTHER_CONTROLS = ["\x1b", "\x07", "\x08", "\x7f", "\x9b", "\x01", "\x1f"]


@pytest.mark.parametrize("char", [*LINE_BREAKS, "\t", *OTHER_CONTROLS])
def test_a_single_line_refuses_every_control_character_naming_it(char: str) -> None:
    with pytest.raises(ValidationError) as refused:
        Form(name=f"Inese{char}Bērziņa", text="ok")
    [error] = refused.value.errors()
    assert error["loc"] == ("name",)
    assert "single line" in error["msg"] and f"U+{ord(char[0]):04X}" in error["msg"]


@pytest.mark.parametrize("char", ["\n", "\r", "\r\n", "\t", "\u2028", "\u2029"])
def test_free_text_keeps_line_breaks_and_tabs(char: str) -> None:
    assert Form(name="Inese", text=f"one{char}two").text == f"one{char}two"


@pytest.mark.parametrize("char", [*OTHER_CONTROLS, "\x85", "\x0b", "\x0c"])
def test_free_text_refuses_other_control_characters(char: str) -> None:
    with pytest.raises(ValidationError) as refused:
        Form(name="Inese", text=f"one{char}two")
    [error] = refused.value.errors()
    assert error["loc"] == ("text",) and "control characters" in error["msg"]


def test_ordinary_names_in_any_script_pass() -> None:
    for name in ["Kuldīga", "Gdańsk", "Łódź", "Пярну", "Jõhvi", "O'Brien-Smith", "李 明"]:
        assert Form(name=f"  {name} ", text="x").name == name


def test_printable_escapes_what_a_terminal_would_obey_and_keeps_the_rest() -> None:
    text = "Kuldīga, Gdańsk; Viljandi (EE) 🌊 «Perlen»"
    assert printable(text) == text
    assert printable("a\tb\x1b[31m") == "a\\x09b\\x1b[31m"
    assert printable("\u200b\u2028") == "\\u200b\\u2028"
    assert printable(42) == "42"


@pytest.mark.parametrize("value", ["a\x00b", "a\ud800b"])
def test_what_cannot_be_stored_is_refused_in_both(value: str) -> None:
    with pytest.raises(ValidationError) as refused:
        Form(name=value, text=value)
    assert {e["loc"] for e in refused.value.errors()} == {("name",), ("text",)}
