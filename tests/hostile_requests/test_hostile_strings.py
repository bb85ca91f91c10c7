"""Hostile strings in every text field of every service's HTTP API: never a 5xx.

Schemathesis draws requests from each service's published OpenAPI schema; a hook
then puts one hostile string into one text field of the JSON body (the rest stays
as generated, so the hostile value reaches as far as the request can get): line
breaks meant to start a new e-mail header, NUL, a lone surrogate (valid JSON, no
valid UTF-8), right-to-left overrides and zero-width characters, and a field of a
megabyte. Every answer must be below 500 and, when a refusal, small. What such
strings do to e-mails is `tests/hostile_text/test_mail_after_hostile_input.py`.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.generation.meta import TestPhase

from pearls_shared.http import MAX_ERROR_BODY_BYTES
from pearls_shared.settings import KafkaSettings
from tests.apps import APPS, COORDINATOR

pytestmark = pytest.mark.integration

HOSTILE = (
    "Kuldīga\r\nBcc: attacker@example.org",
    "Kuldīga\nSubject: you won",
    "line\rbreak",
    "Kul\x00dīga",
    "\ud800",  # a lone surrogate: JSON may carry it, UTF-8 cannot
    "x\udfff\ud800y",
    "\u202eagīdluK",  # right-to-left override
    "Kul\u200bdī\ufeffga\u2028",
    "=?utf-8?q?=0D=0ABcc=3A_attacker=40example=2Eorg?=",
    "x" * 1_000_000,  # a megabyte, under the request-size bound so it reaches validation
)


def _text_paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(value, str):
        return [path]
    if isinstance(value, dict):
        return [p for key, item in value.items() for p in _text_paths(item, (*path, key))]
    if isinstance(value, list):
        return [p for i, item in enumerate(value) for p in _text_paths(item, (*path, i))]
    return []


def _with(value: Any, path: tuple[Any, ...], text: str) -> Any:
    if not path:
        return text
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {**value, head: _with(value[head], rest, text)}
    copy = list(value)
    copy[head] = _with(copy[head], rest, text)
    return copy


def _at(value: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        value = value[step]
    return value


def flatmap_body(ctx: Any, body: Any) -> Any:
    paths = _text_paths(body)
    if not paths:
        return st.just(body)
    return st.tuples(st.sampled_from(paths), st.sampled_from(HOSTILE)).map(
        lambda choice: _with(body, choice[0], choice[1])
    )


@pytest.fixture(params=sorted(APPS))
def hostile_schema(
    request: pytest.FixtureRequest,
    postgres_server: Any,
    kafka_settings: KafkaSettings,
    contract_topics: tuple[str, ...],
) -> Any:
    dsn = postgres_server.new_database(f"{request.param}_hostile_str")
    loaded = schemathesis.openapi.from_asgi(
        "/openapi.json", APPS[request.param](dsn, kafka_settings)
    )
    loaded.hook(flatmap_body)
    return loaded.include(method=["POST", "PUT", "PATCH"])


schema = schemathesis.pytest.from_fixture("hostile_schema")


@pytest.fixture(autouse=True)
def _node_id_for_schemathesis(request: pytest.FixtureRequest) -> None:
    # schemathesis' lazy schema reads ``node._nodeid``, which pytest 9 no longer has.
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid


@schema.parametrize()
@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
def test_hostile_text_in_any_field_is_never_a_server_error(case: Any) -> None:
    if case.meta is not None and case.meta.phase.name == TestPhase.FUZZING:
        # Explicit examples and coverage cases are sent as they are; generated ones carry
        # a hostile string wherever their body has text.
        texts = [_at(case.body, path) for path in _text_paths(case.body)]
        assert not texts or set(texts) & set(HOSTILE), "the hook put no hostile string in"
    response = case.call(headers={"Authorization": f"Bearer {COORDINATOR}"})
    case.validate_response(response, checks=[not_a_server_error])
    if response.status_code >= 400:
        assert len(response.content) <= MAX_ERROR_BODY_BYTES, response.status_code
