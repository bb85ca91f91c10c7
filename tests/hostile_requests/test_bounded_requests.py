"""Every service bounds a hostile request and what its refusal echoes (issue 12).

A 50 MB body of junk once came back as a 650 MB error after seconds of CPU. Each
real app runs with its lifespan on a fresh database (the fuzz test's factories,
plus notifications) and is sent, on a write endpoint, with a coordinator token:
a body over the limit with ``Content-Length``, the same streamed in chunks, JSON
nested far too deep, and thousands of invalid items. Each is refused with the
right status and a small body (under 64 KiB), reading stops at the limit, and the
service answers the next request promptly.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from pearls_shared.settings import HttpSettings, KafkaSettings
from tests.apps import APPS, COORDINATOR, _fresh_group

pytestmark = pytest.mark.integration

AUTH = {"Authorization": f"Bearer {COORDINATOR}"}
JSON = {"content-type": "application/json"}
LIMIT = HttpSettings().max_body_bytes
DEPTH = HttpSettings().max_json_depth
SMALL = 64 * 1024
CHUNK = 64 * 1024
PROMPT_S = 2.0


def _notifications(dsn: str, kafka: KafkaSettings) -> FastAPI:
    from pearls_notifications.bootstrap import create_app
    from pearls_notifications.config import Settings
    from pearls_notifications.entrypoints.consumers import CONSUMED_TOPICS

    return create_app(
        Settings(
            database_url=dsn,
            coordinators=[{"id": "hostile", "token": COORDINATOR}],
            consumer_group=_fresh_group("notifications-hostile", kafka, list(CONSUMED_TOPICS)),
            not_before=datetime.now(UTC),
        ),
        kafka,
    )


FACTORIES: dict[str, Callable[[str, KafkaSettings], FastAPI]] = {
    **APPS,
    "notifications": _notifications,
}
# One write endpoint with a JSON body per service.
WRITES = {
    "applications": ("POST", "/calls"),
    "mentoring": ("POST", "/mentors"),
    "awards": ("POST", "/rounds"),
    "notifications": ("PUT", "/preferences/someone@example.org"),
}


@pytest.fixture(scope="module")
async def services(
    postgres_server: Any, kafka_settings: KafkaSettings, contract_topics: tuple[str, ...]
) -> AsyncIterator[Callable[[str], Awaitable[httpx.AsyncClient]]]:
    started: dict[str, tuple[LifespanManager, httpx.AsyncClient]] = {}

    async def client(service: str) -> httpx.AsyncClient:
        if service not in started:
            app = FACTORIES[service](
                postgres_server.new_database(f"{service}_hostile_requests"), kafka_settings
            )
            manager = LifespanManager(app, startup_timeout=60, shutdown_timeout=60)
            await manager.__aenter__()
            started[service] = (
                manager,
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=manager.app),
                    base_url=f"http://{service}",
                    headers=AUTH,
                    timeout=60,
                ),
            )
        return started[service][1]

    yield client
    for manager, http in reversed(started.values()):
        await http.aclose()
        await manager.__aexit__(None, None, None)


async def _send(client: httpx.AsyncClient, service: str, **kwargs: Any) -> httpx.Response:
    method, path = WRITES[service]
    return await client.request(method, path, **kwargs)


def _refused(response: httpx.Response, status: int, rule: str | None = None) -> list[Any]:
    assert response.status_code == status, response.text[:300]
    assert len(response.content) < SMALL, f"{len(response.content)} bytes of error"
    detail: list[Any] = response.json()["detail"]
    if rule is not None:
        assert [entry["type"] for entry in detail] == [rule]
        assert detail[0]["loc"] == ["body"]
    return detail


async def _still_answers(client: httpx.AsyncClient, service: str) -> None:
    started = time.perf_counter()
    assert (await client.get("/healthz")).status_code == 200
    response = await _send(client, service, json={})
    assert response.status_code == 422
    assert time.perf_counter() - started < PROMPT_S


SERVICES = sorted(FACTORIES)


@pytest.mark.parametrize("service", SERVICES)
async def test_a_body_over_the_limit_is_refused_by_its_content_length(
    services: Callable[[str], Awaitable[httpx.AsyncClient]], service: str
) -> None:
    client = await services(service)
    body = b'{"name":"' + b"x" * (4 * LIMIT) + b'"}'
    _refused(await _send(client, service, content=body, headers=JSON), 413, "body_too_large")
    await _still_answers(client, service)


@pytest.mark.parametrize("service", SERVICES)
async def test_a_streamed_body_over_the_limit_is_refused_without_reading_it_all(
    services: Callable[[str], Awaitable[httpx.AsyncClient]], service: str
) -> None:
    client = await services(service)
    pulled = 0

    async def junk() -> AsyncIterator[bytes]:
        nonlocal pulled
        yield b'{"name":"'
        for _ in range(8 * LIMIT // CHUNK):
            pulled += CHUNK
            yield b"x" * CHUNK

    response = await _send(client, service, content=junk(), headers=JSON)
    _refused(response, 413, "body_too_large")
    assert pulled <= LIMIT + CHUNK, f"{pulled} bytes read of a body past the limit"
    await _still_answers(client, service)


@pytest.mark.parametrize("service", SERVICES)
@pytest.mark.parametrize("levels", [DEPTH + 1, 900, 100_000])
async def test_json_nested_too_deep_is_refused(
    services: Callable[[str], Awaitable[httpx.AsyncClient]], service: str, levels: int
) -> None:
    client = await services(service)
    body = '{"name":' + "[" * levels + "]" * levels + "}"
    _refused(await _send(client, service, content=body, headers=JSON), 422, "json_too_deep")
    await _still_answers(client, service)


@pytest.mark.parametrize("service", SERVICES)
async def test_thousands_of_invalid_items_get_a_small_422(
    services: Callable[[str], Awaitable[httpx.AsyncClient]], service: str
) -> None:
    client = await services(service)
    item = "not-what-you-asked-for-" * 2
    # A list where an object belongs, and an object whose every field is a long list
    # of invalid items: both just under the body limit.
    as_list = [item] * (LIMIT // (len(item) + 3) - 10)
    fields = ("name", "themes", "languages", "criteria", "jurors", "category", "mode")
    per_field = (LIMIT // len(fields)) // (len(item) + 3) - 10
    as_fields = {field: [item] * per_field for field in fields}
    for body in (as_list, as_fields):
        started = time.perf_counter()
        detail = _refused(await _send(client, service, json=body), 422)
        assert time.perf_counter() - started < PROMPT_S
        for entry in detail:
            if isinstance(entry.get("input"), str):
                assert len(entry["input"]) <= 201
    await _still_answers(client, service)
