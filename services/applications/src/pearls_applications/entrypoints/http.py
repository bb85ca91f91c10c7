"""HTTP API: request -> command -> handler. Authentication is decided here.

Coordinators and reviewers send ``Authorization: Bearer <token>``; an
applicant sends its own applicant token the same way, and it opens only its
own application.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import create_model

from pearls_applications.adapters import repository as repo
from pearls_applications.domain.model import Application, Call, Criterion, Rubric
from pearls_applications.domain.review import Reviewer
from pearls_applications.entrypoints import schemas as s
from pearls_applications.service_layer.auth import Authenticator
from pearls_applications.service_layer.handlers import Applications, request_digest
from pearls_shared.errors import Conflict, Forbidden, Invalid, NotFound, Unauthorized
from pearls_shared.events.common import ContactPerson, CountryCode, ThemeSlug
from pearls_shared.http import (
    Limit,
    Offset,
    correlation_id,
    refusal_responses,
)
from pearls_shared.tokens import Principal

_bearer = HTTPBearer(
    auto_error=False,
    description="Coordinator or reviewer token, or the applicant token of one application.",
)
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
ApplicationId = Annotated[uuid.UUID, Path(description="Id of the application.")]
CallId = Annotated[uuid.UUID, Path(description="Id of the call.")]
_ERRORS = refusal_responses("No such call or application.")


# Async on purpose: FastAPI runs a plain ``def`` dependency in its thread pool, a
# thread hop (and GIL hand-over) on every request for one attribute read.
async def _service(request: Request) -> Applications:
    service: Applications = request.app.state.applications
    return service


def _auth(request: Request) -> Authenticator:
    auth: Authenticator = request.app.state.authenticator
    return auth


Service = Annotated[Applications, Depends(_service)]


async def _principal(request: Request, creds: Credentials) -> Principal | None:
    if creds is None:
        return None
    service = await _service(request)
    async with service.pool.acquire() as conn:
        return await _auth(request).identify(conn, creds.credentials)


def _require(role: str) -> Any:
    async def dependency(request: Request, creds: Credentials) -> Principal:
        if creds is None:
            raise Unauthorized(("header", "Authorization"), "bearer_token", "a token is required")
        principal = await _principal(request, creds)
        if principal is None:
            raise Unauthorized(("header", "Authorization"), "bearer_token", "unknown token")
        if principal.role != role:
            raise Forbidden(("header", "Authorization"), "role", f"only a {role} may do this")
        return principal

    return Depends(dependency)


Coordinator = Annotated[Principal, _require("coordinator")]
ReviewerCaller = Annotated[Principal, _require("reviewer")]


async def _applicant(request: Request, application_id: uuid.UUID, creds: Credentials) -> None:
    """Only the application's own token passes (a 404 hides whether it exists)."""
    if creds is None:
        raise Unauthorized(("header", "Authorization"), "bearer_token", "a token is required")
    async with (await _service(request)).pool.acquire() as conn:
        if not await Authenticator.owns(conn, application_id, creds.credentials):
            raise NotFound(("path", "application_id"), "exists", "no such application")


Applicant = Depends(_applicant)


def _call_out(call: Call) -> s.CallOut:
    return s.CallOut(
        call_id=call.id,
        title=call.title,
        description=call.description,
        opens_at=call.opens_at,
        closes_at=call.closes_at,
        status=call.status,
        places=call.places,
        themes=list(call.themes),
        eligible_countries=list(call.eligible_countries),
        population_min=call.population_min,
        population_max=call.population_max,
        rubric=s.RubricOut(
            scale_min=call.rubric.scale_min,
            scale_max=call.rubric.scale_max,
            criteria=[
                s.CriterionOut(key=c.key, weight=c.weight, label=c.label)
                for c in call.rubric.criteria
            ],
        ),
        reviews_required=call.reviews_required,
        conflict_same_country=call.conflict_same_country,
        public_url=call.public_url,
        closed_at=call.closed_at,
        closed_early=call.closed_early,
        scores_visible_to_applicants=call.scores_visible_to_applicants,
    )


def _application_out(app: Application, rank: int | None = None) -> s.ApplicationOut:
    fields = asdict(app)
    fields["application_id"] = fields.pop("id")
    del fields["token_sha256"]  # the applicant's token digest is no one's business
    fields["contacts"] = [c.model_dump(mode="json") for c in app.contacts]
    return s.ApplicationOut.model_validate({**fields, "rank": rank})


