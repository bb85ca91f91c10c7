"""Erasure of personal data (GDPR art. 17), the same in every service.

- The **keyed hash** of an address: HMAC-SHA256 of the trimmed, lower-case address
  with the erasure key (``PEARLS_ERASURE_KEY``, one key for every service and for
  every other subscriber of ``pearls.person.erased``; the operator hands it out).
  The erasure event carries only these hashes, never the address.
- The **pseudonym** that replaces an erased address: ``erased-<first 16 hex of the
  hash>@erased.example``; the name beside it becomes ``(erased)``. It is stable
  (the same address always gets the same pseudonym, so counts and joins stay
  right), reveals nothing without the key, and is a valid address under the
  contract's e-mail type, so events carrying a pseudonymised contact still
  validate (``.invalid`` would be refused by that type; ``.example`` is just as
  reserved, RFC 2606, and never delivers). Notifications never writes to one.
- The **registers** (``erased_addresses``, ``erased_applications``; shared
  migration 0002): data arriving later for an erased address or application (an
  older event delivered late, a replay, a rebuild from the topics) is
  pseudonymised on arrival by :func:`guard` before any handler sees it.
- The **sweep**: once a service has found the plain address among its own rows
  (it hashes what it holds and compares), :func:`sweep` replaces it in every text,
  JSON and text-array column of the service's tables and in its outbox.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import structlog
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from pearls_shared.envelope import Envelope
from pearls_shared.events.applications import PersonErased
from pearls_shared.events.base import EventData

log = structlog.get_logger(__name__)

Handler = Callable[["asyncpg.Connection[Any]", Envelope, Any], Awaitable[None]]

ERASED_NAME = "(erased)"
PSEUDONYM_DOMAIN = "erased.example"
_PSEUDONYM = re.compile(r"^erased-[0-9a-f]{16}@erased\.example$")
_EMAIL = re.compile(r"^[^@\s\"<>]+@[^@\s\"<>]+\.[^@\s\"<>]+$")
# Only for development and tests: every process that runs without a key uses this one,
# so the services of one machine agree. Production sets PEARLS_ERASURE_KEY.
_DEVELOPMENT_KEY = b"pearls-development-erasure-key-not-for-production"
# Tables that hold no personal data of their own, or only the register's hashes.
_warned: list[bool] = []  # the unset key is reported once per process
_NOT_SWEPT = frozenset({"inbox", "erased_addresses", "erased_applications", "schema_migrations"})


class ErasureSettings(BaseSettings):
    """Erasure (``PEARLS_ERASURE_*``, every service; the same key everywhere)."""

    model_config = SettingsConfigDict(env_prefix="PEARLS_ERASURE_", extra="ignore")

    key: SecretStr | None = Field(
        default=None,
        description="Key of the HMAC-SHA256 that erasure events identify addresses with; the"
        " same in every service and for every subscriber of pearls.person.erased (the operator"
        " hands it out). Unset: a fixed development key (a warning is logged); never in"
        " production.",
    )


def normalise(email: str) -> str:
    """The form that is hashed and compared: trimmed, lower case."""
    return email.strip().lower()


def pseudonym_for(email_hash: str) -> str:
    return f"erased-{email_hash[:16]}@{PSEUDONYM_DOMAIN}"


def is_pseudonym(address: str) -> bool:
    return bool(_PSEUDONYM.match(address.strip().lower()))


@dataclass(frozen=True, slots=True)
class Eraser:
    """The keyed hash and pseudonym of one deployment (its erasure key)."""

    key: bytes

    @classmethod
    def from_settings(cls, settings: ErasureSettings | None = None) -> Eraser:
        settings = settings or ErasureSettings()
        if settings.key is None:
            if not _warned:
                _warned.append(True)
                log.warning("erasure_key_unset", hint="set PEARLS_ERASURE_KEY in production")
            return cls(_DEVELOPMENT_KEY)
        return cls(settings.key.get_secret_value().encode())

    def hash(self, email: str) -> str:
        return hmac.new(self.key, normalise(email).encode(), hashlib.sha256).hexdigest()

    def pseudonym(self, email: str) -> str:
        return pseudonym_for(self.hash(email))

    def matching(self, candidates: Iterable[str], hashes: Iterable[str]) -> dict[str, str]:
        """The candidates whose hash is among ``hashes``: address -> pseudonym."""
        wanted = set(hashes)
        found: dict[str, str] = {}
        for address in candidates:
            if not address or is_pseudonym(address):
                continue
            digest = self.hash(address)
            if digest in wanted:
                found[normalise(address)] = pseudonym_for(digest)
        return found


# --- JSON values ---------------------------------------------------------------------


def emails_in(value: Any) -> set[str]:
    """Every string in a JSON value that is an e-mail address (normalised)."""
    found: set[str] = set()

    def walk(v: Any) -> None:
        if isinstance(v, str):
            if _EMAIL.match(v.strip()) and not is_pseudonym(v):
                found.add(normalise(v))
        elif isinstance(v, Mapping):
            for item in v.values():
                walk(item)
        elif isinstance(v, list | tuple):
            for item in v:
                walk(item)

    walk(value)
    return found


def scrub(value: Any, hide: Mapping[str, str]) -> Any:
    """A copy of a JSON value with each address in ``hide`` (normalised -> pseudonym)
    replaced, and the ``name`` beside an erased ``email`` replaced too."""
    if isinstance(value, str):
        return hide.get(normalise(value), value)
    if isinstance(value, Mapping):
        out = {k: scrub(v, hide) for k, v in value.items()}
        email = value.get("email")
        if isinstance(email, str) and (normalise(email) in hide or is_pseudonym(email)):
            if "name" in out:
                out["name"] = ERASED_NAME
        return out
    if isinstance(value, list | tuple):
        return [scrub(v, hide) for v in value]
    return value


# --- the registers -----------------------------------------------------------------


async def register_addresses(
    conn: asyncpg.Connection[Any], hashes: Iterable[str], erasure_id: uuid.UUID, at: datetime
) -> None:
    await conn.executemany(
        "INSERT INTO erased_addresses (email_hash, erasure_id, erased_at) VALUES ($1, $2, $3)"
        " ON CONFLICT (email_hash) DO NOTHING",
        [(h, erasure_id, at) for h in set(hashes)],
    )


async def register_application(
    conn: asyncpg.Connection[Any], application_id: uuid.UUID, erasure_id: uuid.UUID, at: datetime
) -> None:
    await conn.execute(
        "INSERT INTO erased_applications (application_id, erasure_id, erased_at)"
        " VALUES ($1, $2, $3) ON CONFLICT (application_id) DO NOTHING",
        application_id,
        erasure_id,
        at,
    )


async def erased_among(conn: asyncpg.Connection[Any], hashes: Iterable[str]) -> set[str]:
    rows = await conn.fetch(
        "SELECT email_hash FROM erased_addresses WHERE email_hash = ANY($1::text[])",
        list(set(hashes)),
    )
    return {r["email_hash"] for r in rows}


async def application_erased(conn: asyncpg.Connection[Any], application_id: uuid.UUID) -> bool:
    return bool(
        await conn.fetchval(
            "SELECT true FROM erased_applications WHERE application_id = $1", application_id
        )
    )


# --- on arrival ----------------------------------------------------------------------


def _contact_emails(raw: Mapping[str, Any]) -> set[str]:
    contacts = raw.get("contacts")
    if not isinstance(contacts, list):
        return set()
    return {normalise(c["email"]) for c in contacts if isinstance(c, Mapping) and "email" in c}


async def hide_erased(conn: asyncpg.Connection[Any], eraser: Eraser, data: EventData) -> EventData:
    """The event with every erased address pseudonymised (the same object if none is)."""
    raw = data.to_data()
    emails = emails_in(raw)
    if not emails:
        return data
    hashes = {e: eraser.hash(e) for e in emails}
    registered = await erased_among(conn, hashes.values())
    hide = {e: pseudonym_for(h) for e, h in hashes.items() if h in registered}
    subject = getattr(data, "application_id", None) or getattr(data, "participant_id", None)
    if isinstance(subject, uuid.UUID) and await application_erased(conn, subject):
        hide.update({e: pseudonym_for(hashes[e]) for e in _contact_emails(raw) if e in hashes})
    if not hide:
        return data
    log.info("erased_data_pseudonymised_on_arrival", addresses=len(hide))
    return type(data).model_validate(scrub(raw, hide))


def guard(handler: Handler, eraser: Eraser) -> Handler:
    """The handler, fed events whose erased addresses are pseudonymised first."""

    async def guarded(conn: asyncpg.Connection[Any], envelope: Envelope, data: Any) -> None:
        if isinstance(data, EventData):
            data = await hide_erased(conn, eraser, data)
        await handler(conn, envelope, data)

    return guarded


def guard_all(handlers: Mapping[str, Handler], eraser: Eraser) -> dict[str, Handler]:
    return {event_type: guard(h, eraser) for event_type, h in handlers.items()}


# --- the sweep -----------------------------------------------------------------------

# An address inside any text or JSON (internationalised ones too): no spaces, quotes,
# brackets or separators around it; domain labels joined by dots.
_NOT_IN_ADDRESS = "\\s@\"'<>(),;:\\[\\]{}\\\\/"
_ADDRESS_IN_TEXT = f"[^{_NOT_IN_ADDRESS}]+@[^{_NOT_IN_ADDRESS}.]+(?:\\.[^{_NOT_IN_ADDRESS}.]+)+"


async def _text_columns(conn: asyncpg.Connection[Any]) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        "SELECT c.table_name, c.column_name, c.data_type, c.udt_name"
        " FROM information_schema.columns c JOIN information_schema.tables t"
        " ON t.table_schema = c.table_schema AND t.table_name = c.table_name"
        " WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE'"
        " AND c.is_generated = 'NEVER' AND (c.data_type IN ('text', 'character varying',"
        " 'json', 'jsonb') OR (c.data_type = 'ARRAY' AND c.udt_name IN ('_text', '_varchar')))"
        " ORDER BY c.table_name, c.ordinal_position"
    )
    return [r for r in rows if r["table_name"] not in _NOT_SWEPT]


async def addresses_held(conn: asyncpg.Connection[Any]) -> set[str]:
    """Every e-mail address anywhere in the service's text and JSON columns and its outbox
    (normalised): the candidates an erasure's hashes are compared with. A full scan, fine
    for erasures (rare) at the programme's size."""
    found: set[str] = set()
    for col in await _text_columns(conn):
        table, column = _ident(col["table_name"]), _ident(col["column_name"])
        rows = await conn.fetch(
            f"SELECT DISTINCT lower((regexp_match(m, $1))[1]) AS address FROM ("  # noqa: S608
            f" SELECT (regexp_matches({column}::text, $2, 'g'))[1] AS m FROM {table}"
            f" WHERE {column}::text LIKE '%@%') found",
            f"^({_ADDRESS_IN_TEXT})$",
            f"({_ADDRESS_IN_TEXT})",
        )
        found.update(r["address"] for r in rows if r["address"])
    rows = await conn.fetch(
        "SELECT DISTINCT lower((regexp_matches(convert_from(payload, 'UTF8'), $1, 'g'))[1])"
        " AS address FROM outbox",
        f"({_ADDRESS_IN_TEXT})",
    )
    found.update(r["address"] for r in rows if r["address"])
    return {a for a in found if not is_pseudonym(a)}


