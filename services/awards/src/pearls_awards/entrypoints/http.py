"""HTTP API: request -> command -> handler (writes) or query (reads); the public showcase.

Coordinators and jurors send ``Authorization: Bearer <token>``. The showcase
(HTML, JSON, Atom) is public and carries no personal data; it answers with an
ETag so partner sites can poll it cheaply.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request, Response, status
from fastapi.responses import HTMLResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from pearls_awards.adapters.showcase import Showcase, etag
from pearls_awards.domain import ranking
from pearls_awards.domain.ranking import Criterion
from pearls_awards.domain.rounds import Eligibility, Juror, Round
from pearls_awards.domain.view import ParticipantView
from pearls_awards.entrypoints import schemas as s
from pearls_awards.service_layer.auth import Authenticator, Principal
from pearls_awards.service_layer.handlers import Awards
from pearls_awards.service_layer.queries import Queries
from pearls_shared.errors import Forbidden, Invalid, NotFound, Unauthorized
from pearls_shared.http import Limit, Offset, bearer_token, correlation_id, refusal_responses

_bearer = HTTPBearer(auto_error=False, description="Coordinator token, or a juror's token.")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
RoundId = Annotated[uuid.UUID, Path(description="Id of the award round.")]
ParticipantId = Annotated[uuid.UUID, Path(description="Id of the participant.")]
_ERRORS = refusal_responses("No such round, nominee, participant or pearl.")


def _service(request: Request) -> Awards:
    service: Awards = request.app.state.awards
    return service


def _queries(request: Request) -> Queries:
    queries: Queries = request.app.state.queries
    return queries


def _showcase(request: Request) -> Showcase:
    showcase: Showcase = request.app.state.showcase
    return showcase


Service = Annotated[Awards, Depends(_service)]
Read = Annotated[Queries, Depends(_queries)]
Public = Annotated[Showcase, Depends(_showcase)]


async def _caller(request: Request, creds: Credentials) -> Principal:
    auth: Authenticator = request.app.state.authenticator
    principal = await auth.identify(bearer_token(creds))
    if principal is None:
        raise Unauthorized(("header", "Authorization"), "bearer_token", "unknown token")
    return principal


async def _coordinator(who: Annotated[Principal, Depends(_caller)]) -> Principal:
    if who.role != "coordinator":
        raise Forbidden(("header", "Authorization"), "role", "only a coordinator may do this")
    return who


Caller = Annotated[Principal, Depends(_caller)]
Coordinator = Annotated[Principal, Depends(_coordinator)]


def _round_out(r: Round) -> s.RoundOut:
    return s.RoundOut(
        round_id=r.round_id,
        title=r.title,
        opened_at=r.opened_at,
        closes_at=r.closes_at,
        status=r.status,
        criteria=[
            s.CriterionOut(
                criterion_id=c.criterion_id,
                name=r.criterion_names.get(c.criterion_id, {}),
                weight=c.weight,
                scale_min=c.scale_min,
                scale_max=c.scale_max,
            )
            for c in r.criteria
        ],
        eligibility=s.EligibilityIn(
            plan_approved_required=r.eligibility.plan_approved_required,
            min_milestone_share=r.eligibility.min_milestone_share,
            call_ids=list(r.eligibility.call_ids),
        ),
        awards_count=r.awards_count,
        per_country=r.per_country,
        additional_award_allowed=r.additional_award_allowed,
        tight_margin=r.tight_margin,
        normalise=r.normalise,
        tie_break_rule=ranking.TIE_BREAK_RULE,
        jurors=[_juror_out(j) for j in r.jurors],
        closed_at=r.closed_at,
    )


def _juror_out(j: Juror) -> s.JurorOut:
    return s.JurorOut(
        juror_id=j.juror_id,
        name=j.name,
        email=j.email,
        language=j.language,
        city_name=j.city_name,
        country=j.country,
    )


def _participant_out(v: ParticipantView) -> s.ParticipantOut:
    return s.ParticipantOut(
        participant_id=v.participant_id,
        city_name=v.city_name,
        country=v.country,
        themes=list(v.themes),
        withdrawn=v.withdrawn_at is not None,
        plan_status=v.plan_status,
        milestones_reached=v.milestones_reached,
        milestones_total=v.milestones_total,
        milestones_overdue=len(v.overdue),
        current_mentor_id=v.current_mentor_id,
    )


router = APIRouter(responses=_ERRORS)

# -- rounds -------------------------------------------------------------------------------


@router.post(
    "/rounds",
    status_code=status.HTTP_201_CREATED,
    tags=["rounds"],
    summary="Open an award round (criteria, eligibility, awards, quota, margin, jury)",
    description="Coordinator only. Returns each juror's token once. Emits"
    " `pearls.award.round_opened`; participants eligible already are nominated at once"
    " (`pearls.award.nominated`), later ones as soon as events make them eligible.",
)
async def open_round(body: s.RoundIn, who: Coordinator, service: Service) -> s.OpenedOut:
    round_ = Round(
        round_id=uuid.uuid4(),
        title={str(k): v for k, v in body.title.items()},
        opened_at=service.clock(),
        closes_at=body.closes_at,
        criteria=tuple(
            Criterion(c.criterion_id, c.weight, c.scale_min, c.scale_max) for c in body.criteria
        ),
        criterion_names={
            c.criterion_id: {str(k): v for k, v in c.name.items()} for c in body.criteria
        },
        eligibility=Eligibility(
            plan_approved_required=body.eligibility.plan_approved_required,
            min_milestone_share=body.eligibility.min_milestone_share,
            call_ids=tuple(body.eligibility.call_ids),
        ),
        awards_count=body.awards_count,
        per_country=body.per_country,
        additional_award_allowed=body.additional_award_allowed,
        tight_margin=body.tight_margin,
        normalise=body.normalise,
        jurors=tuple(
            Juror(
                juror_id=uuid.uuid4(),
                name=j.name,
                email=str(j.email),
                language=j.language,
                city_name=j.city_name,
                country=j.country,
                mentor_id=j.mentor_id,
            )
            for j in body.jurors
        ),
    )
    if round_.closes_at <= service.clock():
        raise Invalid(("body", "closes_at"), "future", "the scoring deadline must lie ahead")
    opened, tokens, nominated = await service.open_round(round_, who.actor, correlation_id())
    base = _round_out(opened)
    return s.OpenedOut(
        **base.model_dump(),
        juror_tokens=[
            s.JurorTokenOut(**_juror_out(j).model_dump(), token=tokens[j.juror_id])
            for j in opened.jurors
        ],
        nominated=nominated,
    )


@router.get("/rounds", tags=["rounds"], summary="Award rounds (coordinator)")
async def list_rounds(
    who: Coordinator, read: Read, limit: Limit = 50, offset: Offset = 0
) -> list[s.RoundOut]:
    return [_round_out(r) for r in await read.rounds(limit, offset)]


async def _visible_round(read: Queries, round_id: uuid.UUID, who: Principal) -> Round:
    round_ = await read.round(round_id)
    if round_ is None or (who.role == "juror" and who.round_id != round_id):
        raise NotFound(("path", "round_id"), "exists", "no such round")
    return round_


@router.get("/rounds/{round_id}", tags=["rounds"], summary="One round (coordinator or its jurors)")
async def get_round(round_id: RoundId, who: Caller, read: Read) -> s.RoundOut:
    return _round_out(await _visible_round(read, round_id, who))


@router.get(
    "/rounds/{round_id}/nominees",
    tags=["rounds"],
    summary="Nominees of a round (coordinator or its jurors)",
)
async def nominees(round_id: RoundId, who: Caller, read: Read) -> list[s.NomineeOut]:
    await _visible_round(read, round_id, who)
    return [
        s.NomineeOut(
            participant_id=n.participant_id,
            city_name=v.city_name,
            country=v.country,
            nominated_at=n.nominated_at,
            nominated_by=n.nominated_by,
            statement=n.statement,
            milestones_reached=v.milestones_reached,
            milestones_total=v.milestones_total,
            plan_status=v.plan_status,
        )
        for n, v in await read.nominees(round_id)
    ]


@router.post(
    "/rounds/{round_id}/nominations",
    status_code=status.HTTP_201_CREATED,
    tags=["rounds"],
    summary="Nominate a participant with a statement (coordinator)",
    description="An ineligible participant is refused (409) with the eligibility rule that"
    " failed as `type`. Emits `pearls.award.nominated`.",
)
async def nominate(
    round_id: RoundId, body: s.NominationIn, who: Coordinator, service: Service
) -> dict[str, str]:
    await service.nominate(
        round_id, body.participant_id, body.statement, who.actor, correlation_id()
    )
    return {"status": "nominated"}


@router.get(
    "/rounds/{round_id}/exclusions",
    tags=["jury"],
    summary="Jurors excluded from scoring a nominee, and why (coordinator)",
    description="Derived, never declared: a juror who mentored the participant (from"
    " mentoring's events) or comes from its city.",
)
async def exclusions(round_id: RoundId, who: Coordinator, service: Service) -> list[s.ExclusionOut]:
    return [
        s.ExclusionOut(
            juror_id=e.juror_id,
            participant_id=e.participant_id,
            reason=e.reason,
            detail=e.detail,
        )
        for e in await service.exclusions(round_id)
    ]


@router.put(
    "/rounds/{round_id}/nominees/{participant_id}/scores",
    tags=["jury"],
    summary="Score a nominee on every criterion (a juror of the round)",
    description="Until the scoring deadline; a later submission replaces the earlier one. A"
    " juror in conflict with the nominee is refused (403 `conflict_of_interest`).",
)
async def score(
    round_id: RoundId,
    participant_id: ParticipantId,
    body: s.ScoresIn,
    who: Caller,
    service: Service,
) -> dict[str, str]:
    if who.role != "juror" or who.round_id != round_id:
        raise Forbidden(("header", "Authorization"), "juror", "only this round's jurors score")
    await service.score(round_id, uuid.UUID(who.id), participant_id, body.scores)
    return {"status": "scored"}


def _result_out(result: ranking.Result, excl: list[Any], final: bool) -> s.ResultOut:
    return s.ResultOut(
        status="final" if final else "provisional",
        tie_break_rule=result.tie_break_rule,
        standings=[s.StandingOut.model_validate(asdict(x)) for x in result.standings],
        winners=[s.WinnerOut.model_validate(asdict(w)) for w in result.winners],
        runners_up=[s.RunnerUpOut.model_validate(asdict(r)) for r in result.runners_up],
        exclusions=[
            s.ExclusionOut(
                juror_id=e.juror_id,
                participant_id=e.participant_id,
                reason=e.reason,
                detail=e.detail,
            )
            for e in excl
        ],
    )


@router.get(
    "/rounds/{round_id}/result",
    tags=["rounds"],
    summary="The ranking with why each winner wins and each runner-up does not (coordinator)",
    description="Provisional while the round is open, final once closed.",
)
async def result(round_id: RoundId, who: Coordinator, service: Service, read: Read) -> s.ResultOut:
    round_ = await read.round(round_id)
    if round_ is None:
        raise NotFound(("path", "round_id"), "exists", "no such round")
    if round_.status == "closed":
        record = await read.final_result(round_id)
        assert record is not None
        return s.ResultOut.model_validate({"status": "final", **record})
    provisional = await service.standings(round_id)
    return _result_out(provisional, await service.exclusions(round_id), final=False)


@router.post(
    "/rounds/{round_id}/close",
    tags=["rounds"],
    summary="Close the round: rank, grant, publish (coordinator)",
    description="Top scores win, at most one per country; when the next score is within the"
    " tight margin of the last regular winner, one additional award exempt from the country"
    " rule. Emits `pearls.award.granted` per winner and `pearls.award.round_closed`."
    " Closing twice is refused (409 `round_open`).",
)
async def close(
    round_id: RoundId, body: s.CloseIn, who: Coordinator, service: Service, read: Read
) -> s.ResultOut:
    closed = await service.close(
        round_id,
        who.actor,
        correlation_id(),
        citations={
            pid: {str(k): v for k, v in text.items()} for pid, text in body.citations.items()
        },
        grant_additional=body.grant_additional,
    )
    return _result_out(closed.result, await read.exclusions(round_id), final=True)


@router.post(
    "/rounds/{round_id}/awards/{participant_id}/revoke",
    tags=["rounds"],
    summary="Revoke an award, with a reason (coordinator)",
    description="The pearl leaves the showcase; emits `pearls.award.revoked`.",
)
async def revoke(
    round_id: RoundId,
    participant_id: ParticipantId,
    body: s.RevokeIn,
    who: Coordinator,
    service: Service,
) -> dict[str, str]:
    await service.revoke(round_id, participant_id, body.reason, who.actor, correlation_id())
    return {"status": "revoked"}


# -- the participants' view ------------------------------------------------------------------


@router.get("/participants", tags=["participants"], summary="The view built from events")
async def participants(
    who: Coordinator, read: Read, limit: Limit = 50, offset: Offset = 0
) -> list[s.ParticipantOut]:
    return [_participant_out(v) for v in await read.participants(limit, offset)]


@router.get("/participants/{participant_id}", tags=["participants"], summary="One participant")
async def participant(
    participant_id: ParticipantId, who: Coordinator, read: Read
) -> s.ParticipantOut:
    view = await read.participant(participant_id)
    if view is None or not view.known:
        raise NotFound(("path", "participant_id"), "exists", "no such participant")
    return _participant_out(view)


# -- the public showcase ----------------------------------------------------------------------


def _cached(request: Request, body: bytes, media_type: str) -> Response:
    """Strong ETag, 304 when the partner site has it already, short public caching."""
    tag = etag(body)
    max_age: int = request.app.state.showcase_max_age_s
    headers = {"ETag": tag, "Cache-Control": f"public, max-age={max_age}"}
    wanted = request.headers.get("if-none-match", "")
    if tag in {t.strip() for t in wanted.split(",")} or wanted.strip() == "*":
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=media_type, headers=headers)


_CACHED: dict[int | str, dict[str, Any]] = {
    304: {"description": "Not modified (the ETag matched If-None-Match)."}
}


@router.get(
    "/showcase",
    tags=["showcase"],
    summary="The Baltic Sea cultural pearls (public HTML page)",
    response_class=HTMLResponse,
    responses=_CACHED,
)
async def showcase_page(request: Request, read: Read, page: Public) -> Response:
    html = page.index_html(await read.pearls())
    return _cached(request, html.encode(), "text/html; charset=utf-8")


@router.get(
    "/showcase.json",
    tags=["showcase"],
    summary="The pearls as JSON (public, for partner websites)",
    responses=_CACHED,
)
async def showcase_json(request: Request, read: Read, page: Public) -> Response:
    pearls = [
        s.PearlOut(
            slug=p.slug,
            url=page.pearl_url(p),
            city_name=p.city_name,
            country=p.country,
            year=p.year,
            round_id=p.round_id,
            round_title=p.round_title,
            rank=p.rank,
            additional_award=p.additional_award,
            citation=p.citation,
            themes=list(p.themes),
            achievements=list(p.achievements),
            granted_at=p.granted_at,
        )
        for p in await read.pearls()
    ]
    body = ("[" + ",".join(p.model_dump_json() for p in pearls) + "]").encode()
    return _cached(request, body, "application/json")


@router.get(
    "/showcase/feed.atom",
    tags=["showcase"],
    summary="New pearls as an Atom feed (public)",
    response_class=Response,
    responses={**_CACHED, 200: {"content": {"application/atom+xml": {}}}},
)
async def showcase_feed(request: Request, read: Read, page: Public) -> Response:
    return _cached(request, page.atom(await read.pearls()), "application/atom+xml")


@router.get(
    "/showcase/{slug}",
    tags=["showcase"],
    summary="One pearl's page (public HTML)",
    response_class=HTMLResponse,
    responses=_CACHED,
)
async def pearl_page(
    request: Request,
    slug: Annotated[str, Path(max_length=120, pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$")],
    read: Read,
    page: Public,
) -> Response:
    found = next((p for p in await read.pearls() if p.slug == slug), None)
    if found is None:
        raise NotFound(("path", "slug"), "exists", "no such pearl")
    return _cached(request, page.pearl_html(found).encode(), "text/html; charset=utf-8")
