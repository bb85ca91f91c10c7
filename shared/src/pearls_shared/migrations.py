"""Forward-only SQL migrations with checksums, safe with several replicas.

Files are ``NNNN_description.sql`` in a folder; each runs in its own
transaction and is recorded with its SHA-256. An applied file that changed
afterwards is an error (history is never rewritten). An advisory lock makes
concurrent starts of several replicas apply each file exactly once.

The shared library contributes its own migrations (outbox, inbox) under the
``pearls_shared`` namespace; each service adds its own folder.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import asyncpg
import structlog

log = structlog.get_logger(__name__)

_FILE_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
_LOCK_KEY = 0x7065_6172_6C73  # "pearls": one migration run per database at a time


class MigrationError(RuntimeError):
    """A migration folder or the recorded history is inconsistent."""


@dataclass(frozen=True, slots=True)
class Migration:
    namespace: str
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_folder(namespace: str, folder: Path) -> list[Migration]:
    found: list[Migration] = []
    for path in sorted(folder.glob("*.sql")):
        match = _FILE_NAME.match(path.name)
        if not match:
            raise MigrationError(f"{path}: name must look like 0001_what_it_does.sql")
        found.append(Migration(namespace, int(match.group(1)), path.name, path.read_text()))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"{folder}: two files share a version number")
    return found


def shared_migrations() -> list[Migration]:
    """The shared library's own tables (outbox, inbox)."""
    folder = resources.files("pearls_shared") / "sql"
    return load_folder("pearls_shared", Path(str(folder)))


_HISTORY = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    namespace   text        NOT NULL,
    version     integer     NOT NULL,
    name        text        NOT NULL,
    checksum    text        NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (namespace, version)
)
"""


async def migrate(conn: asyncpg.Connection[Any], migrations: list[Migration]) -> list[str]:
    """Apply what is missing, in order; return the names applied now."""
    applied_now: list[str] = []
    await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
    try:
        await conn.execute(_HISTORY)
        rows = await conn.fetch("SELECT namespace, version, name, checksum FROM schema_migrations")
        done = {(r["namespace"], r["version"]): r for r in rows}
        for migration in migrations:
            record = done.get((migration.namespace, migration.version))
            if record is not None:
                if record["checksum"] != migration.checksum:
                    raise MigrationError(
                        f"{migration.namespace}/{migration.name}: changed after it was applied "
                        f"(recorded as {record['name']}); add a new migration instead"
                    )
                continue
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (namespace, version, name, checksum)"
                    " VALUES ($1, $2, $3, $4)",
                    migration.namespace,
                    migration.version,
                    migration.name,
                    migration.checksum,
                )
            log.info("migration_applied", namespace=migration.namespace, name=migration.name)
            applied_now.append(f"{migration.namespace}/{migration.name}")
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)
    return applied_now
