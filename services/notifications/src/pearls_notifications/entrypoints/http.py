"""HTTP API: the coordinators' delivery log, resend and preferences; unsubscribe links.

Coordinator endpoints need ``Authorization: Bearer <token>``; the server keeps
only SHA-256 digests of the tokens (setting ``coordinators``, plus the
deprecated ``api_token_sha256`` and ``coordinator_tokens``) and compares digests in constant time
(``pearls_shared.tokens.TokenBook``). The unsubscribe endpoints are authorised
by the link's HMAC.
"""

from __future__ import annotations

import html
import uuid
from datetime import datetime
from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.responses import HTMLResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, EmailStr, Field

from pearls_notifications.adapters import repository as repo
from pearls_notifications.config import Settings
from pearls_notifications.domain import unsubscribe
from pearls_notifications.domain.model import OPTIONAL_CATEGORIES, Category, Mode
from pearls_notifications.service_layer import handlers
from pearls_shared.tokens import TokenBook

_bearer = HTTPBearer(auto_error=False, description="The coordinators' API token.")


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _pool(request: Request) -> asyncpg.Pool[Any]:
    pool: asyncpg.Pool[Any] = request.app.state.pool
    return pool


def require_coordinator(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    book: TokenBook[str] = request.app.state.coordinator_tokens
    # Compares with every configured digest (no early exit): timing tells nothing.
    if book.identify(credentials.credentials if credentials else "") is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="Authorization: a valid coordinator bearer token is required",
            headers={"WWW-Authenticate": "Bearer"},
        )


class DeliveryOut(BaseModel):
    """One e-mail: what caused it, to whom, and what became of it."""

    id: uuid.UUID
    event_id: str = Field(description="CloudEvents id of the causing event.")
    event_type: str
    recipient: str
    recipient_name: str
    language: str = Field(description="Language requested for the recipient.")
    template: str
    category: str = Field(description="essential | progress | sessions")
    message_id: str = Field(description="Deterministic Message-ID of the e-mail.")
    status: str = Field(
        description="pending | sent | failed | suppressed (opted out) | digest (held for the "
        "daily digest) | digested (went out in a digest)"
    )
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    smtp_code: int | None
    digest_id: uuid.UUID | None
    created_at: datetime
    sent_at: datetime | None
    failed_at: datetime | None

    @classmethod
    def of(cls, row: asyncpg.Record) -> DeliveryOut:
        return cls(**{k: row[k] for k in cls.model_fields})


class PreferencesOut(BaseModel):
    recipient: str
    categories: dict[str, str] = Field(
        description="Mode per non-essential category: immediate | digest | off.",
        examples=[{"progress": "digest", "sessions": "immediate"}],
    )


class PreferenceIn(BaseModel):
    category: Category = Field(description="progress or sessions (essential cannot change).")
    mode: Mode = Field(description="immediate, digest (one e-mail a day) or off.")


coordinator = APIRouter(tags=["coordinators"], dependencies=[Depends(require_coordinator)])


