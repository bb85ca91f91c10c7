"""The migration runner against a real PostgreSQL."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from pearls_shared.db import connect
from pearls_shared.migrations import MigrationError, load_folder, migrate

pytestmark = pytest.mark.integration


def _write(folder: Path, name: str, sql: str) -> None:
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(sql)


@pytest.fixture
async def conn(postgres_server: Any) -> Any:
    connection = await connect(postgres_server.new_database("mig"))
    yield connection
    await connection.close()


async def test_applies_in_order_once(conn: asyncpg.Connection, tmp_path: Path) -> None:
    _write(tmp_path, "0001_cities.sql", "CREATE TABLE cities (name text PRIMARY KEY);")
    _write(tmp_path, "0002_population.sql", "ALTER TABLE cities ADD COLUMN population int;")
    assert await migrate(conn, load_folder("svc", tmp_path)) == [
        "svc/0001_cities.sql",
        "svc/0002_population.sql",
    ]
    assert await migrate(conn, load_folder("svc", tmp_path)) == []
    await conn.execute("INSERT INTO cities VALUES ('Kuldīga', 10000)")


async def test_a_changed_applied_file_is_refused(conn: asyncpg.Connection, tmp_path: Path) -> None:
    _write(tmp_path, "0001_cities.sql", "CREATE TABLE cities (name text);")
    await migrate(conn, load_folder("svc", tmp_path))
    _write(tmp_path, "0001_cities.sql", "CREATE TABLE cities (name text, country text);")
    with pytest.raises(MigrationError, match="changed after it was applied"):
        await migrate(conn, load_folder("svc", tmp_path))


async def test_a_failing_file_leaves_nothing_behind(
    conn: asyncpg.Connection, tmp_path: Path
) -> None:
    _write(tmp_path, "0001_half.sql", "CREATE TABLE a (x int); CREATE TABLE a (x int);")
    with pytest.raises(asyncpg.DuplicateTableError):
        await migrate(conn, load_folder("svc", tmp_path))
    assert await conn.fetchval("SELECT to_regclass('a')") is None
    assert await conn.fetchval("SELECT count(*) FROM schema_migrations") == 0


async def test_concurrent_runs_apply_each_file_once(postgres_server: Any, tmp_path: Path) -> None:
    dsn = postgres_server.new_database("mig")
    _write(
        tmp_path,
        "0001_counter.sql",
        "CREATE TABLE counter (n int); INSERT INTO counter VALUES (1);",
    )
    migrations = load_folder("svc", tmp_path)
    conns = [await connect(dsn) for _ in range(3)]
    try:
        results = await asyncio.gather(*(migrate(c, migrations) for c in conns))
        assert sorted(len(r) for r in results) == [0, 0, 1]
        assert await conns[0].fetchval("SELECT count(*) FROM counter") == 1
    finally:
        for c in conns:
            await c.close()


def test_file_names_must_be_numbered(tmp_path: Path) -> None:
    _write(tmp_path, "cities.sql", "SELECT 1;")
    with pytest.raises(MigrationError, match=r"0001_what_it_does\.sql"):
        load_folder("svc", tmp_path)


def test_versions_must_be_unique(tmp_path: Path) -> None:
    _write(tmp_path, "0001_a.sql", "SELECT 1;")
    _write(tmp_path, "0001_b.sql", "SELECT 1;")
    with pytest.raises(MigrationError, match="share a version"):
        load_folder("svc", tmp_path)
