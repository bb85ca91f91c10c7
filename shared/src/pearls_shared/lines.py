"""Text that reaches people: one line, or free text with line breaks only.

A name, a title or an organisation is shown on one line: in an e-mail's body,
a subject, a terminal. A line break there lets the sender write lines of their
own into a plain-text e-mail (``Bcc: …``), and an escape character drives the
reader's terminal. So:

- :data:`SingleLine` (names, titles, organisations, places) refuses every
  control character, C0 (tab, CR, LF, ESC …), DEL and C1 (NEL …), and the
  Unicode line and paragraph separators, with a 422 naming the field.
- :data:`FreeText` (motivation, comments, notes, descriptions) keeps its line
  breaks (LF, CR, tab, U+2028/2029) and refuses the other control characters
  (ESC, backspace, bell, C1 …).

Both also refuse what cannot be stored: NUL (a control character) and lone
surrogates. This module imports nothing of the project's, so ``inputs`` can use
:func:`single_line` for its own types. :func:`printable` is the counterpart for
output: it shows a text's control characters as escapes, for whatever prints
user text to a terminal.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, StringConstraints

LINE_SEPARATORS = "\u2028\u2029"
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_FREE_TEXT_ALLOWED = frozenset("\n\r\t" + LINE_SEPARATORS)


def _name(char: str) -> str:
    return f"U+{ord(char):04X}"


_SURROGATE = re.compile("[\ud800-\udfff]")


def _storable(value: str) -> None:
    # UTF-8 (and so PostgreSQL) cannot carry a lone surrogate, legal as a JSON escape.
    if _SURROGATE.search(value):
        raise ValueError("must be valid Unicode (no lone surrogates)")


def single_line(value: str) -> str:
    """Refuse line breaks, tabs and every other control character."""
    _storable(value)
    found = _CONTROL.search(value)
    if found:
        raise ValueError(
            "must be a single line without control characters "
            f"(line breaks, tabs, escapes); found {_name(found.group())}"
        )
    return value


def free_text(value: str) -> str:
    """Keep line breaks and tabs; refuse every other control character."""
    _storable(value)
    for found in _CONTROL.finditer(value):
        if found.group() not in _FREE_TEXT_ALLOWED:
            raise ValueError(
                "must not contain control characters other than line breaks and tabs; "
                f"found {_name(found.group())}"
            )
    return value


SingleLine = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    AfterValidator(single_line),
]
"""A name, title or organisation: 1-200 characters on one line."""

FreeText = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=4000),
    AfterValidator(free_text),
]
"""Free text of 1-4000 characters; line breaks allowed, other control characters not."""


def printable(text: object) -> str:
    """``text`` with its non-printable characters shown as escapes (``\\x1b``, ``\\u2028``).

    Printable text, spaces included, stays as it is; a terminal sees no control
    character, line break or invisible format character from a value.
    """
    value = str(text)
    if value.isprintable():
        return value
    return "".join(ch if ch.isprintable() else _escape(ch) for ch in value)


def _escape(char: str) -> str:
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"
