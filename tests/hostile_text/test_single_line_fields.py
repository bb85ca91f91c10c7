"""Names and titles are one line; free text keeps its line breaks (issue 12).

A line break in a contact's name ended up as lines of its own in a plain-text
e-mail, and escape sequences in any text reached the terminal of ``make run``.
Each service's real app (with its lifespan, on a fresh database) refuses a
control character in a single-line field with a 422 naming the field, and
refuses in free text every control character other than line breaks and tabs.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from pearls_shared.settings import KafkaSettings
from tests.apps import APPS, COORDINATOR

pytestmark = pytest.mark.integration

AUTH = {"Authorization": f"Bearer {COORDINATOR}"}
HOSTILE_LINES = [
    "Inese\r\nBcc: evil@example.org",
    "Inese\nBērziņa",
    "Inese\rBērziņa",
    "Inese\x1b[31mBērziņa\x1b[0m",
    "Inese\tBērziņa",
    "Inese\u2028Bērziņa",
    "Inese\u2029Bērziņa",
    "Inese\x85Bērziņa",
    "Inese\x7fBērziņa",
    "Inese\x08Bērziņa",
]
HOSTILE_TEXT = ["Our town\x1b[2J", "bell\x07", "back\x08space", "C1\x9bcsi", "del\x7f"]
SOME_ID = str(uuid.UUID(int=1))
APPLY = f"/calls/{SOME_ID}/applications"


@pytest.fixture(scope="module")
def clients(
    postgres_server: Any, kafka_settings: KafkaSettings, contract_topics: tuple[str, ...]
) -> Iterator[Callable[[str], TestClient]]:
    started: dict[str, TestClient] = {}

    def client(service: str) -> TestClient:
        if service not in started:
            dsn = postgres_server.new_database(f"{service}_hostile_text")
            started[service] = TestClient(APPS[service](dsn, kafka_settings)).__enter__()
        return started[service]

    yield client
    for running in started.values():
        running.__exit__(None, None, None)


def _example(client: TestClient, schema: str) -> dict[str, Any]:
    found: dict[str, Any] = client.app.openapi()["components"]["schemas"][schema]  # type: ignore[attr-defined]
    return copy.deepcopy(found["examples"][0])


def _application(client: TestClient) -> dict[str, Any]:
    return _example(client, "ApplicationIn")


def _mentor(_: TestClient) -> dict[str, Any]:
    return {
        "kind": "pearl_city",
        "name": "Kadri Tamm",
        "email": "kadri@viljandi.example",
        "language": "et",
        "languages": ["et", "en"],
        "country": "EE",
        "city_name": "Viljandi",
        "organisation": "Viljandi Culture Office",
        "capacity": 2,
        "themes": ["culture_creative_industries"],
    }


def _round(_: TestClient) -> dict[str, Any]:
    return {
        "title": {"en": "Pearls of the year"},
        "closes_at": "2036-12-31T12:00:00Z",
        "criteria": [{"criterion_id": "impact", "name": {"en": "Impact"}, "weight": 1}],
        "jurors": [
            {
                "name": "Jana Novak",
                "email": "jana@jury.example",
                "language": "en",
                "city_name": "Gdańsk",
                "country": "PL",
            }
        ],
    }


Body = Callable[[TestClient], dict[str, Any]]
# (service, method, path, body, field path): the single-line fields refused.
SINGLE_LINE: list[tuple[str, str, str, Body, tuple[str | int, ...]]] = [
    ("applications", "POST", APPLY, _application, ("contacts", 0, "name")),
    ("applications", "POST", APPLY, _application, ("organisation_name",)),
    ("applications", "POST", "/calls", lambda c: _example(c, "CallIn"), ("title", "en")),
    (
        "applications",
        "POST",
        "/calls",
        lambda c: _example(c, "CallIn"),
        ("rubric", "criteria", 0, "label", "en"),
    ),
    (
        "applications",
        "POST",
        "/reviewers",
        lambda _: {"reviewer_id": "r1", "name": "Anna", "city_name": "Turku", "country": "FI"},
        ("name",),
    ),
    ("mentoring", "POST", "/mentors", _mentor, ("name",)),
    ("mentoring", "POST", "/mentors", _mentor, ("city_name",)),
    ("mentoring", "POST", "/mentors", _mentor, ("organisation",)),
    ("awards", "POST", "/rounds", _round, ("title", "en")),
    ("awards", "POST", "/rounds", _round, ("criteria", 0, "name", "en")),
    ("awards", "POST", "/rounds", _round, ("jurors", 0, "name")),
    ("awards", "POST", "/rounds", _round, ("jurors", 0, "city_name")),
]
FREE_TEXT: list[tuple[str, str, str, Body, tuple[str | int, ...]]] = [
    ("applications", "POST", APPLY, _application, ("motivation",)),
    ("applications", "POST", "/calls", lambda c: _example(c, "CallIn"), ("description", "en")),
]


def _put(body: dict[str, Any], where: tuple[str | int, ...], value: str) -> dict[str, Any]:
    node: Any = body
    for key in where[:-1]:
        node = node[key]
    node[where[-1]] = value
    return body


def _errors_at(response: Any, where: tuple[str | int, ...]) -> list[dict[str, Any]]:
    assert response.status_code == 422, response.text
    return [e for e in response.json()["detail"] if tuple(e["loc"][1:]) == where]


def _case_id(case: tuple[str, str, str, Body, tuple[str | int, ...]]) -> str:
    return f"{case[0]}:{case[1]} {case[2]}:{'.'.join(map(str, case[4]))}"


@pytest.mark.parametrize("case", SINGLE_LINE, ids=_case_id)
def test_a_single_line_field_refuses_line_breaks_and_control_characters(
    clients: Callable[[str], TestClient], case: tuple[str, str, str, Body, tuple[str | int, ...]]
) -> None:
    service, method, path, body, where = case
    client = clients(service)
    for value in HOSTILE_LINES:
        response = client.request(method, path, json=_put(body(client), where, value), headers=AUTH)
        errors = _errors_at(response, where)
        assert errors, f"{value!r} in {where} accepted: {response.text}"
        assert "single line" in errors[0]["msg"]


@pytest.mark.parametrize("case", FREE_TEXT, ids=_case_id)
def test_free_text_keeps_line_breaks_and_refuses_other_control_characters(
    clients: Callable[[str], TestClient], case: tuple[str, str, str, Body, tuple[str | int, ...]]
) -> None:
    service, method, path, body, where = case
    client = clients(service)
    for value in HOSTILE_TEXT:
        response = client.request(method, path, json=_put(body(client), where, value), headers=AUTH)
        errors = _errors_at(response, where)
        assert errors, f"{value!r} in {where} accepted: {response.text}"
        assert "control characters" in errors[0]["msg"]
    kept = "First line.\r\nSecond line,\tindented.\n\nA paragraph.\u2028And more."
    response = client.request(method, path, json=_put(body(client), where, kept), headers=AUTH)
    if response.status_code == 422:
        assert not _errors_at(response, where), response.text
