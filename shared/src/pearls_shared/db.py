"""asyncpg pool factory: one pool per service, built at start-up, never at import."""

from __future__ import annotations

import json
from typing import Any, TypeAlias

import asyncpg

from pearls_shared.settings import PostgresSettings

# A connection of the pool or a single one: repositories take either.
Conn: TypeAlias = "asyncpg.Connection[Any] | asyncpg.pool.PoolConnectionProxy[Any]"


async def _init_connection(conn: asyncpg.Connection[Any]) -> None:
    # jsonb columns come back as Python objects rather than strings.
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
    await conn.set_type_codec("json", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def create_pool(settings: PostgresSettings) -> asyncpg.Pool[Any]:
    pool = await asyncpg.create_pool(
        settings.database_url.get_secret_value(),
        min_size=settings.pool_min_size,
        max_size=settings.pool_max_size,
        init=_init_connection,
    )
    assert pool is not None  # create_pool returns None only when not awaited
    return pool


async def connect(dsn: str) -> asyncpg.Connection[Any]:
    """A single connection with the same codecs as the pool (relay, migrations)."""
    conn: asyncpg.Connection[Any] = await asyncpg.connect(dsn)
    await _init_connection(conn)
    return conn
