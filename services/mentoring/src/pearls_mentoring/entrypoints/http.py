"""HTTP API: request -> command -> handler (writes) or query (reads).

Coordinators and mentors send ``Authorization: Bearer <token>``; a participant
sends the applicant token it got from the applications service, which opens
only its own participant record and plan. A mentor sees only its own
participants.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from pearls_mentoring.adapters import repository as repo
from pearls_mentoring.domain.model import Mentor
from pearls_mentoring.domain.plans import MeasureDraft, MilestoneDraft, PlanDraft
from pearls_mentoring.domain.sessions import local_to_aware, zone
from pearls_mentoring.entrypoints import schemas as s
from pearls_mentoring.service_layer.auth import Authenticator, Principal
from pearls_mentoring.service_layer.handlers import Mentoring
from pearls_mentoring.service_layer.queries import Queries
from pearls_shared.errors import Forbidden, Invalid, NotFound, Unauthorized
from pearls_shared.events.mentoring import MatchExplanation
from pearls_shared.http import (
    Limit,
    Offset,
    bearer_token,
    correlation_id,
    refusal_responses,
)

_bearer = HTTPBearer(
    auto_error=False, description="Coordinator or mentor token, or a participant's applicant token."
)
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
ParticipantId = Annotated[uuid.UUID, Path(description="Id of the participant (= application id).")]
MentorId = Annotated[uuid.UUID, Path(description="Id of the mentor.")]
SessionId = Annotated[uuid.UUID, Path(description="Id of the session.")]
_ERRORS = refusal_responses("No such participant, mentor, plan or session.")


def _service(request: Request) -> Mentoring:
    service: Mentoring = request.app.state.mentoring
    return service


def _queries(request: Request) -> Queries:
    queries: Queries = request.app.state.queries
    return queries


def _auth(request: Request) -> Authenticator:
    auth: Authenticator = request.app.state.authenticator
    return auth


Service = Annotated[Mentoring, Depends(_service)]
Read = Annotated[Queries, Depends(_queries)]


async def _staff(request: Request, creds: Credentials) -> Principal:
    principal = await _auth(request).identify(bearer_token(creds))
    if principal is None:
        raise Unauthorized(("header", "Authorization"), "bearer_token", "unknown token")
    return principal


async def _coordinator(who: Annotated[Principal, Depends(_staff)]) -> Principal:
    if who.role != "coordinator":
        raise Forbidden(("header", "Authorization"), "role", "only a coordinator may do this")
    return who


Staff = Annotated[Principal, Depends(_staff)]
Coordinator = Annotated[Principal, Depends(_coordinator)]


async def _mentor_caller(who: Staff) -> Principal:
    if who.role != "mentor":
        raise Forbidden(("header", "Authorization"), "role", "only a mentor may do this")
    return who


MentorCaller = Annotated[Principal, Depends(_mentor_caller)]


async def _applicant(request: Request, participant_id: ParticipantId, creds: Credentials) -> None:
    """Only the participant's own applicant token passes (a 404 hides whether it exists)."""
    if not await _auth(request).owns(participant_id, bearer_token(creds)):
        raise NotFound(("path", "participant_id"), "exists", "no such participant")


Applicant = Depends(_applicant)

Viewer = Literal["coordinator", "mentor", "applicant"]


async def _viewer(request: Request, participant_id: ParticipantId, creds: Credentials) -> Viewer:
    """Coordinators, the participant's current mentor, or the participant itself."""
    token = bearer_token(creds)
    auth = _auth(request)
    principal = await auth.identify(token)
    if principal is not None and principal.role == "coordinator":
        return "coordinator"
    if principal is not None and principal.mentor_id is not None:
        view = await _queries(request).participant(participant_id)
        if view and view.assignment and view.assignment.mentor_id == principal.mentor_id:
            return "mentor"
        raise Forbidden(
            ("path", "participant_id"), "own_participant", "this is not one of your participants"
        )
    if await auth.owns(participant_id, token):
        return "applicant"
    raise NotFound(("path", "participant_id"), "exists", "no such participant")