@coordinator.get(
    "/deliveries",
    summary="Delivery log",
    description="E-mails per recipient and/or per causing event, newest first.",
)
async def list_deliveries(
    request: Request,
    recipient: Annotated[str | None, Query(description="E-mail address.")] = None,
    event_id: Annotated[str | None, Query(description="CloudEvents id of the cause.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[DeliveryOut]:
    async with _pool(request).acquire() as conn:
        rows = await repo.list_deliveries(conn, recipient=recipient, event_id=event_id, limit=limit)
    return [DeliveryOut.of(r) for r in rows]


@coordinator.get("/deliveries/{delivery_id}", summary="One delivery", responses={404: {}})
async def get_delivery(request: Request, delivery_id: uuid.UUID) -> DeliveryOut:
    async with _pool(request).acquire() as conn:
        row = await repo.get_delivery(conn, delivery_id)
    if row is None:
        raise HTTPException(404, detail=f"delivery_id: {delivery_id} does not exist")
    return DeliveryOut.of(row)


@coordinator.post(
    "/deliveries/{delivery_id}/resend",
    summary="Resend a failed e-mail",
    description="Queues a failed e-mail again with a fresh retry budget and the same "
    "Message-ID. Only 'failed' deliveries can be resent (409 otherwise).",
    status_code=202,
    responses={404: {}, 409: {}},
)
async def resend(request: Request, delivery_id: uuid.UUID) -> DeliveryOut:
    async with _pool(request).acquire() as conn:
        try:
            row = await handlers.resend(conn, delivery_id)
        except handlers.NotFound as exc:
            raise HTTPException(404, detail=f"delivery_id: {exc}") from exc
        except handlers.Conflict as exc:
            raise HTTPException(409, detail=f"status: {exc}") from exc
    return DeliveryOut.of(row)


@coordinator.get("/preferences/{recipient}", summary="A recipient's mail preferences")
async def get_preferences(request: Request, recipient: EmailStr) -> PreferencesOut:
    async with _pool(request).acquire() as conn:
        stored = await repo.preferences_of(conn, recipient)
    return PreferencesOut(
        recipient=recipient.lower(),
        categories={
            c.value: stored.get(c.value, Mode.IMMEDIATE.value) for c in OPTIONAL_CATEGORIES
        },
    )


@coordinator.put(
    "/preferences/{recipient}",
    summary="Change a recipient's preference for one category",
    responses={422: {"description": "category 'essential' cannot be changed"}},
)
async def put_preference(
    request: Request, recipient: EmailStr, body: PreferenceIn
) -> PreferencesOut:
    async with _pool(request).acquire() as conn:
        try:
            await handlers.change_preference(conn, recipient, body.category, body.mode)
        except handlers.Conflict as exc:
            raise HTTPException(422, detail=str(exc)) from exc
    return await get_preferences(request, recipient)


# --- unsubscribe (RFC 8058) ---------------------------------------------------

public = APIRouter(tags=["recipients"])

_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>BSR Cultural Pearls - e-mail preferences</title></head>
<body style="font-family:sans-serif;max-width:40em;margin:2em auto">{body}</body></html>"""


def _verified(settings: Settings, recipient: str, category: str, token: str) -> Category:
    secret = settings.unsubscribe_key()
    cat = unsubscribe.verify(secret, recipient, category, token)
    if cat is None:
        raise HTTPException(
            400, detail="token: does not match recipient and category (link altered or outdated)"
        )
    return cat


@public.get(
    "/unsubscribe",
    summary="Confirmation page of an unsubscribe link",
    description="Shows what the link switches off and a button; a GET never changes anything "
    "(link scanners follow GETs).",
    response_class=HTMLResponse,
    responses={400: {}},
)
async def unsubscribe_page(
    request: Request, recipient: EmailStr, category: str, token: str
) -> HTMLResponse:
    cat = _verified(_settings(request), recipient, category, token)
    body = (
        f"<h1>Stop {html.escape(cat.value)} e-mails?</h1>"
        f"<p>{html.escape(recipient)} will no longer receive <b>{html.escape(cat.value)}</b> "
        "e-mails from BSR Cultural Pearls. Decisions and deadlines are always sent.</p>"
        '<form method="post"><input type="hidden" name="List-Unsubscribe" value="One-Click">'
        '<button type="submit">Unsubscribe</button></form>'
    )
    return HTMLResponse(_PAGE.format(body=body))


@public.post(
    "/unsubscribe",
    summary="One-click unsubscribe (RFC 8058)",
    description="Mail clients POST 'List-Unsubscribe=One-Click' to the URL of the "
    "List-Unsubscribe header; the signed query authorises the change.",
    response_class=HTMLResponse,
    responses={400: {}},
)
async def unsubscribe_post(
    request: Request,
    recipient: EmailStr,
    category: str,
    token: str,
) -> HTMLResponse:
    # The body ("List-Unsubscribe=One-Click", or the page's button) carries no authority:
    # the signed query does. It is not parsed, so any client's form encoding works.
    cat = _verified(_settings(request), recipient, category, token)
    async with _pool(request).acquire() as conn:
        await handlers.change_preference(conn, recipient, cat, Mode.OFF)
    body = (
        f"<h1>Unsubscribed</h1><p>{html.escape(recipient)} will no longer receive "
        f"<b>{html.escape(cat.value)}</b> e-mails. Essential mail still arrives.</p>"
    )
    return HTMLResponse(_PAGE.format(body=body))
