"""The shared HTTP plumbing bounds what a request may hold and what an error echoes.

A tiny FastAPI app wired with ``install_http`` stands in for a service: bodies over
the limit get 413 (declared or streamed), deep JSON gets 422 before parsing, and a
422 lists excerpts of a bounded number of errors, never the input itself.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

import httpx
import pytest
from fastapi import Body, FastAPI, Request
from pydantic import BaseModel, Field

from pearls_shared.http import (
    CORRELATION_HEADER,
    MAX_ERROR_BODY_BYTES,
    MAX_ERRORS,
    bounded_errors,
    excerpt,
    install_http,
    json_deeper_than,
)
from pearls_shared.settings import HttpSettings

LIMIT = 64 * 1024
DEPTH = 8


class Item(BaseModel):
    n: int


class Things(BaseModel):
    name: str = Field(max_length=50)
    items: list[Item] = Field(default_factory=list, max_length=10)
    tags: dict[str, int] = Field(default_factory=dict)


def _app(limits: HttpSettings) -> FastAPI:
    app = FastAPI()

    async def ready() -> bool:
        return True

    install_http(app, ready=ready, limits=limits)

    @app.post("/things")
    async def things(body: Things) -> dict[str, int]:
        return {"items": len(body.items)}

    @app.post("/anything")
    async def anything(body: Annotated[Any, Body()]) -> dict[str, str]:
        return {"type": type(body).__name__}

    @app.post("/raw")
    async def raw(request: Request) -> dict[str, int]:
        return {"bytes": len(await request.body())}

    @app.post("/numbers")
    async def numbers(body: list[int]) -> dict[str, int]:
        return {"count": len(body)}

    return app


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = _app(HttpSettings(max_body_bytes=LIMIT, max_json_depth=DEPTH))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://svc"
    ) as c:
        yield c


def _only(response: httpx.Response, status: int, rule: str) -> None:
    assert response.status_code == status, response.text[:500]
    [entry] = response.json()["detail"]
    assert entry["type"] == rule
    assert entry["loc"] == ["body"]


async def _chunks(total: int, pulled: list[int], size: int = 4096) -> AsyncIterator[bytes]:
    sent = 0
    while sent < total:
        chunk = b"x" * min(size, total - sent)
        sent += len(chunk)
        pulled.append(len(chunk))
        yield chunk


async def test_a_declared_oversized_body_is_refused_before_it_is_read(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/things", content=b"{" + b" " * LIMIT + b"}", headers={"content-type": "application/json"}
    )
    _only(response, 413, "body_too_large")
    assert str(LIMIT) in response.json()["detail"][0]["msg"]
    assert response.headers[CORRELATION_HEADER]
    # A body of any type: the limit is the same.
    _only(await client.post("/raw", content=b"x" * (LIMIT + 1)), 413, "body_too_large")


async def test_a_body_at_the_limit_is_accepted(client: httpx.AsyncClient) -> None:
    response = await client.post("/raw", content=b"x" * LIMIT)
    assert response.status_code == 200
    assert response.json() == {"bytes": LIMIT}


@pytest.mark.parametrize(
    ("path", "content_type"), [("/things", "application/json"), ("/raw", "text/plain")]
)
async def test_a_streamed_body_stops_being_read_at_the_limit(
    client: httpx.AsyncClient, path: str, content_type: str
) -> None:
    pulled: list[int] = []
    response = await client.post(
        path, content=_chunks(50 * LIMIT, pulled), headers={"content-type": content_type}
    )
    _only(response, 413, "body_too_large")
    # Reading stopped at the first chunk past the limit, not at the end of the stream.
    assert sum(pulled) <= LIMIT + 4096


async def test_a_missing_or_malformed_content_length_is_not_a_way_around(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/raw", content=b"x", headers={"content-length": "12abc", "content-type": "text/plain"}
    )
    assert response.status_code == 400
    assert response.json()["detail"][0]["type"] == "content_length_invalid"


async def test_json_nested_deeper_than_the_limit_is_refused_before_parsing(
    client: httpx.AsyncClient,
) -> None:
    deep = "[" * (DEPTH + 1) + "]" * (DEPTH + 1)
    _only(
        await client.post("/anything", content=deep, headers={"content-type": "application/json"}),
        422,
        "json_too_deep",
    )
    objects = '{"a":' * (DEPTH + 1) + "1" + "}" * (DEPTH + 1)
    response = await client.post(
        "/anything", content=objects, headers={"content-type": "application/json; charset=utf-8"}
    )
    _only(response, 422, "json_too_deep")
    # +json media types are JSON too.
    response = await client.post(
        "/anything", content=deep, headers={"content-type": "application/merge-patch+json"}
    )
    _only(response, 422, "json_too_deep")


async def test_json_at_the_depth_limit_and_brackets_inside_strings_pass(
    client: httpx.AsyncClient,
) -> None:
    at_limit = "[" * DEPTH + "]" * DEPTH
    response = await client.post(
        "/anything", content=at_limit, headers={"content-type": "application/json"}
    )
    assert response.json() == {"type": "list"}
    # Brackets inside strings (escaped quotes included) are text, not nesting.
    text = json.dumps(["[" * 100 + '"\\' + "{" * 100])
    assert (await client.post("/anything", json=json.loads(text))).json() == {"type": "list"}


@pytest.mark.parametrize(
    ("text", "deeper"),
    [
        ("[]", False),
        ("[" * 9 + "]" * 9, True),
        ("[" * 8 + "]" * 8, False),
        ('{"a":[{"b":[[[[[[1]]]]]]}]}', True),
        ('{"a":[{"b":[[[[1]]]]}]}', False),
        ('["' + "[" * 50 + '"]', False),
        ('["\\"' + "[" * 50 + '"]', False),
        ('["\\\\"' + ",[" * 9 + "]" * 9 + "]", True),
        ("[" * 1000, False),  # malformed: left to the parser
        ("[1]" * 1000, False),
        ("{[}]" * 5, False),
    ],
)
def test_depth_is_measured_on_the_raw_text(text: str, deeper: bool) -> None:
    assert json_deeper_than(text.encode(), 8) is deeper


def test_depth_check_of_a_megabyte_is_fast() -> None:
    bodies = [
        b"[" * 500_000 + b"]" * 500_000,
        b'{"a":' * 200_000 + b"1" + b"}" * 200_000,
        b"[" + b'"xx",' * 200_000 + b"1]",
        b"[" + b"[1]," * 250_000 + b"1]",
        b'"' + b'\\"' * 500_000,
    ]
    for body in bodies:
        started = time.perf_counter()
        json_deeper_than(body, 32)
        assert time.perf_counter() - started < 1.0


async def test_thousands_of_invalid_items_give_a_small_bounded_422(
    client: httpx.AsyncClient,
) -> None:
    junk = ["not a number " * 16] * 300  # ~63 KB, each item invalid
    response = await client.post("/numbers", json=junk)
    assert response.status_code == 422
    assert len(response.content) <= MAX_ERROR_BODY_BYTES
    detail = response.json()["detail"]
    assert len(detail) == MAX_ERRORS + 1
    assert detail[-1]["type"] == "too_many_errors"
    assert str(300 - MAX_ERRORS) in detail[-1]["msg"]
    for entry in detail[:-1]:
        assert entry["type"] == "int_parsing"
        assert len(entry["input"]) <= 201
        assert entry["input"].endswith("\u2026")


async def test_an_error_echoes_an_excerpt_of_a_huge_input_not_the_input(
    client: httpx.AsyncClient,
) -> None:
    huge_name = "n" * 60_000
    response = await client.post(
        "/things",
        json={"name": huge_name, "items": [{"n": i} for i in range(200)], "tags": {"k" * 500: "x"}},
    )
    assert response.status_code == 422
    assert len(response.content) < 4096
    by_field = {tuple(e["loc"][:2]): e for e in response.json()["detail"]}
    name = by_field[("body", "name")]
    assert name["input"] == "n" * 200 + "\u2026"
    assert name["ctx"] == {"max_length": 50}
    items = by_field[("body", "items")]
    assert items["type"] == "too_long"
    assert isinstance(items["input"], str) and items["input"].startswith('[{"n":0}')
    [tag] = [e for e in response.json()["detail"] if e["loc"][:2] == ["body", "tags"]]
    assert all(len(part) <= 49 for part in tag["loc"] if isinstance(part, str))


async def test_the_service_answers_promptly_after_hostile_requests(
    client: httpx.AsyncClient,
) -> None:
    await client.post("/raw", content=b"x" * (LIMIT * 4))
    await client.post(
        "/anything",
        content="[" * 5000 + "]" * 5000,
        headers={"content-type": "application/json"},
    )
    await client.post("/numbers", json=["x"] * 5000)
    started = time.perf_counter()
    response = await client.post("/things", json={"name": "ok", "items": [{"n": 1}]})
    assert response.status_code == 200
    assert response.json() == {"items": 1}
    assert time.perf_counter() - started < 1.0
    assert (await client.get("/healthz")).status_code == 200


def test_excerpt_keeps_short_values_and_cuts_long_ones() -> None:
    assert excerpt({"a": [1, 2]}) == {"a": [1, 2]}
    assert excerpt("short") == "short"
    assert excerpt(None) is None
    assert excerpt(12) == 12
    assert excerpt("y" * 1000) == "y" * 200 + "\u2026"
    cut = excerpt({"a": list(range(10**6))})
    assert isinstance(cut, str) and len(cut) == 201
    assert excerpt(b"\xff" * 10_000).endswith("\u2026")
    assert excerpt(ValueError("z" * 500)) == "z" * 200 + "\u2026"


def test_bounded_errors_keep_the_body_under_its_bound_whatever_the_errors() -> None:
    nasty = {
        "type": "t" * 10_000,
        "loc": ["body", *("\U0001f600" * 1000 for _ in range(100))],
        "msg": "\U0001f600" * 10_000,
        "input": "\U0001f600" * 10_000,
        "ctx": {f"k{i}": "\U0001f600" * 10_000 for i in range(100)},
    }
    detail = bounded_errors([nasty] * 1000)
    rendered = json.dumps({"detail": detail}, ensure_ascii=True, separators=(",", ":"))
    assert len(rendered) <= MAX_ERROR_BODY_BYTES
    assert detail[-1]["type"] == "too_many_errors"
    assert detail[0]["loc"][0] == "body"