ParticipantViewer = Annotated[Viewer, Depends(_viewer)]


def _mentor_out(m: Mentor) -> s.MentorOut:
    return s.MentorOut(
        mentor_id=m.id,
        kind=m.kind,
        name=m.name,
        email=m.email,
        language=m.language,
        languages=list(m.languages),
        country=m.country,
        city_name=m.city_name,
        organisation=m.organisation,
        capacity=m.capacity,
        load=m.load,
        themes=list(m.themes),
        status=m.status,
        registered_at=m.registered_at,
    )


def _participant_out(v: repo.ParticipantView) -> s.ParticipantOut:
    p, a = v.participant, v.assignment
    state: Literal["matched", "waiting", "withdrawn"] = (
        "withdrawn" if p.status == "withdrawn" else "matched" if a else "waiting"
    )
    waiting = (
        s.WaitingOut(reasons=list(p.unmatched_reasons), summary=p.unmatched_summary or "")
        if state == "waiting" and p.unmatched_reasons
        else None
    )
    return s.ParticipantOut(
        participant_id=p.id,
        call_id=p.call_id,
        city_name=p.city_name,
        country=p.country,
        themes=list(p.themes),
        languages=list(p.languages),
        contacts=list(p.contacts),
        status=state,
        mentor=s.MentorBrief(mentor_id=a.mentor_id, name=v.mentor_name) if a else None,
        assigned_at=a.assigned_at if a else None,
        explanation=MatchExplanation.model_validate(a.explanation) if a else None,
        overridden_by_coordinator=a.overridden if a else False,
        waiting=waiting,
        plan_status=v.plan_status,
    )


def _session_out(row: repo.SessionRow) -> s.SessionOut:
    return s.SessionOut(
        session_id=row.session_id,
        title=row.title,
        language=row.language,
        time_zone=row.time_zone,
        # Shown in the session's own zone: what participants read on their invitation.
        starts_at=row.starts_at.astimezone(zone(row.time_zone)),
        ends_at=row.ends_at.astimezone(zone(row.time_zone)),
        location=row.location,
        online_url=row.online_url,
        themes=list(row.themes),
        agenda=list(row.agenda),
        host_mentor_ids=list(row.hosts),
        participant_ids=list(row.invited),
        attended=list(row.attended) if row.attended is not None else None,
        notes=row.notes,
    )


def _practice_out(e: repo.PlaybookEntry) -> s.PracticeOut:
    return s.PracticeOut.model_validate(asdict(e))


router = APIRouter(responses=_ERRORS)

# -- mentors ---------------------------------------------------------------------------


@router.post(
    "/mentors",
    status_code=status.HTTP_201_CREATED,
    tags=["mentors"],
    summary="Register a mentor (national expert or pearl city)",
    description="Coordinator only. Returns the mentor's bearer token once. Emits"
    " `pearls.mentor.registered`; waiting participants are matched on the next run.",
)
async def register_mentor(
    body: s.MentorIn, who: Coordinator, service: Service
) -> s.MentorRegisteredOut:
    mentor = Mentor(
        id=uuid.uuid4(),
        kind=body.kind,
        name=body.name,
        email=str(body.email),
        language=body.language,
        languages=tuple(body.languages),
        country=body.country,
        city_name=body.city_name,
        organisation=body.organisation,
        capacity=body.capacity,
        themes=tuple(body.themes),
    )
    mentor, token = await service.register_mentor(mentor, who.actor, correlation_id())
    return s.MentorRegisteredOut(**_mentor_out(mentor).model_dump(), token=token)


@router.get("/mentors", tags=["mentors"], summary="List mentors with their load")
async def list_mentors(
    who: Coordinator, read: Read, limit: Limit = 50, offset: Offset = 0
) -> list[s.MentorOut]:
    return [_mentor_out(m) for m in await read.mentors(limit, offset)]


