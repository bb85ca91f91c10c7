"""Database side of the CLI: migrations, outbox backlog, rebuilds."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from pearls_ops.errors import OpsError, Unreachable
from pearls_ops.services import Service, db_location
from pearls_shared.db import connect
from pearls_shared.migrations import MigrationError
from pearls_shared.runtime import prepare_database

_DB_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.InvalidAuthorizationSpecificationError,
    asyncpg.InvalidCatalogNameError,
    asyncpg.InvalidPasswordError,
)


def db_unreachable(service: Service, dsn: str, exc: BaseException) -> Unreachable:
    return Unreachable(f"{service.name}: database unreachable at {db_location(dsn)}: {exc}")


@contextlib.asynccontextmanager
async def connection(service: Service, dsn: str) -> AsyncIterator[asyncpg.Connection[Any]]:
    try:
        conn = await connect(dsn)
    except _DB_ERRORS as exc:
        raise db_unreachable(service, dsn, exc) from exc
    try:
        yield conn
    finally:
        await conn.close()


async def migrate(service: Service) -> list[str]:
    settings = service.settings()
    dsn = service.dsn(settings)
    try:
        applied: list[str] = await prepare_database(dsn, service.migrations_dir(settings))
    except _DB_ERRORS as exc:
        raise db_unreachable(service, dsn, exc) from exc
    except MigrationError as exc:
        raise OpsError(f"{service.name}: {exc}") from exc
    return applied


@dataclass(frozen=True, slots=True)
class Backlog:
    unsent: int
    oldest: datetime | None
    failing: int  # unsent rows whose last attempt failed
    age_s: float | None


async def outbox_backlog(service: Service) -> Backlog:
    dsn = service.dsn()
    async with connection(service, dsn) as conn:
        try:
            row = await conn.fetchrow(
                "SELECT count(*) AS unsent, min(created_at) AS oldest,"
                " count(*) FILTER (WHERE last_error IS NOT NULL) AS failing,"
                " extract(epoch FROM now() - min(created_at))::float8 AS age_s"
                " FROM outbox WHERE sent_at IS NULL"
            )
        except asyncpg.UndefinedTableError as exc:
            raise OpsError(
                f"{service.name}: no outbox table at {db_location(dsn)}"
                f" (run `pearls migrate --service {service.name}`)"
            ) from exc
    assert row is not None
    return Backlog(row["unsent"], row["oldest"], row["failing"], row["age_s"])
