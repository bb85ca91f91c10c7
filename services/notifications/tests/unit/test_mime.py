"""MIME: valid multipart/alternative, and no header injection from user data."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from email import policy
from email.header import decode_header, make_header
from email.message import EmailMessage
from email.parser import BytesParser

import pytest
from aiosmtplib.email import flatten_message
from hypothesis import given, settings
from hypothesis import strategies as st

from pearls_notifications.adapters.mime import Envelope, build_message, one_line
from pearls_notifications.adapters.templates import Templates
from pearls_notifications.domain.identity import message_id
from pearls_shared.events.samples import sample

PAYLOADS = [
    "Kuldīga\r\nBcc: victim@evil.example",
    "Kuldīga\nBcc: victim@evil.example",
    "Kuldīga\rBcc: victim@evil.example",
    "Kuldīga\r\n\r\n<html>body takeover</html>",
    "=?utf-8?q?Kuld=C4=ABga=0D=0ABcc:_victim@evil.example?=",
    "=?utf-8?b?S3VsZGlnYQ0KQmNjOiB2aWN0aW1AZXZpbC5leGFtcGxl?=",
    "Kuldīga%0d%0aBcc: victim@evil.example",
    "Kuldīga\u2028Bcc: victim@evil.example",
    "Kuldīga\u2029Bcc: victim@evil.example",
    "Kuldīga\x85Bcc: victim@evil.example",
    "Kuldīga\x0bBcc:\x0cvictim@evil.example",
    '"Mayor" <mayor@evil.example>, Bcc: victim@evil.example',
]

EXPECTED_HEADERS = [
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "Auto-Submitted",
    "MIME-Version",
    "Content-Type",
    "Content-Language",
]


def envelope(name: str, subject: str, unsubscribe: str | None = None) -> Envelope:
    return Envelope(
        sender_email="pearls@pearls.example",
        sender_name="BSR Cultural Pearls",
        recipient_email="inese@kuldiga.example",
        recipient_name=name,
        subject=subject,
        message_id=message_id(
            "ev", "inese@kuldiga.example", "application_received", "pearls.example"
        ),
        date=datetime(2026, 1, 1, tzinfo=UTC),
        text="Hello\n",
        html="<p>Hello</p>\n",
        language="en",
        unsubscribe_url=unsubscribe,
    )


def parse(msg: EmailMessage) -> EmailMessage:
    parsed: EmailMessage = BytesParser(policy=policy.default).parsebytes(msg.as_bytes())  # type: ignore[assignment]
    return parsed


def test_message_is_multipart_alternative_with_text_and_html() -> None:
    parsed = parse(build_message(envelope("Inese Bērziņa", "Welcome, Kuldīga!")))
    assert parsed.get_content_type() == "multipart/alternative"
    parts = [p.get_content_type() for p in parsed.iter_parts()]
    assert parts == ["text/plain", "text/html"]
    assert parsed.get_body(("plain",)).get_content().rstrip() == "Hello"  # type: ignore[union-attr]
    assert str(parsed["To"]) == "Inese Bērziņa <inese@kuldiga.example>"
    assert str(parsed["Subject"]) == "Welcome, Kuldīga!"
    assert parsed["Message-ID"].startswith("<") and parsed["Message-ID"].endswith(
        "@pearls.example>"
    )
    assert parsed.defects == []


def test_one_click_unsubscribe_headers_per_rfc_8058() -> None:
    parsed = parse(build_message(envelope("A", "S", "https://p.example/unsubscribe?t=1")))
    assert parsed["List-Unsubscribe"] == "<https://p.example/unsubscribe?t=1>"
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_a_real_length_unsubscribe_url_is_sent_as_is_never_as_an_encoded_word() -> None:
    # RFC 2369/8058 want "<URL>"; an RFC 2047 "=?utf-8?q?=3Chttp...?=" is no URL to a client.
    url = (
        "https://notifications.bsr-cultural-pearls.example/unsubscribe?recipient="
        "mentor.anna.kowalska%2Bproject%40gdansk-culture.example&category=progress&token="
        + "0123456789abcdef"
        * 4
    )
    msg = build_message(envelope("A", "S", url))
    for raw in (msg.as_bytes(), flatten_message(msg)):  # ours and what aiosmtplib sends
        head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
        assert f"\r\nList-Unsubscribe: <{url}>\r\n" in head
        assert "=?" not in head
        assert all(len(line) <= 998 for line in head.split("\r\n"))
    assert str(parse(msg)["List-Unsubscribe"]) == f"<{url}>"


@pytest.mark.parametrize("payload", PAYLOADS)
def test_payloads_in_names_and_subjects_never_add_a_header(payload: str) -> None:
    raw = build_message(envelope(payload, f"Welcome, {payload}!")).as_bytes()
    parsed = BytesParser(policy=policy.default).parsebytes(raw)
    assert list(parsed.keys()) == EXPECTED_HEADERS
    assert parsed.get_all("Bcc") is None
    for name in ("To", "Subject", "From"):
        assert "\r" not in str(parsed[name]) and "\n" not in str(parsed[name])
    [to] = parsed["To"].addresses
    assert to.addr_spec == "inese@kuldiga.example"
    # The raw header block has exactly the expected header lines (folded lines start with space).
    head = raw.split(b"\r\n\r\n", 1)[0]
    starts = [line.split(b":", 1)[0] for line in head.split(b"\r\n") if line[:1] not in b" \t"]
    assert [s.decode() for s in starts] == EXPECTED_HEADERS


@pytest.mark.parametrize("payload", PAYLOADS)
def test_payloads_in_event_data_survive_the_whole_rendering_path(payload: str) -> None:
    event = sample("pearls.application.accepted")
    context = {
        "event": {**event.to_data(), "city_name": payload},
        "recipient": {"name": payload, "email": "inese@kuldiga.example"},
        "unsubscribe_url": None,
    }
    rendered = Templates().render("application_accepted", "de", context)
    raw = build_message(envelope(payload, rendered.subject)).as_bytes()
    parsed = BytesParser(policy=policy.default).parsebytes(raw)
    assert list(parsed.keys()) == EXPECTED_HEADERS


def test_the_last_guard_refuses_a_header_block_the_library_broke() -> None:
    # Bypass one_line() on purpose: on Pythons with CVE-2024-6923 the policy alone
    # writes the decoded CR LF into the header block; the guard must catch it.
    from email.headerregistry import Address

    from pearls_notifications.adapters.mime import HeaderInjection, _check_headers

    msg = EmailMessage(policy=policy.SMTP)
    msg["To"] = Address(
        display_name="=?utf-8?b?S3VsZGlnYQ0KQmNjOiB2aWN0aW1AZXZpbC5leGFtcGxl?=",
        addr_spec="a@kuldiga.example",
    )
    msg["Subject"] = "ok"
    try:
        _check_headers(msg)
    except HeaderInjection:
        return  # this Python has the bug, and the guard caught it
    except Exception as exc:  # a fixed Python refuses to write it at all
        assert "newline" in str(exc).lower() or "header" in str(exc).lower()
        return
    # No complaint: then the library itself wrote a safe block (a fixed Python).
    assert BytesParser(policy=policy.default).parsebytes(msg.as_bytes()).get_all("Bcc") is None


_NASTY = st.sampled_from(
    ["\r", "\n", "\r\n", "\u2028", "\u2029", "\x85", "\x0b", "\x0c", "\x00", "=?", "?=",
     "=?utf-8?q?", "=0D=0A", "%0d%0a", "Bcc: x@evil.example", ":", ";", ",", "<", ">", '"',
     "\\", " ", "\t"]
)  # fmt: skip
_TEXT = st.lists(st.one_of(_NASTY, st.text(min_size=1, max_size=5)), max_size=12).map("".join)


@settings(max_examples=300, deadline=None)
@given(name=_TEXT, subject=_TEXT)
def test_no_text_whatsoever_adds_a_header(name: str, subject: str) -> None:
    raw = build_message(envelope(name or "x", subject or "x")).as_bytes()
    parsed = BytesParser(policy=policy.default).parsebytes(raw)
    assert list(parsed.keys()) == EXPECTED_HEADERS
    [to] = parsed["To"].addresses
    assert to.addr_spec == "inese@kuldiga.example"
    # The name reads back as written (spaces collapsed: gh-128110, see below) or, if it
    # cannot be written safely, is left out; never does any of it turn into address syntax.
    assert " ".join(to.display_name.split()) in (one_line(name or "x"), "")
    assert "\n" not in str(parsed["Subject"]) and "\r" not in str(parsed["Subject"])


RECIPIENT = "inese@kuldiga.example"

# Display names that are, or look like, address syntax or encoded words. The first one
# was found by the property test above: the policy's folder dropped the quotes around
# it and the To: header read back as <x@evil.exampleBcc>.
NAMES = [
    "=?utf-8?q?=?utf-8?q?Bcc: x@evil.exampleBcc: x@evil.exampleBcc: x@evil.example",
    "=?utf-8?q?Mayor?=",
    "=?utf-8?b?TWF5b3I=?= <mayor@evil.example>",
    "Mayor ?= of =? Kuldīga",
    "Bērziņa, Inese",
    "Smith, John: Mayor <mayor@evil.example>, victim@evil.example",
    'Inese "the Mayor" Bērziņa',
    '\\"> back\\slash <',
    "Inese\r\nBcc: victim@evil.example",
    "Inese\r\n To: victim@evil.example",
    "Kuldīgas novada pašvaldības Kultūras pārvaldes vadītāja, Inese Bērziņa <x@evil.example>",
    "Kulturamt der Hansestadt Lübeck: Abteilung für internationale Kulturprojekte, z. Hd. "
    + "Frau Dr. Anna-Lena Müller-Lüdenscheidt <anna@evil.example>; Bcc: victim@evil.example",
    "The Mayor of the City of Kuldiga and of all the Towns along the Venta, victim@evil.example",
    "@" + "x" * 90 + ",",
]


def header_value(raw: bytes, name: str) -> str:
    """The header as written, unfolded."""
    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii").replace("\r\n ", " ")
    [value] = [line[len(name) + 2 :] for line in head.split("\r\n") if line.startswith(f"{name}: ")]
    return value


@pytest.mark.parametrize("name", NAMES)
def test_a_display_name_reads_back_as_exactly_that_name_and_the_one_address(name: str) -> None:
    msg = build_message(replace(envelope(name, "S"), sender_name=name))
    for raw in (msg.as_bytes(), flatten_message(msg)):  # ours and what aiosmtplib sends
        parsed = BytesParser(policy=policy.default).parsebytes(raw)
        assert list(parsed.keys()) == EXPECTED_HEADERS
        head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
        assert all(len(line) <= 998 for line in head.split("\r\n"))
        for field, addr_spec in (("To", RECIPIENT), ("From", "pearls@pearls.example")):
            [address] = parsed[field].addresses
            assert address.addr_spec == addr_spec
            if "?= =?" in header_value(raw, field):
                # Two encoded words in a row (a run of non-ASCII words too long for one):
                # Python's parser reads the space between them that RFC 2047 drops.
                assert " ".join(address.display_name.split()) == one_line(name)
            else:
                assert address.display_name == one_line(name)


def test_a_long_non_ascii_name_goes_out_as_rfc_2047_says() -> None:
    # Longer than one encoded word: several, each ending in its own space, as RFC 2047
    # drops the space between encoded words (every mail client does; decode_header too).
    # Python's address parser keeps that space (gh-128110): a double space there.
    name = "Управление культуры города Калининграда, Иванова Ольга Петровна"
    raw = build_message(envelope(name, "S")).as_bytes()
    value = header_value(raw, "To")
    assert "?= =?" in value
    assert str(make_header(decode_header(value))) == f"{name} <{RECIPIENT}>"
    assert all(len(word) <= 75 for word in value.split())
    [to] = BytesParser(policy=policy.default).parsebytes(raw)["To"].addresses
    assert (" ".join(to.display_name.split()), to.addr_spec) == (name, RECIPIENT)


@pytest.mark.parametrize(
    "name",
    ["", " \r\n ", "Inese \ud800 Bērziņa", "ā" * 40, "x" * 1000],
    ids=["empty", "blank", "no-unicode", "word-beyond-an-encoded-word", "beyond-a-line"],
)
def test_a_name_that_cannot_be_written_safely_is_left_out(name: str) -> None:
    raw = build_message(envelope(name, "S")).as_bytes()
    assert f"\r\nTo: {RECIPIENT}\r\n".encode() in raw
    [to] = BytesParser(policy=policy.default).parsebytes(raw)["To"].addresses
    assert (to.display_name, to.addr_spec) == ("", RECIPIENT)