@router.get("/mentors/{mentor_id}", tags=["mentors"], summary="One mentor (coordinator or self)")
async def get_mentor(mentor_id: MentorId, who: Staff, read: Read) -> s.MentorOut:
    if who.role == "mentor" and who.mentor_id != mentor_id:
        raise Forbidden(("path", "mentor_id"), "self", "a mentor sees only its own record")
    mentor = await read.mentor(mentor_id)
    if mentor is None:
        raise NotFound(("path", "mentor_id"), "exists", "no such mentor")
    return _mentor_out(mentor)


@router.post(
    "/mentors/{mentor_id}/token",
    tags=["mentors"],
    summary="Issue a new token for a mentor (the old one stops working)",
    description="Coordinator only; audited. For a lost or leaked token.",
)
async def new_mentor_token(
    mentor_id: MentorId, who: Coordinator, service: Service
) -> s.MentorTokenOut:
    return s.MentorTokenOut(
        mentor_id=mentor_id, token=await service.new_mentor_token(mentor_id, who.actor)
    )


@router.post(
    "/mentors/{mentor_id}/pause",
    tags=["mentors"],
    summary="Pause a mentor; its participants are matched anew",
    description="Coordinator only. Emits `pearls.mentor.unassigned` (mentor_withdrawn) for each"
    " participant and `pearls.mentor.assigned` for each new match.",
)
async def pause_mentor(mentor_id: MentorId, who: Coordinator, service: Service) -> s.MentorOut:
    mentor = await service.set_mentor_status(mentor_id, "paused", who.actor, correlation_id())
    return _mentor_out(mentor)


@router.post("/mentors/{mentor_id}/resume", tags=["mentors"], summary="Resume a paused mentor")
async def resume_mentor(mentor_id: MentorId, who: Coordinator, service: Service) -> s.MentorOut:
    mentor = await service.set_mentor_status(mentor_id, "active", who.actor, correlation_id())
    return _mentor_out(mentor)


# -- participants and matching -----------------------------------------------------------


