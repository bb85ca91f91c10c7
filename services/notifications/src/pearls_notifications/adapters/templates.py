"""Jinja2 templates per language: ``templates/<lang>/<name>.{subject,txt,html}``.

HTML is autoescaped, plain text and subject are not (they are no markup; the
subject is encoded as a header by ``mime``). A language without the template
falls back to English. Templates ship with the package and are never supplied
by users.

Every value a template prints passes :func:`neutral` first: a value's control
characters never reach the reader. A line break in a value (a contact's name
that carries ``"\\r\\nBcc: …"``, say) would otherwise start a line of the
sender's choosing in the plain-text body; it becomes a space, as does every
other control character (ESC, backspace, C1 …). The templates' own line breaks
stay. Text rendered by these templates already (a digest's items) is marked
``|safe`` and printed as it is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from jinja2 import (
    Environment,
    FileSystemLoader,
    StrictUndefined,
    TemplateNotFound,
    select_autoescape,
)
from markupsafe import Markup

from pearls_shared.events.common import FALLBACK_LANGUAGE

TEMPLATE_DIR = Path(__file__).resolve().parents[1] / "templates"
PARTS = ("subject", "txt", "html")


@dataclass(frozen=True, slots=True)
class Rendered:
    language: str  # the language actually used (after fallback)
    subject: str
    text: str
    html: str


def shipped_languages(root: Path = TEMPLATE_DIR) -> tuple[str, ...]:
    return tuple(
        sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("_"))
    )


MINUTE = timedelta(minutes=1)
_CONTROLS = re.compile(r"\r\n|[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def neutral(value: Any) -> Any:
    """A printed value with every control character, line breaks included, as a space."""
    if isinstance(value, Markup) or not isinstance(value, str):
        return value  # rendered by a template already, or no text (numbers, dates …)
    return _CONTROLS.sub(" ", value)


def _when(value: Any) -> str:
    """ISO date/time from an event as 'YYYY-MM-DD HH:MM UTC', or with the offset it was
    given in ('… 14:00 UTC+02:00': a session's local time stays local), or the date alone."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return str(value)
    if isinstance(value, datetime):
        offset = value.utcoffset()
        if not offset:
            return value.strftime("%Y-%m-%d %H:%M UTC")
        sign, minutes = ("+" if offset.total_seconds() > 0 else "-"), abs(offset) // MINUTE
        return value.strftime("%Y-%m-%d %H:%M UTC") + f"{sign}{minutes // 60:02}:{minutes % 60:02}"
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _day(value: Any) -> str:
    return _when(value)[:10]


class Templates:
    def __init__(self, root: Path = TEMPLATE_DIR) -> None:
        self.root = root
        self._env = Environment(
            loader=FileSystemLoader(str(root)),
            autoescape=select_autoescape(enabled_extensions=("html",), default=False),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
            finalize=neutral,
        )
        self._env.filters["when"] = _when
        self._env.filters["day"] = _day
        self.languages = shipped_languages(root)

    @property
    def env(self) -> Environment:
        return self._env

    def language_for(self, language: str, template: str) -> str:
        """The recipient's language when the template exists in it, else English."""
        if (self.root / language / f"{template}.subject").is_file():
            return language
        return str(FALLBACK_LANGUAGE)

    def render(
        self, template: str, language: str, context: dict[str, Any], *, bare: bool = False
    ) -> Rendered:
        """Subject, text and HTML; ``bare`` leaves out greeting and footer (digest items)."""
        lang = self.language_for(language, template)

        def localized(text: Any) -> Any:
            # LocalizedText: the recipient's language, else English.
            if isinstance(text, dict):
                return text.get(lang) or text.get(FALLBACK_LANGUAGE) or next(iter(text.values()))
            return text

        ctx = {**context, "lang": lang, "localized": localized, "bare": bare}
        try:
            parts = [
                self._env.get_template(f"{lang}/{template}.{part}").render(ctx) for part in PARTS
            ]
        except TemplateNotFound as exc:
            raise LookupError(f"template {template!r} is missing in {lang!r}: {exc}") from exc
        subject = " ".join(parts[0].split())  # one line, whatever the template holds
        return Rendered(language=lang, subject=subject, text=parts[1], html=parts[2])