async def apply_erasure(
    conn: asyncpg.Connection[Any], eraser: Eraser, erased: PersonErased
) -> dict[str, str]:
    """A consumer's part of ``pearls.person.erased``: register it, find the addresses this
    service holds among the event's hashes, and sweep them. Returns address -> pseudonym
    (empty when nothing was held: an unknown address, a repeated erasure, or one that
    came before the data, which the register then pseudonymises on arrival)."""
    erasure_id, at = erased.erasure_id, erased.requested_at
    if erased.scope == "application" and erased.application_id is not None:
        await register_application(conn, erased.application_id, erasure_id, at)
    else:
        await register_addresses(conn, erased.email_hashes, erasure_id, at)
    hide = eraser.matching(await addresses_held(conn), erased.email_hashes)
    await sweep(conn, hide)
    log.info("erasure_applied", erasure_id=str(erased.erasure_id), addresses=len(hide))
    return hide


def address_pattern(address: str) -> str:
    """A PostgreSQL regular expression matching the whole address, in any case."""
    escaped = "".join(c if c.isalnum() else "\\" + c for c in normalise(address))
    return f"(?<![A-Za-z0-9._%+-]){escaped}(?![A-Za-z0-9_-])(?!\\.[A-Za-z0-9])"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def sweep(conn: asyncpg.Connection[Any], hide: Mapping[str, str]) -> int:
    """Replace each address (normalised -> pseudonym) in every text, JSON and text-array
    column of the current schema's tables and in the outbox; names beside an erased
    address in JSON become ``(erased)``. Returns how many column values changed."""
    if not hide:
        return 0
    columns = await _text_columns(conn)
    changed = 0
    for address, pseudonym in hide.items():
        pattern = address_pattern(address)
        for col in columns:
            table, column = _ident(col["table_name"]), _ident(col["column_name"])
            cast = {"jsonb": "::jsonb", "json": "::json", "ARRAY": "::text[]"}.get(
                col["data_type"], ""
            )
            text = f"{column}::text" if cast else column
            result = await conn.execute(
                f"UPDATE {table} SET {column} = regexp_replace({text}, $1, $2, 'gi'){cast}"  # noqa: S608
                f" WHERE {text} ~* $1",
                pattern,
                pseudonym,
            )
            changed += int(result.split()[-1])
        changed += await _sweep_outbox(conn, pattern, pseudonym)
    changed += await _erase_names(conn, columns, set(hide.values()))
    return changed


