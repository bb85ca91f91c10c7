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
3. ``From`` and ``To`` are written by ``address_header``, never by the
   policy's folder: that one (gh-80222, still in 3.11.7) drops the quotes
   around a display name when it folds a long address line, and a name with
   ":", ",", "<" or "@" turns into address syntax of its own;
4. the finished header block is parsed back and must hold exactly the headers
   we set; anything else raises ``HeaderInjection`` and the mail is not sent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.charset import Charset
from email.headerregistry import Address, AddressHeader, HeaderRegistry
from email.message import EmailMessage
from email.utils import format_datetime, quote

# Every character str.splitlines() treats as a line break, plus other controls.
_LINE_BREAKS = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]+")


class HeaderInjection(ValueError):
    """The serialised message has headers we did not set (a library bug was hit)."""


def one_line(value: str) -> str:
    """User text made safe for a header value: one line, no controls, no encoded words."""
    flat = " ".join(_LINE_BREAKS.sub(" ", value).split())
    return flat.replace("=?", "= ?")


class PreparedHeader(str):
    """An ASCII header written exactly as the given lines, never refolded.

    The email package folds any header line longer than 78 characters and, when
    a word does not fit, RFC 2047-encodes it; a ``List-Unsubscribe`` URL (with
    its 64-character token) always is such a word, and "=?utf-8?q?=3Chttp…?="
    is no URL to a mail client. Its refolding of address headers is broken too
    (see ``address_header``). A value with a ``name`` is stored and folded by
    itself (``EmailPolicy.header_store_parse`` / ``fold``), under every policy,
    including the one aiosmtplib flattens with. The string itself is the value
    unfolded: the lines joined by one space.
    """

    name: str
    lines: tuple[str, ...]

    def __new__(cls, name: str, *lines: str) -> PreparedHeader:
        value = " ".join(lines)
        first, *more = lines or ("",)
        fits = len(f"{name}: {first}") <= 998 and all(len(line) <= 997 for line in more)
        if not (first and all(more) and value.isascii() and fits) or _LINE_BREAKS.search(value):
            raise HeaderInjection(f"{name}: must be ASCII lines of at most 998 characters")
        header = super().__new__(cls, value)
        header.name = name
        header.lines = lines
        return header

    def fold(self, *, policy: policy.Policy) -> str:
        return f"{self.name}: {(policy.linesep + ' ').join(self.lines)}{policy.linesep}"


# A word of RFC 5322 atext without "=" and "?": it can never be (part of) an encoded word.
_PLAIN_WORD = re.compile(r"[A-Za-z0-9!#$%&'*+/^_`{|}~-]+")
_UTF8 = Charset("utf-8")  # RFC 2047 "Q" or "B", whichever is shorter
_ENCODED_WORD_MAX = 75  # RFC 2047 section 2
_FOLD_AT = 78  # RFC 5322 section 2.1.1: lines SHOULD stay within 78 characters


def address_header(field: str, display_name: str, addr_spec: str) -> PreparedHeader:
    """``field: display name <addr_spec>``, which reads back as exactly that one mailbox.

    The name goes out word by word in the forms all mail clients read alike:
    plain words as they are; a run of other ASCII words as one RFC 5322 quoted
    string (``email.utils.quote`` escapes '"' and "\\"), in which ",", ":",
    "<", ">" and "@" are just text, and which, unlike an encoded word, has no
    length limit; a run with non-ASCII as RFC 2047 encoded words, the one form
    clients take non-ASCII in. Only a run too long for one encoded word gets
    several; RFC 2047 drops the space between them, so each carries its own
    trailing space. "=?" was broken up, so no client (not even one decoding
    inside quotes) reads user text as an encoded word. Folds go between words.

    The result is parsed back. A name that cannot be written so (no Unicode, a
    word longer than an encoded word or a line) or does not read back is
    dropped: the bare address goes out and the mail still reaches its reader.
    An address that does not read back raises ``HeaderInjection``.
    """
    mailbox = _ascii_mailbox(addr_spec)
    name = one_line(display_name)
    words = _phrase(name) if name else None
    if words is not None:
        lines = [words[0]]
        width = len(field) + 2 + len(words[0])
        for word in [*words[1:], f"<{mailbox}>"]:
            if width + 1 + len(word) <= _FOLD_AT:
                lines[-1] += f" {word}"
                width += 1 + len(word)
            else:
                lines.append(word)
                width = 1 + len(word)
        try:
            header = PreparedHeader(field, *lines)
        except HeaderInjection:  # a word too long for a line
            pass
        else:
            if _reads_back(header, name, mailbox):
                return header
    header = PreparedHeader(field, mailbox)
    if not _reads_back(header, "", mailbox):
        raise HeaderInjection(f"{field}: {mailbox!r} does not read back as one address")
    return header


