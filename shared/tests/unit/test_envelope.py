"""The CloudEvents envelope: binary content mode headers and faults named by attribute."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from pearls_shared.envelope import Envelope, EnvelopeError, decode, format_time
from pearls_shared.events.samples import sample
from pearls_shared.outbox import envelope_for


def test_headers_follow_the_kafka_binary_binding() -> None:
    event = sample("pearls.application.submitted")
    envelope = envelope_for(event, correlation_id="req-1", causation_id="evt-0")
    headers = dict(envelope.headers())
    assert headers["ce_specversion"] == b"1.0"
    assert headers["ce_type"] == b"pearls.application.submitted"
    assert headers["ce_source"] == b"/pearls/applications"
    assert headers["ce_subject"] == event.key().encode()
    assert headers["ce_correlationid"] == b"req-1"
    assert headers["ce_causationid"] == b"evt-0"
    assert headers["ce_dataschema"] == event.dataschema().encode()
    assert headers["content-type"] == b"application/json"
    assert headers["ce_time"].endswith(b"Z")


def test_round_trip_keeps_every_attribute() -> None:
    event = sample("pearls.award.granted")
    envelope = envelope_for(event, correlation_id="req-2")
    decoded = decode(envelope.headers(), envelope.value())
    assert decoded == envelope
    assert decoded.causation_id is None


def _valid() -> Envelope:
    return envelope_for(sample("pearls.call.opened"), correlation_id="c")


@pytest.mark.parametrize("missing", ["ce_id", "ce_type", "ce_source", "ce_specversion"])
def test_missing_required_attribute_is_named(missing: str) -> None:
    envelope = _valid()
    headers = [(k, v) for k, v in envelope.headers() if k != missing]
    with pytest.raises(EnvelopeError, match=missing):
        decode(headers, envelope.value())


@pytest.mark.parametrize(
    ("header", "value", "fault"),
    [
        ("ce_specversion", b"0.3", "ce_specversion"),
        ("ce_time", b"yesterday", "ce_time"),
        ("ce_time", b"2026-01-01T10:00:00", "ce_time"),
        ("content-type", b"text/plain", "content-type"),
    ],
)
def test_bad_attribute_is_named(header: str, value: bytes, fault: str) -> None:
    envelope = _valid()
    headers = [(k, value if k == header else v) for k, v in envelope.headers()]
    with pytest.raises(EnvelopeError, match=fault):
        decode(headers, envelope.value())


@pytest.mark.parametrize(
    "value",
    [
        b"not json",
        b"[1, 2]",
        b"",
        b'{"a": 1} trailing',
        b'{"name": "\xff"}',  # not UTF-8
        b'{"name": "\\ud800"}',  # a lone surrogate: no text column could store it
    ],
)
def test_data_must_be_a_json_object(value: bytes) -> None:
    with pytest.raises(EnvelopeError, match=r"^data: "):
        decode(_valid().headers(), value)


@pytest.mark.parametrize(
    "value",
    [
        b'{"big": 123456789012345678901234567890, "small": -1, "x": 1.5e3}',
        b'{"twice": 1, "twice": 2}',
        b'{"text": "Gda\\u0144sk \xc5\x81\xc3\xb3d\xc5\xba", "nested": {"list": [null, true]}}',
    ],
)
def test_data_reads_as_the_standard_json_module_reads_it(value: bytes) -> None:
    assert decode(_valid().headers(), value).data == json.loads(value)


def test_headers_other_than_the_envelopes_are_not_its_business() -> None:
    """A trace context or a producer's own header is not decoded, whatever its bytes."""
    envelope = _valid()
    headers = [
        ("traceparent", b"\xff\xfe"),
        *envelope.headers(),
        ("x-producer-checksum", b"\x00\x9f\xff"),
    ]
    assert decode(headers, envelope.value()) == envelope


def test_time_is_written_in_utc() -> None:
    cet = timezone(timedelta(hours=1))
    assert format_time(datetime(2026, 9, 1, 13, 0, tzinfo=cet)) == "2026-09-01T12:00:00Z"
    with pytest.raises(EnvelopeError, match="time"):
        format_time(datetime(2026, 9, 1, 12, 0))  # the naive case is the point
    assert format_time(datetime(2026, 9, 1, 12, 0, tzinfo=UTC)).endswith("Z")