@router.get(
    "/participants",
    tags=["participants"],
    summary="Participants with their mentor and why (coordinators: all; mentors: their own)",
)
async def list_participants(
    who: Staff,
    read: Read,
    waiting: Annotated[bool | None, Query(description="Only those waiting for a mentor.")] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> list[s.ParticipantOut]:
    views = await read.participants(
        mentor_id=who.mentor_id, waiting=waiting, limit=limit, offset=offset
    )
    return [_participant_out(v) for v in views]


@router.get(
    "/participants/{participant_id}",
    tags=["participants"],
    summary="One participant, its mentor and the explanation of the match",
)
async def get_participant(
    participant_id: ParticipantId, viewer: ParticipantViewer, read: Read
) -> s.ParticipantOut:
    view = await read.participant(participant_id)
    if view is None:
        raise NotFound(("path", "participant_id"), "exists", "no such participant")
    return _participant_out(view)


@router.get(
    "/participants/{participant_id}/audit",
    tags=["participants"],
    summary="Audit trail of a participant (coordinator)",
)
async def audit(participant_id: ParticipantId, who: Coordinator, read: Read) -> list[s.AuditOut]:
    if await read.participant(participant_id) is None:
        raise NotFound(("path", "participant_id"), "exists", "no such participant")
    return [
        s.AuditOut(
            at=e.at, actor=e.actor, action=e.action, mentor_id=e.mentor_id, details=e.details
        )
        for e in await read.audit(participant_id)
    ]


@router.put(
    "/participants/{participant_id}/mentor",
    tags=["participants"],
    summary="Override the match: a coordinator chooses the mentor",
    description="Coordinator only; audited. The hard constraints (capacity, a shared working"
    " language, not the mentor's own city) still hold. Emits `pearls.mentor.unassigned`"
    " (reassigned) for the previous mentor and `pearls.mentor.assigned` with"
    " `overridden_by_coordinator`.",
)
async def override(
    participant_id: ParticipantId, body: s.OverrideIn, who: Coordinator, service: Service
) -> MatchExplanation:
    return await service.override(
        participant_id, body.mentor_id, body.reason, who.actor, correlation_id()
    )


@router.post(
    "/matching/runs",
    tags=["participants"],
    summary="Match every waiting participant now (optimal for the whole cohort)",
    description="Coordinator only. Runs the matching that otherwise runs every few seconds;"
    " settled pairs never move. Participants no mentor fits stay waiting and coordinators"
    " are told once (`pearls.mentor.unmatched`).",
)
async def run_matching(who: Coordinator, service: Service) -> s.MatchRunOut:
    run = await service.match_waiting(correlation_id())
    return s.MatchRunOut(
        matched=[
            s.MatchOut(
                participant_id=m.participant_id,
                mentor_id=m.mentor_id,
                explanation=MatchExplanation.model_validate(
                    {**asdict(m.explanation), "criteria": dict(m.explanation.criteria)}
                ),
            )
            for m in run.matched
        ],
        unmatched=[
            s.UnmatchedOut(
                participant_id=u.participant_id, reasons=list(u.reasons), summary=u.summary
            )
            for u in run.unmatched
        ],
    )


# -- action plans --------------------------------------------------------------------------


def _draft(body: s.PlanIn) -> PlanDraft:
    return PlanDraft(
        title=body.title,
        language=body.language,
        starts_on=body.starts_on,
        ends_on=body.ends_on,
        goals=tuple(body.goals),
        measures=tuple(
            MeasureDraft(
                measure_id=m.measure_id,
                title=m.title,
                description=m.description,
                theme=m.theme,
                responsible=m.responsible,
                starts_on=m.starts_on,
                ends_on=m.ends_on,
                share_consent=m.share_consent,
            )
            for m in body.measures
        ),
        milestones=tuple(
            MilestoneDraft(milestone_id=m.milestone_id, title=m.title, due_date=m.due_date)
            for m in body.milestones
        ),
    )


async def _plan_out(read: Queries, participant_id: uuid.UUID) -> s.PlanOut:
    view = await read.plan(participant_id)
    if view is None:
        raise NotFound(("path", "participant_id"), "plan_exists", "no plan submitted yet")
    return s.PlanOut(
        plan_id=view.plan.plan_id,
        participant_id=participant_id,
        status=view.plan.status,
        current_revision=view.plan.current_revision,
        approved_revision=view.plan.approved_revision,
        revisions=[
            s.RevisionOut(
                revision=r.revision,
                title=r.draft.title,
                language=r.draft.language,
                starts_on=r.draft.starts_on,
                ends_on=r.draft.ends_on,
                goals=list(r.draft.goals),
                measures=[s.MeasureOut.model_validate(asdict(m)) for m in r.draft.measures],
                milestones=[s.MilestoneIn.model_validate(asdict(m)) for m in r.draft.milestones],
                submitted_at=r.submitted_at,
                review_status=r.review_status,
                reviewed_at=r.reviewed_at,
                comments=r.comments,
            )
            for r in view.revisions
        ],
        milestones=[
            s.MilestoneOut(
                milestone_id=m.state.milestone_id,
                title=m.state.title,
                due_date=m.state.due_date,
                reached_at=m.state.reached_at,
                evidence_summary=m.state.evidence_summary,
                evidence_urls=list(m.evidence_urls),
                overdue_noticed_on=m.overdue_noticed_on,
                reports=m.reports,
            )
            for m in view.milestones
        ],
    )


@router.put(
    "/participants/{participant_id}/plan",
    tags=["plans"],
    summary="Submit the action plan, or a revision of it (the participant)",
    description="With the participant's applicant token. Until the mentor approves it, each"
    " submission is a new revision; earlier ones are kept. Emits `pearls.plan.submitted`.",
    dependencies=[Applicant],
)
async def submit_plan(
    participant_id: ParticipantId, body: s.PlanIn, service: Service, read: Read
) -> s.PlanOut:
    await service.submit_plan(participant_id, _draft(body), correlation_id())
    return await _plan_out(read, participant_id)


@router.get(
    "/participants/{participant_id}/plan",
    tags=["plans"],
    summary="The plan, every revision and progress per milestone",
)
async def get_plan(
    participant_id: ParticipantId, viewer: ParticipantViewer, read: Read
) -> s.PlanOut:
    return await _plan_out(read, participant_id)


@router.post(
    "/participants/{participant_id}/plan/reviews",
    tags=["plans"],
    summary="Approve the plan or ask for changes (the participant's mentor)",
    description="Emits `pearls.plan.approved` or `pearls.plan.changes_requested`.",
)
async def review_plan(
    participant_id: ParticipantId,
    body: s.ReviewIn,
    who: MentorCaller,
    service: Service,
    read: Read,
) -> s.PlanOut:
    assert who.mentor_id is not None
    await service.review_plan(
        participant_id, who.mentor_id, body.revision, body.decision, body.comments, correlation_id()
    )
    return await _plan_out(read, participant_id)


@router.post(
    "/participants/{participant_id}/plan/milestones/{milestone_id}/reports",
    status_code=status.HTTP_201_CREATED,
    tags=["plans"],
    summary="Report progress on a milestone, with evidence (the participant)",
    description="On an approved plan. `reached: true` emits `pearls.plan.milestone_reached`;"
    " the last one also `pearls.plan.completed`.",
    dependencies=[Applicant],
)
async def report(
    participant_id: ParticipantId,
    milestone_id: Annotated[uuid.UUID, Path(description="Id of the milestone.")],
    body: s.ReportIn,
    service: Service,
) -> s.ReportOut:
    completed = await service.report_progress(
        participant_id,
        milestone_id,
        body.note,
        [str(u) for u in body.evidence_urls],
        body.reached,
        correlation_id(),
    )
    return s.ReportOut(plan_completed=completed)


@router.post(
    "/participants/{participant_id}/plan/measures/{measure_id}/publish",
    status_code=status.HTTP_201_CREATED,
    tags=["playbook"],
    summary="Publish a measure of an approved plan in the playbook (coordinator)",
    description="Only with the participant's consent (`share_consent` on the measure). The"
    " entry names the city and country, never the people responsible.",
)
async def publish_measure(
    participant_id: ParticipantId,
    measure_id: Annotated[uuid.UUID, Path(description="Id of the measure.")],
    who: Coordinator,
    service: Service,
) -> s.PracticeOut:
    return _practice_out(await service.publish_measure(participant_id, measure_id, who.actor))


# -- co-learning sessions -------------------------------------------------------------------


@router.get(
    "/sessions/proposals",
    tags=["sessions"],
    summary="Proposed co-learning groups by shared themes (a person confirms)",
    description="Coordinators see groups among all participants, a mentor among its own.",
)
async def proposals(
    who: Staff,
    service: Service,
    min_size: Annotated[int, Query(ge=2, le=50)] = 2,
    max_size: Annotated[int, Query(ge=2, le=50)] = 8,
) -> list[s.ProposalOut]:
    if max_size < min_size:
        raise Invalid(("query", "max_size"), "at_least_min_size", "max_size is below min_size")
    return [
        s.ProposalOut(
            theme=g.theme,
            language=g.language,
            why=g.why,
            participants=[
                s.ProposedMember(participant_id=p.id, city_name=p.city_name, country=p.country)
                for p in members
            ],
        )
        for g, members in await service.propose_sessions(min_size, max_size, who.mentor_id)
    ]


@router.post(
    "/sessions",
    status_code=status.HTTP_201_CREATED,
    tags=["sessions"],
    summary="Schedule a co-learning session (coordinator, or a mentor it hosts)",
    description="Emits `pearls.session.scheduled`; invitations go out by e-mail.",
)
async def schedule(body: s.SessionIn, who: Staff, service: Service) -> s.SessionOut:
    starts = local_to_aware(body.starts_at, body.time_zone, "starts_at")
    ends = local_to_aware(body.ends_at, body.time_zone, "ends_at")
    if ends <= starts:
        raise Invalid(("body", "ends_at"), "after_start", "a session ends after it starts")
    row = repo.SessionRow(
        session_id=uuid.uuid4(),
        title=body.title,
        language=body.language,
        starts_at=starts,
        ends_at=ends,
        time_zone=body.time_zone,
        location=body.location,
        online_url=str(body.online_url) if body.online_url else None,
        themes=tuple(body.themes),
        agenda=tuple(body.agenda),
        hosts=tuple(body.host_mentor_ids),
        invited=tuple(body.participant_ids),
        attended=None,
        notes=None,
        created_by=who.actor,
    )
    return _session_out(await service.schedule_session(row, who.mentor_id, correlation_id()))


@router.get("/sessions", tags=["sessions"], summary="Sessions (mentors: those they host)")
async def list_sessions(
    who: Staff, read: Read, limit: Limit = 50, offset: Offset = 0
) -> list[s.SessionOut]:
    return [_session_out(r) for r in await read.sessions(who.mentor_id, limit, offset)]


@router.get("/sessions/{session_id}", tags=["sessions"], summary="One session")
async def get_session(session_id: SessionId, who: Staff, read: Read) -> s.SessionOut:
    row = await read.session(session_id)
    if row is None or (who.mentor_id is not None and who.mentor_id not in row.hosts):
        raise NotFound(("path", "session_id"), "exists", "no such session")
    return _session_out(row)


@router.put(
    "/sessions/{session_id}/attendance",
    tags=["sessions"],
    summary="Record who attended, and notes (a host or a coordinator)",
)
async def attendance(
    session_id: SessionId, body: s.AttendanceIn, who: Staff, service: Service
) -> s.SessionOut:
    row = await service.record_attendance(session_id, body.attended, body.notes, who.mentor_id)
    return _session_out(row)


# -- playbook (public reads) --------------------------------------------------------------


@router.get(
    "/playbook",
    tags=["playbook"],
    summary="Good practices by theme and language (public, no personal data)",
)
async def playbook(
    read: Read,
    theme: Annotated[str | None, Query(max_length=64, pattern=r"^[a-z][a-z0-9_]*$")] = None,
    language: Annotated[str | None, Query(max_length=2, pattern=r"^[a-z]{2}$")] = None,
    q: Annotated[str | None, Query(max_length=200, description="Words to search for.")] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> list[s.PracticeOut]:
    text = " ".join(q.replace("\x00", " ").split()) if q else None
    entries = await read.playbook(
        theme=theme, language=language, text=text or None, limit=limit, offset=offset
    )
    return [_practice_out(e) for e in entries]


@router.get("/playbook/{entry_id}", tags=["playbook"], summary="One good practice (public)")
async def practice(
    entry_id: Annotated[uuid.UUID, Path(description="Id of the entry.")], read: Read
) -> s.PracticeOut:
    entry = await read.practice(entry_id)
    if entry is None:
        raise NotFound(("path", "entry_id"), "exists", "no such entry")
    return _practice_out(entry)


@router.post(
    "/playbook",
    status_code=status.HTTP_201_CREATED,
    tags=["playbook"],
    summary="Add a curated good practice (coordinator)",
)
async def add_practice(body: s.PracticeIn, who: Coordinator, service: Service) -> s.PracticeOut:
    entry = repo.PlaybookEntry(
        entry_id=uuid.uuid4(),
        theme=body.theme,
        language=body.language,
        title=body.title,
        summary=body.summary,
        body=body.body,
        city_name=body.city_name,
        country=body.country,
        source="curated",
        published_at=service.clock(),
    )
    return _practice_out(await service.add_practice(entry, who.actor))
