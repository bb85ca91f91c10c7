"""Fresh databases on any PostgreSQL server reachable with a superuser DSN.

Works the same whether the server came from the environment, a container or the local
launcher, so it talks SQL over asyncpg (a Pearls dependency, imported lazily) rather
than shelling out to psql, which a Docker-only laptop may not have.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from pearls_localinfra.postgres import quote_ident, quote_literal


def _with_credentials(dsn: str, database: str, user: str, password: str) -> str:
    """`dsn` pointed at another database and role; host, port and query are kept."""
    parts = urlsplit(dsn)
    hostport = parts.netloc.rpartition("@")[2]
    netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{hostport}"
    return urlunsplit((parts.scheme, netloc, "/" + quote(database, safe=""), parts.query, ""))


class PostgresServer:
    """Hands out one fresh database, owned by its own login role, per call.

    `source` says where the server came from ("env", "docker" or "local"). With
    `drop_on_close`, `close()` drops what was created (for long-lived shared servers).
    """

    def __init__(self, superuser_dsn: str, source: str, *, drop_on_close: bool = False) -> None:
        self.superuser_dsn = superuser_dsn
        self.source = source
        self.drop_on_close = drop_on_close
        self.created: list[str] = []

    async def new_database_async(self, prefix: str = "test") -> str:
        """Create a database and its owner role; returns that role's DSN."""
        name = self._fresh_name(prefix)
        password = secrets.token_urlsafe(12)
        conn = await self._connect()
        try:
            await conn.execute(
                f"CREATE ROLE {quote_ident(name)} LOGIN PASSWORD {quote_literal(password)}"
            )
            self.created.append(name)
            await conn.execute(f"CREATE DATABASE {quote_ident(name)} OWNER {quote_ident(name)}")
        finally:
            await conn.close()
        return _with_credentials(self.superuser_dsn, name, name, password)

    def new_database(self, prefix: str = "test") -> str:
        """Blocking `new_database_async`; safe to call inside a running event loop."""
        with ThreadPoolExecutor(1) as pool:
            return pool.submit(asyncio.run, self.new_database_async(prefix)).result()

    def ping(self) -> None:
        """Raise unless the superuser DSN connects."""
        with ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, self._ping()).result()

    async def _ping(self) -> None:
        conn = await self._connect()
        await conn.close()

    def close(self) -> None:
        if self.drop_on_close and self.created:
            with ThreadPoolExecutor(1) as pool:
                pool.submit(asyncio.run, self._drop_created()).result()

    async def _drop_created(self) -> None:
        conn = await self._connect()
        try:
            for name in reversed(self.created):
                # FORCE (PostgreSQL 13+) ends sessions a test left open.
                await conn.execute(f"DROP DATABASE IF EXISTS {quote_ident(name)} WITH (FORCE)")
                await conn.execute(f"DROP ROLE IF EXISTS {quote_ident(name)}")
        finally:
            await conn.close()
        self.created.clear()

    async def _connect(self) -> Any:
        import asyncpg

        return await asyncpg.connect(self.superuser_dsn, timeout=10)

    @staticmethod
    def _fresh_name(prefix: str) -> str:
        # Identifiers max out at 63 bytes; a random suffix keeps parallel runs apart.
        slug = re.sub(r"[^a-z0-9_]+", "_", prefix.lower()).strip("_")[:40] or "test"
        return f"{slug}_{secrets.token_hex(4)}"