async def _sweep_outbox(conn: asyncpg.Connection[Any], pattern: str, pseudonym: str) -> int:
    """Outbox rows keep the published payload (bytes) until purged; pending ones are
    published with the pseudonym."""
    result = await conn.execute(
        "UPDATE outbox SET"
        " payload = convert_to(regexp_replace(convert_from(payload, 'UTF8'), $1, $2, 'gi'),"
        " 'UTF8'),"
        " message_key = convert_to(regexp_replace(convert_from(message_key, 'UTF8'), $1, $2,"
        " 'gi'), 'UTF8')"
        " WHERE convert_from(payload, 'UTF8') ~* $1 OR convert_from(message_key, 'UTF8') ~* $1",
        pattern,
        pseudonym,
    )
    return int(result.split()[-1])


async def _erase_names(
    conn: asyncpg.Connection[Any], columns: Iterable[Any], pseudonyms: set[str]
) -> int:
    """In JSON values that now hold a pseudonym, the name beside it goes too."""
    changed = 0
    for col in columns:
        if col["data_type"] not in ("json", "jsonb"):
            continue
        table, column = _ident(col["table_name"]), _ident(col["column_name"])
        for pseudonym in pseudonyms:
            rows = await conn.fetch(
                f"SELECT ctid AS row_ref, {column}::text AS value FROM {table}"  # noqa: S608
                f" WHERE strpos({column}::text, $1) > 0",
                pseudonym,
            )
            for row in rows:
                before = json.loads(row["value"])
                after = scrub(before, {})
                if after != before:
                    await conn.execute(
                        f"UPDATE {table} SET {column} = $1::text::{col['data_type']}"  # noqa: S608
                        " WHERE ctid = $2",
                        json.dumps(after),
                        row["row_ref"],
                    )
                    changed += 1
    # Outbox payloads are JSON too.
    for pseudonym in pseudonyms:
        rows = await conn.fetch(
            "SELECT id, convert_from(payload, 'UTF8') AS value FROM outbox"
            " WHERE strpos(convert_from(payload, 'UTF8'), $1) > 0",
            pseudonym,
        )
        for row in rows:
            try:
                before = json.loads(row["value"])
            except ValueError:
                continue
            after = scrub(before, {})
            if after != before:
                await conn.execute(
                    "UPDATE outbox SET payload = $1 WHERE id = $2",
                    json.dumps(after, ensure_ascii=False).encode(),
                    row["id"],
                )
                changed += 1
    return changed
