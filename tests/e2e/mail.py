"""The mail captured at the SMTP sink, told apart by template and recipient."""

from __future__ import annotations

import email
import email.policy
import re
from email.message import EmailMessage
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "services" / "notifications" / "src" / "pearls_notifications" / "templates"


def read_mail(maildir: Path) -> list[EmailMessage]:
    """Every e-mail the sink stored (``.eml`` files), oldest first."""
    return [
        email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        for path in sorted(maildir.glob("*.eml"))
    ]


def subject_patterns() -> dict[str, list[re.Pattern[str]]]:
    """Template name -> its subject lines (every language) as patterns."""
    patterns: dict[str, list[re.Pattern[str]]] = {}
    for path in sorted(TEMPLATES.glob("*/*.subject")):
        literal = re.split(r"\{\{.*?\}\}", " ".join(path.read_text(encoding="utf-8").split()))
        patterns.setdefault(path.stem, []).append(re.compile(".+?".join(map(re.escape, literal))))
    return patterns


def subject(mail: EmailMessage) -> str:
    # Long subjects are folded; unfolding may leave doubled or leading blanks.
    return " ".join(str(mail["Subject"]).split())


def template(mail: EmailMessage, patterns: dict[str, list[re.Pattern[str]]]) -> str:
    """Which template an e-mail was written from, told by its subject alone."""
    line = subject(mail)
    found = {name for name, ps in patterns.items() if any(p.fullmatch(line) for p in ps)}
    assert len(found) == 1, f"subject {line!r} fits templates {found or 'none'}"
    return found.pop()


def to(mail: EmailMessage) -> str:
    return str(mail["To"].addresses[0].addr_spec)
