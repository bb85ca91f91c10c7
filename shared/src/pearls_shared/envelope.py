"""CloudEvents 1.0 envelope in Kafka binary content mode.

The event's attributes travel as ``ce_*`` headers and its data as JSON in the
record value (CloudEvents Kafka protocol binding, section 3.2). Two extension
attributes carry the request chain: ``correlationid`` (the first HTTP request
that started it all) and ``causationid`` (the event that directly caused this
one). Extension names must be lower-case alphanumerics per the spec.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic_core import from_json

SPEC_VERSION = "1.0"
CONTENT_TYPE = "application/json"

_REQUIRED = ("specversion", "id", "source", "type")


class EnvelopeError(ValueError):
    """A record is not a valid Pearls CloudEvent; the message says which attribute."""


@dataclass(frozen=True, slots=True)
class Envelope:
    """One CloudEvent: attributes plus the JSON-decoded data."""

    id: str
    type: str
    source: str
    subject: str
    time: datetime
    data: Mapping[str, Any]
    correlation_id: str
    causation_id: str | None = None
    dataschema: str | None = None
    extra: Mapping[str, str] = field(default_factory=dict)

    def headers(self) -> list[tuple[str, bytes]]:
        """Kafka headers for binary content mode."""
        attrs: dict[str, str] = {
            "specversion": SPEC_VERSION,
            "id": self.id,
            "source": self.source,
            "type": self.type,
            "subject": self.subject,
            "time": format_time(self.time),
            "correlationid": self.correlation_id,
        }
        if self.causation_id:
            attrs["causationid"] = self.causation_id
        if self.dataschema:
            attrs["dataschema"] = self.dataschema
        attrs.update(self.extra)
        headers = [("ce_" + name, value.encode()) for name, value in attrs.items()]
        headers.append(("content-type", CONTENT_TYPE.encode()))
        return headers

    def value(self) -> bytes:
        return json.dumps(self.data, separators=(",", ":"), ensure_ascii=False).encode()


def new_event_id() -> str:
    return str(uuid.uuid4())


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC with a ``Z``, as CloudEvents consumers expect."""
    if moment.tzinfo is None:
        raise EnvelopeError("time: must be timezone-aware")
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def decode(headers: Iterable[tuple[str, bytes | None]], value: bytes | None) -> Envelope:
    """Parse a Kafka record into an Envelope, or raise EnvelopeError naming the fault."""
    attrs: dict[str, str] = {}
    content_type: str | None = None
    for name, raw in headers:
        # Only our own headers are decoded: any other header (a trace context, a
        # producer's own) is not this envelope's business, whatever its bytes.
        lname = name.lower()
        if lname.startswith("ce_"):
            attrs[lname[3:]] = (raw or b"").decode("utf-8", errors="strict")
        elif lname == "content-type":
            content_type = (raw or b"").decode("utf-8", errors="strict")
    for name in _REQUIRED:
        if not attrs.get(name):
            raise EnvelopeError(f"ce_{name}: header missing")
    if attrs["specversion"] != SPEC_VERSION:
        raise EnvelopeError(f"ce_specversion: unsupported version {attrs['specversion']!r}")
    if content_type is not None and not content_type.startswith(CONTENT_TYPE):
        raise EnvelopeError(f"content-type: expected {CONTENT_TYPE}, got {content_type!r}")
    try:
        time = datetime.fromisoformat(attrs.get("time", "").replace("Z", "+00:00"))
    except ValueError as exc:
        raise EnvelopeError(f"ce_time: not RFC 3339 ({exc})") from exc
    if time.tzinfo is None:
        raise EnvelopeError("ce_time: must carry a UTC offset")
    try:
        # pydantic's Rust JSON parser: the same documents as json.loads (NaN, big
        # integers, duplicate keys: the last wins), about twice as fast; lone
        # surrogates and invalid UTF-8 are refused here rather than later.
        data = from_json(value or b"")
    except ValueError as exc:
        raise EnvelopeError(f"data: not JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise EnvelopeError("data: must be a JSON object")
    known = {*_REQUIRED, "subject", "time", "correlationid", "causationid", "dataschema"}
    return Envelope(
        id=attrs["id"],
        type=attrs["type"],
        source=attrs["source"],
        subject=attrs.get("subject", ""),
        time=time,
        data=data,
        correlation_id=attrs.get("correlationid") or attrs["id"],
        causation_id=attrs.get("causationid"),
        dataschema=attrs.get("dataschema"),
        extra={k: v for k, v in attrs.items() if k not in known},
    )
