"""docs/asyncapi.json is valid for the official AsyncAPI parser, and the parser bites.

The validator is a small node program (deploy/asyncapi/validate.mjs) on the
npm package @asyncapi/parser, pinned by deploy/asyncapi/package-lock.json and
installed by `make setup`. Without node or the package these tests fail and say
how to install them; they never skip.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiokafka.structs import ConsumerRecord

from pearls_shared.asyncapi import DEAD_LETTER_HEADERS, SUBSCRIPTIONS
from pearls_shared.consumer import DLQ_HEADER_PREFIX, DeadLetter, EventConsumer
from pearls_shared.events.registry import EVENT_TYPES
from pearls_shared.settings import KafkaSettings
from pearls_shared.topics import CONTRACT_TOPICS

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
VALIDATOR = ROOT / "deploy" / "asyncapi"
INSTALL = "run `make setup` (it runs `npm ci --prefix deploy/asyncapi`; needs Node.js 18+ and npm)"


@pytest.fixture(scope="module")
def node() -> str:
    found = shutil.which("node")
    if found is None:
        pytest.fail(f"node is not installed: install Node.js 18+ and npm, then {INSTALL}")
    if not (VALIDATOR / "node_modules" / "@asyncapi" / "parser" / "package.json").exists():
        pytest.fail(f"the AsyncAPI parser is not installed in deploy/asyncapi: {INSTALL}")
    return found


def validate(node: str, document: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [node, str(VALIDATOR / "validate.mjs"), str(document)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def broken_copy(tmp_path: Path, change: Callable[[dict[str, Any]], None]) -> Path:
    """docs/asyncapi.json and docs/events copied to tmp_path, the document changed."""
    shutil.copytree(DOCS / "events", tmp_path / "events")
    document = json.loads((DOCS / "asyncapi.json").read_text(encoding="utf-8"))
    change(document)
    path = tmp_path / "asyncapi.json"
    path.write_text(json.dumps(document, indent=2), encoding="utf-8")
    return path


def test_the_published_document_is_valid(node: str) -> None:
    result = validate(node, DOCS / "asyncapi.json")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "error:" not in result.stdout
    assert "valid AsyncAPI 3.0.0" in result.stdout


def _dangling_payload(doc: dict[str, Any]) -> None:
    doc["components"]["messages"]["pearls.call.opened"]["payload"]["schema"] = {
        "$ref": "events/pearls.call.opened.v99.json"
    }


def _invalid_payload(doc: dict[str, Any]) -> None:
    doc["components"]["messages"]["pearls.award.granted"]["payload"] = {"type": "strin"}


def _unknown_action(doc: dict[str, Any]) -> None:
    doc["operations"]["publish.applications"]["action"] = "publish"


def _channel_ref_nowhere(doc: dict[str, Any]) -> None:
    doc["operations"]["receive.mentoring.applications"]["channel"] = {"$ref": "#/channels/nowhere"}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (_dangling_payload, "pearls.call.opened.v99.json"),
        (_invalid_payload, "pearls.award.granted"),
        (_unknown_action, "action"),
        (_channel_ref_nowhere, "nowhere"),
    ],
    ids=["dangling-ref", "invalid-payload", "unknown-action", "operation-channel-missing"],
)
def test_the_validator_fails_a_broken_document(
    node: str, tmp_path: Path, change: Callable[[dict[str, Any]], None], expected: str
) -> None:
    result = validate(node, broken_copy(tmp_path, change))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "error:" in result.stdout and expected in result.stdout
    assert "INVALID" in result.stderr


def test_the_unchanged_copy_passes(node: str, tmp_path: Path) -> None:
    """The broken copies fail for their change, not for being copies."""
    result = validate(node, broken_copy(tmp_path, lambda doc: None))
    assert result.returncode == 0, result.stdout + result.stderr


def _document() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((DOCS / "asyncapi.json").read_text(encoding="utf-8"))
    return loaded


def test_every_topic_and_its_dead_letter_topic_is_a_channel() -> None:
    addresses = {channel["address"] for channel in _document()["channels"].values()}
    assert addresses == {*CONTRACT_TOPICS, *(f"{topic}.dlq" for topic in CONTRACT_TOPICS)}


def test_every_event_type_is_a_message_with_trace_headers_optional() -> None:
    messages = _document()["components"]["messages"]
    assert set(EVENT_TYPES) <= messages.keys()
    for event_type in EVENT_TYPES:
        headers = messages[event_type]["headers"]
        assert {"traceparent", "tracestate"} <= headers["properties"].keys()
        assert not {"traceparent", "tracestate", "ce_causationid"} & set(headers["required"])


async def test_dead_letter_headers_are_those_the_consumer_sets() -> None:
    sent: list[list[tuple[str, bytes]]] = []

    class Producer:
        async def send_and_wait(self, topic: str, **record: Any) -> None:
            sent.append(record["headers"])

    consumer = EventConsumer.__new__(EventConsumer)
    consumer.name = "contract"
    consumer._kafka = KafkaSettings()
    consumer._dlq_producer = Producer()  # type: ignore[assignment]
    record = ConsumerRecord(
        "pearls.applications.v1", 0, 7, 0, 0, b"k", b"{}", None, 2, 2, [("ce_id", b"1")]
    )
    await consumer._dead_letter(record, DeadLetter("invalid_data", "x: wrong", 0))
    names = [name for name, _ in sent[0]]
    assert names[0] == "ce_id"  # the original headers come first, unchanged
    set_by_consumer = {n.removeprefix(DLQ_HEADER_PREFIX) for n in names[1:]}
    assert set_by_consumer == set(DEAD_LETTER_HEADERS)
    headers = _document()["components"]["messages"]["pearls.dead_letter"]["headers"]
    assert set(headers["required"]) == {DLQ_HEADER_PREFIX + name for name in DEAD_LETTER_HEADERS}


def test_every_producer_sends_and_every_consumer_receives() -> None:
    operations = _document()["operations"]
    sends = {op["channel"]["$ref"] for op in operations.values() if op["action"] == "send"}
    assert {f"#/channels/{model.producer}" for model in EVENT_TYPES.values()} <= sends
    for subscription in SUBSCRIPTIONS:
        received = {
            ref["$ref"].rsplit("/", 1)[1]
            for name, op in operations.items()
            if op["action"] == "receive" and name.startswith(f"receive.{subscription.service}.")
            for ref in op["messages"]
        }
        assert received == set(subscription.event_types)


class _AnyHandlers:
    """Stands in for a service's handler object: every attribute is a handler."""

    def __getattr__(self, name: str) -> Callable[..., None]:
        return lambda *args: None


