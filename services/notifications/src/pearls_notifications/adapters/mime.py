"""Building the e-mail: multipart/alternative (text + HTML) with safe headers.

Headers are built by ``email.message.EmailMessage`` with the SMTP policy, which
RFC 2047-encodes non-ASCII and structured values. That alone is not enough:
Python before 3.11.10 / 3.12.5 (CVE-2024-6923) decodes an encoded word found
in user text ("=?utf-8?q?…=0D=0A…?=") while folding and writes the CR LF it
contains straight into the header block. So, on top of the policy:

1. every piece of user data bound for a header is flattened to one line: CR,
   LF and every other line or paragraph separator (U+2028, U+0085, …) become
   spaces;
2. the encoded-word opener "=?" in user text is broken up ("= ?"), so nothing
   the user wrote is ever decoded as an encoded word;
3. the finished header block is parsed back and must hold exactly the headers
   we set; anything else raises ``HeaderInjection`` and the mail is not sent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

# Every character str.splitlines() treats as a line break, plus other controls.
_LINE_BREAKS = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]+")


class HeaderInjection(ValueError):
    """The serialised message has headers we did not set (a library bug was hit)."""


def one_line(value: str) -> str:
    """User text made safe for a header value: one line, no controls, no encoded words."""
    flat = " ".join(_LINE_BREAKS.sub(" ", value).split())
    return flat.replace("=?", "= ?")


class UnfoldedHeader(str):
    """An ASCII header value written on one line exactly as given.

    The email package folds any header line longer than 78 characters and, when
    a word does not fit, RFC 2047-encodes it; a ``List-Unsubscribe`` URL (with
    its 64-character token) always is such a word, and "=?utf-8?q?=3Chttp…?="
    is no URL to a mail client. A value with a ``name`` is stored and folded by
    itself (``EmailPolicy.header_store_parse`` / ``fold``), under every policy,
    including the one aiosmtplib flattens with.
    """

    name: str

    def __new__(cls, name: str, value: str) -> UnfoldedHeader:
        if not value.isascii() or _LINE_BREAKS.search(value) or len(name) + len(value) > 996:
            raise HeaderInjection(f"{name}: must be one ASCII line of at most 998 characters")
        header = super().__new__(cls, value)
        header.name = name
        return header

    def fold(self, *, policy: policy.Policy) -> str:
        return f"{self.name}: {self}{policy.linesep}"


@dataclass(frozen=True, slots=True)
class Envelope:
    sender_email: str
    sender_name: str
    recipient_email: str
    recipient_name: str
    subject: str
    message_id: str
    date: datetime
    text: str
    html: str
    language: str
    unsubscribe_url: str | None = None  # non-essential mail only
    extra_headers: tuple[tuple[str, str], ...] = ()


def build_message(env: Envelope) -> EmailMessage:
    msg = EmailMessage(policy=policy.SMTP)
    msg["From"] = Address(display_name=one_line(env.sender_name), addr_spec=env.sender_email)
    msg["To"] = Address(display_name=one_line(env.recipient_name), addr_spec=env.recipient_email)
    msg["Subject"] = one_line(env.subject)
    msg["Date"] = format_datetime(env.date)
    msg["Message-ID"] = env.message_id
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies to us, please
    if env.unsubscribe_url:
        # RFC 8058 one-click: the client POSTs "List-Unsubscribe=One-Click" to the URL.
        msg["List-Unsubscribe"] = UnfoldedHeader("List-Unsubscribe", f"<{env.unsubscribe_url}>")
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    for name, value in env.extra_headers:
        msg[name] = one_line(value)
    msg.set_content(env.text, subtype="plain", charset="utf-8")
    msg.add_alternative(env.html, subtype="html", charset="utf-8")
    # After the parts exist: making the message multipart moves Content-* headers down.
    msg["Content-Language"] = env.language
    _check_headers(msg)
    return msg


def _check_headers(msg: EmailMessage) -> None:
    expected = [name.lower() for name in msg.keys()]
    raw = msg.as_bytes()
    head = raw.split(b"\r\n\r\n", 1)[0]
    names = [
        line.split(b":", 1)[0].decode("ascii", "replace").lower()
        for line in head.split(b"\r\n")
        if line[:1] not in (b" ", b"\t")
    ]
    if names != expected:
        raise HeaderInjection(f"header block has {names}, expected {expected}")