def _applicant_view(out: s.ApplicationOut, app: Application, call: Call) -> s.ApplicationOut:
    """What the applicant itself sees: score and rank only when the call allows it."""
    if call.shows_scores_to_applicant(app):
        return out
    return out.model_copy(update={"score": None, "rank": None, "scores_withheld": True})


# ContactPerson's checks of every field but the address, exactly as it declares them.
# The address was validated and normalised as an EmailStr by ContactIn (the same type,
# and normalising is idempotent): checking it again, the costliest check of a
# submission (IDNA rules per character of the domain), would change nothing.
_BESIDES_EMAIL: dict[str, Any] = {
    name: (field.annotation, field)
    for name, field in ContactPerson.model_fields.items()
    if name != "email"
}
_ContactBesidesEmail = create_model(
    "_ContactBesidesEmail", __config__=ContactPerson.model_config, **_BESIDES_EMAIL
)


def contact_person(contact: s.ContactIn) -> ContactPerson:
    """The event's contact from a validated request contact, its address not re-checked."""
    checked = _ContactBesidesEmail.model_validate(contact.model_dump(exclude={"email"}))
    return ContactPerson.model_construct(**dict(checked), email=contact.email)


def _domain_fields(body: s.ApplicationIn | s.ApplicationPatch) -> dict[str, Any]:
    fields = body.model_dump(exclude_unset=True, exclude_none=True)
    if "contacts" in fields and body.contacts is not None:
        fields["contacts"] = tuple(contact_person(c) for c in body.contacts)
    for name in ("themes", "languages"):
        if name in fields:
            fields[name] = tuple(fields[name])
    return fields


router = APIRouter(responses=_ERRORS)

# -- calls ------------------------------------------------------------------------


@router.post(
    "/calls",
    status_code=status.HTTP_201_CREATED,
    tags=["calls"],
    summary="Create a call (opens now, or at opens_at)",
    description="Coordinator only. The call opens at `opens_at` (or at once when omitted or"
    " past) and closes itself at `closes_at`; both emit events.",
)
async def create_call(body: s.CallIn, who: Coordinator, service: Service) -> s.CallOut:
    if body.closes_at <= service.clock():
        raise Invalid(("body", "closes_at"), "future", "closes_at must lie in the future")
    call = Call(
        id=uuid.uuid4(),
        title={str(lang): text for lang, text in body.title.items()},
        description={str(lang): text for lang, text in body.description.items()},
        opens_at=body.opens_at or service.clock(),
        closes_at=body.closes_at,
        places=body.places,
        themes=tuple(body.themes),
        eligible_countries=tuple(body.eligible_countries),
        population_min=body.population_min,
        population_max=body.population_max,
        rubric=Rubric(
            body.rubric.scale_min,
            body.rubric.scale_max,
            tuple(
                Criterion(c.key, c.weight, {str(lang): text for lang, text in c.label.items()})
                for c in body.rubric.criteria
            ),
        ),
        reviews_required=body.reviews_required,
        conflict_same_country=body.conflict_same_country,
        public_url=str(body.public_url) if body.public_url else None,
        scores_visible_to_applicants=body.scores_visible_to_applicants,
    )
    return _call_out(await service.create_call(call, who.actor, correlation_id()))