def _phrase(name: str) -> list[str] | None:
    """The name (single spaces) as RFC 5322 phrase words, or None if it cannot be one."""
    words: list[str] = []
    run: list[str] = []
    for word in [*name.split(" "), ""]:  # "" ends the last run
        if word and not _PLAIN_WORD.fullmatch(word):
            run.append(word)
            continue
        if run:
            text = " ".join(run)
            encoded = [f'"{quote(text)}"'] if text.isascii() else _encoded_words(run)
            if encoded is None:
                return None
            words += encoded
            run = []
        if word:
            words.append(word)
    return words


def _encoded_words(run: list[str]) -> list[str] | None:
    """The words as few RFC 2047 encoded words as fit, each but the last ending in a space."""
    pieces = [f"{word} " for word in run[:-1]] + run[-1:]
    try:
        texts = [pieces[0]]
        for piece in pieces[1:]:
            if len(_UTF8.header_encode(texts[-1] + piece)) <= _ENCODED_WORD_MAX:
                texts[-1] += piece
            else:
                texts.append(piece)
        encoded = [_UTF8.header_encode(text) for text in texts]
    except UnicodeError:  # a lone surrogate, say
        return None
    return encoded if all(len(word) <= _ENCODED_WORD_MAX for word in encoded) else None


def _ascii_mailbox(addr_spec: str) -> str:
    """The address as written in a header: validated, IDN domain in its ASCII form."""
    address = Address(addr_spec=addr_spec)  # raises on anything but one addr-spec
    domain = address.domain if address.domain.isascii() else address.domain.encode("idna").decode()
    return Address(username=address.username, domain=domain).addr_spec


def _reads_back(header: PreparedHeader, display_name: str, addr_spec: str) -> bool:
    """One mailbox, exactly this address and name, as Python's address parser reads it.

    Spaces are compared collapsed: that parser keeps the space between two
    encoded words (gh-128110), which RFC 2047 section 6.2, and so every mail
    client, drops.
    """
    try:
        parsed = HeaderRegistry()(header.name, str(header))
    except (ValueError, IndexError):  # the parser's own refusals and crashes
        return False
    if not isinstance(parsed, AddressHeader) or parsed.defects:
        return False
    addresses = parsed.addresses
    return (
        len(addresses) == 1
        and addresses[0].addr_spec == addr_spec
        and " ".join(addresses[0].display_name.split()) == display_name
    )


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
    msg["From"] = address_header("From", env.sender_name, env.sender_email)
    msg["To"] = address_header("To", env.recipient_name, env.recipient_email)
    msg["Subject"] = one_line(env.subject)
    msg["Date"] = format_datetime(env.date)
    # One line, never folded, whatever the length of the configured domain: a folded id
    # reads back with the fold's space in front, and de-duplication compares strings.
    msg["Message-ID"] = PreparedHeader("Message-ID", env.message_id)
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies to us, please
    if env.unsubscribe_url:
        # RFC 8058 one-click: the client POSTs "List-Unsubscribe=One-Click" to the URL.
        msg["List-Unsubscribe"] = PreparedHeader("List-Unsubscribe", f"<{env.unsubscribe_url}>")
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