def _real_subscriptions() -> dict[str, tuple[str, set[str], set[str]]]:
    """service -> (default consumer group, topics read, event types handled), from the code."""
    from pearls_awards.config import Settings as AwardsSettings
    from pearls_awards.entrypoints.consumers import subscription as awards
    from pearls_mentoring.config import Settings as MentoringSettings
    from pearls_mentoring.entrypoints.consumers import subscription as mentoring
    from pearls_notifications.config import Settings as NotificationsSettings
    from pearls_notifications.entrypoints.consumers import subscription as notifications

    found = {
        "mentoring": (MentoringSettings, mentoring(_AnyHandlers(), "g")),  # type: ignore[arg-type]
        "awards": (AwardsSettings, awards(_AnyHandlers(), "g")),  # type: ignore[arg-type]
        "notifications": (
            NotificationsSettings,
            notifications(NotificationsSettings.model_construct()),
        ),
    }
    return {
        service: (
            settings.model_fields["consumer_group"].default,
            set(sub.topics),
            set(sub.handlers),
        )
        for service, (settings, sub) in found.items()
    }


def test_declared_subscriptions_are_the_services_real_ones() -> None:
    real = _real_subscriptions()
    assert {s.service for s in SUBSCRIPTIONS} == real.keys()
    for declared in SUBSCRIPTIONS:
        group, topics, handled = real[declared.service]
        assert declared.group_default == group, declared.service
        assert set(declared.event_types) == handled, declared.service
        assert {EVENT_TYPES[t].topic for t in declared.event_types} <= topics, declared.service