@router.get("/calls", tags=["calls"], summary="List calls (public)")
async def list_calls(
    service: Service,
    status_: Annotated[Literal["scheduled", "open", "closed"] | None, Query(alias="status")] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> list[s.CallOut]:
    async with service.pool.acquire() as conn:
        return [_call_out(c) for c in await repo.list_calls(conn, status_, limit, offset)]


@router.get("/calls/{call_id}", tags=["calls"], summary="Read a call (public)")
async def get_call(call_id: CallId, service: Service) -> s.CallOut:
    async with service.pool.acquire() as conn:
        return _call_out(await repo.load_call(conn, call_id))


@router.post("/calls/{call_id}/close", tags=["calls"], summary="Close a call early")
async def close_call(call_id: CallId, who: Coordinator, service: Service) -> s.CallOut:
    return _call_out(await service.close_call(call_id, who.actor, correlation_id()))


@router.get(
    "/calls/{call_id}/ranking",
    tags=["review"],
    summary="Ranking of the call's scored applications",
    description="Best weighted score first; ties go to the earlier submission.",
)
async def ranking(call_id: CallId, _: Coordinator, service: Service) -> list[s.RankingEntry]:
    async with service.pool.acquire() as conn:
        book = await repo.load_book(conn, call_id, None)
    return [
        s.RankingEntry(
            rank=i,
            application_id=a.id,
            city_name=a.city_name,
            country=a.country,
            status=a.status,
            score=a.score or 0.0,
            review_count=a.review_count,
        )
        for i, a in enumerate(book.ranking(), start=1)
    ]


@router.post(
    "/calls/{call_id}/assignments/auto",
    tags=["review"],
    summary="Spread applications evenly over the reviewer pool",
    description="Gives every application still in the race `reviews_required` reviewers,"
    " least-loaded first, skipping conflicts of interest (recorded in the audit trail).",
)
async def auto_assign(call_id: CallId, who: Coordinator, service: Service) -> s.SpreadOut:
    result = await service.auto_assign(call_id, who.actor)
    return s.SpreadOut(
        assigned=[s.AssignmentOut(application_id=a, reviewer_id=r) for a, r in result.assigned],
        refused=[
            s.RefusedOut(application_id=a, reviewer_id=r, reason=why)
            for a, r, why in result.refused
        ],
        short={str(k): v for k, v in result.short.items()},
    )


@router.get("/calls/{call_id}/audit", tags=["audit"], summary="Audit trail of a call")
async def call_audit(
    call_id: CallId, _: Coordinator, service: Service, limit: Limit = 100, offset: Offset = 0
) -> list[s.AuditOut]:
    async with service.pool.acquire() as conn:
        await repo.load_call(conn, call_id)  # 404 for an unknown call, not an empty trail
        rows = await repo.read_audit(
            conn, call_id=call_id, application_id=None, limit=limit, offset=offset
        )
    return [s.AuditOut.model_validate(dict(r)) for r in rows]


# -- applications ------------------------------------------------------------------


@router.post(
    "/calls/{call_id}/applications",
    status_code=status.HTTP_201_CREATED,
    tags=["applications"],
    summary="Submit an application (public)",
    description="Returns the application id and the secret applicant token. With an"
    " `Idempotency-Key` header a retry returns the first answer (header `Idempotent-Replayed:"
    " true`); the same key with another body is refused (422).",
)
async def submit(
    call_id: CallId,
    body: s.ApplicationIn,
    service: Service,
    response: Response,
    idempotency_key: Annotated[
        str | None,
        Header(
            pattern=r"^[\x21-\x7e]{8,255}$",
            description="Client-chosen key (8-255 printable ASCII, a UUID is ideal).",
        ),
    ] = None,
) -> s.Receipt:
    # The body's digest tells a retry from a reuse of its key: only needed with a key.
    digest = b""
    if idempotency_key is not None:
        canonical = json.dumps(body.model_dump(mode="json"), sort_keys=True).encode()
        digest = request_digest(canonical)
    result = await service.submit(
        call_id,
        _domain_fields(body),
        correlation_id(),
        idempotency_key=idempotency_key,
        request_hash=digest,
    )
    if result.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return s.Receipt(application_id=result.application_id, applicant_token=result.applicant_token)


@router.get(
    "/applications",
    tags=["applications"],
    summary="Search applications (coordinators)",
    description="Filters combine; best score first, with each application's rank in its call.",
)
async def search(
    _: Coordinator,
    service: Service,
    call_id: Annotated[uuid.UUID | None, Query()] = None,
    status_: Annotated[s.Status | None, Query(alias="status")] = None,
    country: Annotated[CountryCode | None, Query()] = None,
    theme: Annotated[ThemeSlug | None, Query()] = None,
    min_score: Annotated[float | None, Query(ge=0, le=100, allow_inf_nan=False)] = None,
    max_score: Annotated[float | None, Query(ge=0, le=100, allow_inf_nan=False)] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> s.ApplicationPage:
    async with service.pool.acquire() as conn:
        page = await repo.search_applications(
            conn,
            call_id=call_id,
            status=status_,
            country=country,
            theme=theme,
            min_score=min_score,
            max_score=max_score,
            limit=limit,
            offset=offset,
        )
    return s.ApplicationPage(
        items=[_application_out(a, rank) for a, rank in page.items],
        total=page.total,
        limit=limit,
        offset=offset,
    )


@router.get(
    "/applications/{application_id}",
    tags=["applications"],
    summary="Read an application",
    description="The applicant (its own token), a coordinator, or a reviewer assigned to it."
    " The applicant sees score and rank only as the call's `scores_visible_to_applicants`"
    " allows (by default once a decision was taken; `scores_withheld` says when they are"
    " hidden).",
)
async def read_application(
    application_id: ApplicationId, request: Request, creds: Credentials, service: Service
) -> s.ApplicationOut:
    if creds is None:
        raise Unauthorized(("header", "Authorization"), "bearer_token", "a token is required")
    async with service.pool.acquire() as conn:
        principal = await _auth(request).identify(conn, creds.credentials)
        staff = principal is not None and (
            principal.role == "coordinator"
            or principal.id in await repo.assignments_of(conn, application_id)
        )
        if not staff and not await Authenticator.owns(conn, application_id, creds.credentials):
            raise NotFound(("path", "application_id"), "exists", "no such application")
        app = await repo.load_application(conn, application_id)
        book = await repo.load_book(conn, app.call_id, None)
    out = _application_out(app, book.rank_of(application_id))
    return out if staff else _applicant_view(out, app, book.call)


@router.patch(
    "/applications/{application_id}",
    tags=["applications"],
    summary="Update an application (applicant, while the call is open)",
    description="While the call is open and the application is submitted, any field but"
    " the city and its country. The contact persons alone may be changed at any time while"
    " the application is submitted, accepted or waitlisted; a changed contact list is"
    " published as `pearls.application.contacts_changed`, so every later e-mail reaches the"
    " new contacts.",
    dependencies=[Applicant],
)
async def update_application(
    application_id: ApplicationId, body: s.ApplicationPatch, service: Service
) -> s.ApplicationOut:
    app = await service.update(application_id, _domain_fields(body), correlation_id())
    return _application_out(app)


@router.post(
    "/applications/{application_id}/withdraw",
    tags=["applications"],
    summary="Withdraw an application (applicant)",
    description="Allowed while submitted, waitlisted or accepted. An accepted participant's"
    " place goes to the best-ranked waitlisted application at once.",
    dependencies=[Applicant],
)
async def withdraw(
    application_id: ApplicationId, service: Service, body: s.WithdrawIn | None = None
) -> s.ApplicationOut:
    reason = body.reason if body else None
    app = await service.withdraw(application_id, reason, correlation_id())
    async with service.pool.acquire() as conn:
        call = await repo.load_call(conn, app.call_id)
    return _applicant_view(_application_out(app), app, call)


# -- review --------------------------------------------------------------------


@router.post(
    "/reviewers",
    status_code=status.HTTP_201_CREATED,
    tags=["review"],
    summary="Register a reviewer (returns its token once)",
)
async def register_reviewer(
    body: s.ReviewerIn, who: Coordinator, service: Service
) -> s.ReviewerRegistered:
    reviewer = Reviewer(body.reviewer_id, body.name, body.city_name, body.country)
    token = await service.register_reviewer(reviewer, who.actor)
    return s.ReviewerRegistered(
        reviewer_id=reviewer.id,
        name=reviewer.name,
        city_name=reviewer.city_name,
        country=reviewer.country,
        token=token,
    )


@router.get("/reviewers", tags=["review"], summary="The reviewer pool")
async def list_reviewers(_: Coordinator, service: Service) -> list[s.ReviewerOut]:
    async with service.pool.acquire() as conn:
        pool = await service.reviewers(conn)
    return [
        s.ReviewerOut(reviewer_id=r.id, name=r.name, city_name=r.city_name, country=r.country)
        for r in sorted(pool.values(), key=lambda r: r.id)
    ]


@router.get("/reviewers/me/assignments", tags=["review"], summary="Applications assigned to me")
async def my_assignments(who: ReviewerCaller, service: Service) -> list[s.MyAssignment]:
    async with service.pool.acquire() as conn:
        rows = await repo.assignments_for_reviewer(conn, who.id)
    return [s.MyAssignment.model_validate(dict(r)) for r in rows]


@router.post(
    "/applications/{application_id}/assignments",
    status_code=status.HTTP_201_CREATED,
    tags=["review"],
    summary="Assign a reviewer",
    description="Refused with 409 (`conflict_of_interest`, reason in `msg`) when the reviewer"
    " comes from the applicant city, or from its country when the call says so; the refusal"
    " is recorded in the audit trail.",
)
async def assign(
    application_id: ApplicationId, body: s.AssignIn, who: Coordinator, service: Service
) -> s.AssignmentOut:
    result = await service.assign(application_id, body.reviewer_id, who.actor)
    if result.refused_reason:
        raise Conflict(
            ("body", "reviewer_id"),
            "conflict_of_interest",
            f"conflict of interest: {result.refused_reason}",
        )
    return s.AssignmentOut(application_id=application_id, reviewer_id=body.reviewer_id)


@router.post(
    "/applications/{application_id}/reviews",
    status_code=status.HTTP_201_CREATED,
    tags=["review"],
    summary="Score an application (assigned reviewer, after the call closed)",
    description="Refused with 403 `conflict_of_interest` (reason in `msg`, recorded in the"
    " audit trail) when the reviewer is conflicted now, even if the assignment was not;"
    " with 409 `status` when the application is withdrawn or rejected.",
)
async def review(
    application_id: ApplicationId, body: s.ReviewIn, who: ReviewerCaller, service: Service
) -> s.ReviewRecorded:
    score = await service.review(
        application_id, who, dict(body.scores), body.comment, correlation_id()
    )
    return s.ReviewRecorded(application_id=application_id, application_score=score)


@router.get(
    "/applications/{application_id}/reviews", tags=["review"], summary="Reviews of an application"
)
async def reviews(
    application_id: ApplicationId, _: Coordinator, service: Service
) -> list[s.ReviewOut]:
    async with service.pool.acquire() as conn:
        await repo.call_of(conn, application_id)  # 404 for an unknown application
        rows = await repo.reviews_of(conn, application_id)
    return [s.ReviewOut.model_validate(dict(r)) for r in rows]


# -- erasure ----------------------------------------------------------------------


@router.post(
    "/erasures",
    status_code=status.HTTP_202_ACCEPTED,
    tags=["erasure"],
    summary="Erase a person's or a closed application's contact data (GDPR art. 17)",
    description="Coordinators only. With `email`: every application's contact with that"
    " address is pseudonymised here at once; with `application_id`: the contacts of that"
    " application, which must be withdrawn or rejected (409 `status` otherwise). One"
    " `pearls.person.erased` event (keyed hashes of the addresses, never the addresses)"
    " tells the other services, which pseudonymise their copies when they read it: hence"
    " 202. An address no application holds is still published (mentors and jurors are"
    " known elsewhere).",
)
async def erase(body: s.ErasureIn, who: Coordinator, service: Service) -> s.ErasureOut:
    done = await service.erase(
        email=str(body.email) if body.email is not None else None,
        application_id=body.application_id,
        actor=who.actor,
        correlation_id=correlation_id(),
    )
    return s.ErasureOut(
        erasure_id=done.erasure_id,
        scope="person" if done.scope == "person" else "application",
        requested_at=done.requested_at,
        applications=done.applications,
    )


# -- decisions and audit ----------------------------------------------------------


@router.post(
    "/applications/{application_id}/decision",
    tags=["decisions"],
    summary="Accept, reject (reason required) or waitlist",
    description="After the call closed. Never more accepted than places (409 `places_limit`);"
    " a database check that refuses the decision is answered with its own rule, an unknown"
    " one with 409 `constraint`.",
)
async def decide(
    application_id: ApplicationId, body: s.DecisionIn, who: Coordinator, service: Service
) -> s.ApplicationOut:
    app = await service.decide(
        application_id,
        body.decision,
        who.actor,
        correlation_id(),
        reason_code=body.reason_code,
        reason=body.reason,
    )
    return _application_out(app)


@router.get(
    "/applications/{application_id}/audit", tags=["audit"], summary="Audit trail of an application"
)
async def application_audit(
    application_id: ApplicationId,
    _: Coordinator,
    service: Service,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[s.AuditOut]:
    async with service.pool.acquire() as conn:
        await repo.call_of(conn, application_id)  # 404 for an unknown application
        rows = await repo.read_audit(
            conn, call_id=None, application_id=application_id, limit=limit, offset=offset
        )
    return [s.AuditOut.model_validate(dict(r)) for r in rows]
