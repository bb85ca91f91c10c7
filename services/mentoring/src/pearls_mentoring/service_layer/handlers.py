"""Use cases of the mentoring service: transaction -> domain -> repository -> outbox.

Each public method opens one transaction, locks what its rule depends on,
lets the domain decide, writes rows, audit entries and events together, and
commits. A refusal raised by the domain rolls everything back.

Everything that uses up or frees a mentor's capacity (matching, overrides,
pausing) takes one advisory lock, so two replicas never hand out the same
free slot; everything about one participant also locks that participant.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import asyncpg
import structlog

from pearls_mentoring.adapters import repository as repo
from pearls_mentoring.domain import matching, plans
from pearls_mentoring.domain.model import SYSTEM, Assignment, AuditEntry, Mentor, Participant
from pearls_mentoring.domain.sessions import Member, propose_groups
from pearls_shared import envelope as ce
from pearls_shared import privacy
from pearls_shared.db import Conn
from pearls_shared.errors import Conflict, Forbidden, Invalid, NotFound
from pearls_shared.events import mentoring as ev
from pearls_shared.events.applications import (
    ApplicationAccepted,
    ApplicationContactsChanged,
    ApplicationWithdrawn,
    PersonErased,
)
from pearls_shared.events.common import MentorRef, Milestone
from pearls_shared.outbox import record_event
from pearls_shared.tokens import hash_token, new_token

log = structlog.get_logger(__name__)
Clock = Callable[[], datetime]

_MATCHING_LOCK = 0x6D65_6E74_6F72  # "mentor": one hand at a time gives out mentors' slots


def utcnow() -> datetime:
    return datetime.now(UTC)


def _new_correlation() -> str:
    return str(uuid.uuid4())


@dataclass(frozen=True, slots=True)
class MatchRun:
    matched: tuple[matching.Match, ...]
    unmatched: tuple[matching.Unmatched, ...]


def explanation_of(match: matching.Explanation) -> ev.MatchExplanation:
    return ev.MatchExplanation(
        summary=match.summary,
        shared_languages=match.shared_languages,
        shared_themes=match.shared_themes,
        cross_border=match.cross_border,
        score=match.score,
        criteria=dict(match.criteria),
        constraints_met=match.constraints_met,
    )


def _milestones(draft_milestones: Sequence[plans.MilestoneDraft]) -> tuple[Milestone, ...]:
    return tuple(
        Milestone(milestone_id=m.milestone_id, title=m.title, due_date=m.due_date)
        for m in draft_milestones
    )


def _milestone(m: plans.MilestoneState) -> Milestone:
    return Milestone(milestone_id=m.milestone_id, title=m.title, due_date=m.due_date)


class ParticipantEvents:
    """Participants arrive and leave with the applications service's events.

    Handlers run inside the inbox transaction of the shared consumer, on its
    connection: a redelivered event never reaches them twice.
    """

    def __init__(self, clock: Clock = utcnow, eraser: privacy.Eraser | None = None) -> None:
        self.clock = clock
        self.eraser = eraser or privacy.Eraser.from_settings()

    async def on_accepted(self, conn: Conn, envelope: ce.Envelope, data: Any) -> None:
        """A participant appears; a duplicate or late acceptance changes nothing."""
        accepted: ApplicationAccepted = data
        await repo.lock_participant_id(conn, accepted.application_id)
        known = await repo.load_participant(conn, accepted.application_id, "update")
        if known is not None and known.status == "withdrawn":
            log.info("acceptance_after_withdrawal", participant_id=str(accepted.application_id))
            return  # a withdrawal is final, whatever order the events arrive in
        if known is not None and known.accepted_at and known.accepted_at >= accepted.decided_at:
            return  # the same or an older acceptance: nothing new
        # A contacts change newer than this acceptance keeps its list.
        newer = await repo.contacts_as_of(conn, accepted.application_id)
        keep = known is not None and newer is not None and newer > accepted.decided_at
        participant = Participant(
            id=accepted.application_id,
            call_id=accepted.call_id,
            status="active",
            city_name=accepted.city_name,
            country=accepted.country,
            contacts=known.contacts if keep and known is not None else accepted.contacts,
            themes=accepted.themes,
            languages=accepted.languages,
            token_sha256=bytes.fromhex(accepted.applicant_token_sha256)
            if accepted.applicant_token_sha256
            else None,
            accepted_at=accepted.decided_at,
        )
        await repo.save_participant(conn, participant)
        if not keep:
            await repo.set_contacts_as_of(conn, participant.id, accepted.decided_at)
        await conn.execute(
            "UPDATE participants SET correlation_id = $2, cause_event_id = $3"
            " WHERE participant_id = $1",
            participant.id,
            envelope.correlation_id,
            envelope.id,
        )
        if known is None:
            await repo.write_audit(
                conn,
                [
                    AuditEntry(
                        self.clock(),
                        SYSTEM,
                        "participant_joined",
                        participant.id,
                        details={"event_id": envelope.id, "from_waitlist": accepted.from_waitlist},
                    )
                ],
            )

    async def on_contacts_changed(self, conn: Conn, envelope: ce.Envelope, data: Any) -> None:
        """The participant's contact persons from now on (an older list never wins).

        A change about an applicant that is not (yet) a participant is ignored: the
        acceptance that may follow carries the contacts as of its own, later, time."""
        changed: ApplicationContactsChanged = data
        await repo.lock_participant_id(conn, changed.application_id)
        if await repo.replace_contacts(
            conn, changed.application_id, changed.contacts, changed.changed_at
        ):
            await repo.write_audit(
                conn,
                [
                    AuditEntry(
                        self.clock(),
                        SYSTEM,
                        "contacts_changed",
                        changed.application_id,
                        details={"event_id": envelope.id},
                    )
                ],
            )

    async def on_erased(self, conn: Conn, envelope: ce.Envelope, data: Any) -> None:
        """Pseudonymise every record of the erased addresses (participants' contacts,
        mentors, audit, outbox) and register them; see pearls_shared.privacy."""
        erased: PersonErased = data
        hide = await privacy.apply_erasure(conn, self.eraser, erased)
        if not hide:
            return  # unknown here, already erased, or arriving before the data
        await repo.retire_erased_mentors(conn, sorted(hide.values()))
        await repo.write_audit(
            conn,
            [
                AuditEntry(
                    self.clock(),
                    SYSTEM,
                    "person_erased",
                    erased.application_id,
                    details={"erasure_id": str(erased.erasure_id), "addresses": len(hide)},
                )
            ],
        )

    async def on_withdrawn(self, conn: Conn, envelope: ce.Envelope, data: Any) -> None:
        """A participant leaves: its mentor's place is freed. Final, even if early."""
        withdrawn: ApplicationWithdrawn = data
        pid = withdrawn.application_id
        await repo.lock_participant_id(conn, pid)
        known = await repo.load_participant(conn, pid, "update")
        if known is not None and known.status == "withdrawn":
            return
        now = self.clock()
        if known is None:
            # Out of order: the withdrawal overtook the acceptance. Remember it, so the
            # acceptance that may follow changes nothing.
            tombstone = Participant(
                id=pid,
                call_id=withdrawn.call_id,
                status="withdrawn",
                city_name=withdrawn.city_name,
                country=withdrawn.country,
                contacts=withdrawn.contacts,
                themes=(),
                languages=(),
                withdrawn_at=withdrawn.withdrawn_at,
            )
            await repo.save_participant(conn, tombstone, has_data=False)
            return
        known.status = "withdrawn"
        known.withdrawn_at = withdrawn.withdrawn_at
        await repo.save_participant(conn, known)
        await repo.clear_unmatched(conn, pid)
        mentor = await repo.mentor_of(conn, pid)
        await repo.end_assignment(conn, pid, now, "participant_withdrawn")
        audit = [AuditEntry(now, SYSTEM, "participant_withdrew", pid, details={})]
        if mentor is not None:
            await record_event(
                conn,
                ev.MentorUnassigned(
                    participant_id=pid,
                    mentor=mentor.ref(),
                    unassigned_at=now,
                    city_name=known.city_name,
                    contacts=withdrawn.contacts,
                    reason_code="participant_withdrawn",
                    reason=withdrawn.reason,
                ),
                correlation_id=envelope.correlation_id,
                causation_id=envelope.id,
            )
            audit.append(
                AuditEntry(
                    now, SYSTEM, "mentor_unassigned", pid, mentor.id, {"reason": "withdrawn"}
                )
            )
        await repo.write_audit(conn, audit)


class Mentoring:
    """The service's use cases, bound to its pool and the matching weights."""

    def __init__(
        self, pool: asyncpg.Pool[Any], weights: matching.Weights, clock: Clock = utcnow
    ) -> None:
        self.pool = pool
        self.weights = weights
        self.clock = clock

    # -- mentors -------------------------------------------------------------------

    async def register_mentor(
        self, mentor: Mentor, actor: str, correlation_id: str
    ) -> tuple[Mentor, str]:
        """Register a mentor; return it with its bearer token (shown once)."""
        token, _ = new_token()
        mentor.registered_at = self.clock()
        async with self.pool.acquire() as conn, conn.transaction():
            try:
                await repo.insert_mentor(conn, mentor, hash_token(token), actor)
            except asyncpg.UniqueViolationError:
                raise Conflict(
                    ("body", "email"), "unique", "a mentor with this e-mail is registered"
                ) from None
            await repo.write_audit(
                conn,
                [AuditEntry(mentor.registered_at, actor, "mentor_registered", None, mentor.id)],
            )
            await record_event(
                conn,
                ev.MentorRegistered.model_validate(
                    {
                        "mentor_id": mentor.id,
                        "kind": mentor.kind,
                        "name": mentor.name,
                        "email": mentor.email,
                        "language": mentor.language,
                        "languages": mentor.languages,
                        "country": mentor.country,
                        "city_name": mentor.city_name,
                        "organisation": mentor.organisation,
                        "capacity": mentor.capacity,
                        "themes": mentor.themes,
                        "registered_at": mentor.registered_at,
                    }
                ),
                correlation_id=correlation_id,
            )
        return mentor, token

    async def new_mentor_token(self, mentor_id: uuid.UUID, actor: str) -> str:
        """A lost or leaked mentor token is replaced; the old one stops working at once."""
        token, digest = new_token()
        async with self.pool.acquire() as conn, conn.transaction():
            if not await repo.replace_mentor_token(conn, mentor_id, digest):
                raise NotFound(("path", "mentor_id"), "exists", "no such mentor")
            await repo.write_audit(
                conn, [AuditEntry(self.clock(), actor, "mentor_token_replaced", None, mentor_id)]
            )
        return token

    async def set_mentor_status(
        self, mentor_id: uuid.UUID, status: str, actor: str, correlation_id: str
    ) -> Mentor:
        """Pause (its participants are matched anew at once) or resume a mentor."""
        now = self.clock()
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _MATCHING_LOCK)
            if not await repo.lock_mentor(conn, mentor_id):
                raise NotFound(("path", "mentor_id"), "exists", "no such mentor")
            mentor = await repo.load_mentor(conn, mentor_id)
            assert mentor is not None
            if mentor.status == status:
                return mentor
            await repo.set_mentor_status(conn, mentor_id, status)
            await repo.write_audit(
                conn, [AuditEntry(now, actor, f"mentor_{status}", None, mentor_id)]
            )
            if status == "paused":
                for pid in await repo.participants_of(conn, mentor_id):
                    await self._unassign(
                        conn, pid, mentor, "mentor_withdrawn", "The mentor paused.", correlation_id
                    )
                await self._match(conn, correlation_id)
            changed = await repo.load_mentor(conn, mentor_id)
            assert changed is not None
        return changed

    async def _unassign(
        self,
        conn: Conn,
        pid: uuid.UUID,
        mentor: Mentor,
        reason_code: str,
        reason: str | None,
        correlation_id: str,
    ) -> None:
        now = self.clock()
        participant = await repo.load_participant(conn, pid, "update")
        assert participant is not None
        await repo.end_assignment(conn, pid, now, reason_code)
        await record_event(
            conn,
            ev.MentorUnassigned(
                participant_id=pid,
                mentor=mentor.ref(),
                unassigned_at=now,
                city_name=participant.city_name,
                contacts=participant.contacts,
                reason_code=reason_code,
                reason=reason,
            ),
            correlation_id=correlation_id,
        )
        await repo.write_audit(
            conn,
            [AuditEntry(now, SYSTEM, "mentor_unassigned", pid, mentor.id, {"reason": reason_code})],
        )

    # -- matching ------------------------------------------------------------------

    async def match_waiting(self, correlation_id: str | None = None) -> MatchRun:
        """Match every waiting participant at once; settled pairs never move."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _MATCHING_LOCK)
            return await self._match(conn, correlation_id)

    async def _match(self, conn: Conn, correlation_id: str | None) -> MatchRun:
        waiting = await repo.waiting_participants(conn)
        if not waiting:
            return MatchRun((), ())
        mentors = await repo.active_mentors(conn)
        result = matching.match(
            [p.for_matching() for p in waiting], [m.for_matching() for m in mentors], self.weights
        )
        by_id = {p.id: p for p in waiting}
        mentor_by_id = {m.id: m for m in mentors}
        causes = {
            r["participant_id"]: (r["correlation_id"], r["cause_event_id"])
            for r in await conn.fetch(
                "SELECT participant_id, correlation_id, cause_event_id FROM participants"
                " WHERE participant_id = ANY($1::uuid[])",
                list(by_id),
            )
        }
        now = self.clock()
        for m in result.matches:
            participant, mentor = by_id[m.participant_id], mentor_by_id[m.mentor_id]
            cause_corr, cause_id = causes.get(participant.id, (None, None))
            explanation = explanation_of(m.explanation)
            await self._assign(
                conn,
                participant,
                mentor,
                explanation,
                actor=SYSTEM,
                correlation_id=correlation_id or cause_corr or _new_correlation(),
                causation_id=None if correlation_id else cause_id,
            )
        for u in result.unmatched:
            participant = by_id[u.participant_id]
            if participant.unmatched_reasons == tuple(u.reasons):
                continue  # coordinators were told already; nothing changed
            await repo.set_unmatched(conn, participant.id, u.reasons, u.summary, now)
            cause_corr, cause_id = causes.get(participant.id, (None, None))
            await record_event(
                conn,
                ev.MentorUnmatched(
                    participant_id=participant.id,
                    detected_at=now,
                    city_name=participant.city_name,
                    country=participant.country,
                    languages=participant.languages,
                    themes=participant.themes,
                    reasons=u.reasons,
                    summary=u.summary,
                ),
                correlation_id=correlation_id or cause_corr or _new_correlation(),
            )
            log.warning(
                "participant_unmatched", participant_id=str(participant.id), reasons=u.reasons
            )
        if result.matches:
            log.info("cohort_matched", matched=len(result.matches), total=result.total_score)
        return MatchRun(result.matches, result.unmatched)

    async def _assign(
        self,
        conn: Conn,
        participant: Participant,
        mentor: Mentor,
        explanation: ev.MatchExplanation,
        *,
        actor: str,
        correlation_id: str,
        causation_id: str | None = None,
        override_reason: str | None = None,
        replaces: uuid.UUID | None = None,
    ) -> None:
        now = self.clock()
        overridden = override_reason is not None
        await repo.insert_assignment(
            conn,
            Assignment(
                participant_id=participant.id,
                mentor_id=mentor.id,
                assigned_at=now,
                assigned_by=actor,
                explanation=explanation.model_dump(mode="json"),
                score=explanation.score,
                overridden=overridden,
                override_reason=override_reason,
            ),
        )
        await repo.clear_unmatched(conn, participant.id)
        await repo.write_audit(
            conn,
            [
                AuditEntry(
                    now,
                    actor,
                    "mentor_overridden" if overridden else "mentor_assigned",
                    participant.id,
                    mentor.id,
                    {
                        "score": explanation.score,
                        "summary": explanation.summary,
                        **({"reason": override_reason} if overridden else {}),
                        **({"replaces_mentor_id": str(replaces)} if replaces else {}),
                    },
                )
            ],
        )
        await record_event(
            conn,
            ev.MentorAssigned(
                participant_id=participant.id,
                mentor=mentor.ref(),
                assigned_at=now,
                city_name=participant.city_name,
                country=participant.country,
                contacts=participant.contacts,
                explanation=explanation,
                overridden_by_coordinator=overridden,
                override_reason=override_reason,
                replaces_mentor_id=replaces,
            ),
            correlation_id=correlation_id,
            causation_id=causation_id,
        )

    async def override(
        self,
        participant_id: uuid.UUID,
        mentor_id: uuid.UUID,
        reason: str,
        actor: str,
        correlation_id: str,
    ) -> ev.MatchExplanation:
        """A coordinator chooses the mentor; the hard constraints still hold."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _MATCHING_LOCK)
            await repo.lock_participant_id(conn, participant_id)
            participant = await repo.load_participant(conn, participant_id, "update")
            if participant is None or not participant.city_name:
                raise NotFound(("path", "participant_id"), "exists", "no such participant")
            if participant.status != "active":
                raise Conflict(
                    ("path", "participant_id"), "active", "the participant has withdrawn"
                )
            mentor = await repo.load_mentor(conn, mentor_id)
            if mentor is None:
                raise NotFound(("body", "mentor_id"), "exists", "no such mentor")
            if mentor.status != "active":
                raise Conflict(("body", "mentor_id"), "mentor_active", "the mentor is paused")
            current = await repo.mentor_of(conn, participant_id)
            if current is not None and current.id == mentor_id:
                raise Conflict(
                    ("body", "mentor_id"), "already_assigned", "this mentor is already assigned"
                )
            broken = matching.violations(participant.for_matching(), mentor.for_matching())
            if broken:
                raise Conflict(("body", "mentor_id"), broken[0], _violation_text(broken[0]))
            # What the rules would have scored, for the record (slot 0 = next free place).
            computed = matching.explain(
                participant.for_matching(), mentor.for_matching(), self.weights, 0
            )
            explanation = ev.MatchExplanation(
                summary=f"Chosen by a coordinator: {reason} (the matching rules would have"
                f" scored it {computed.score:.2f}: {computed.summary})"[:4000],
                shared_languages=computed.shared_languages,
                shared_themes=computed.shared_themes,
                cross_border=computed.cross_border,
                score=None,
                constraints_met=computed.constraints_met,
            )
            if current is not None:
                await self._unassign(
                    conn, participant_id, current, "reassigned", reason, correlation_id
                )
            await self._assign(
                conn,
                participant,
                mentor,
                explanation,
                actor=actor,
                correlation_id=correlation_id,
                override_reason=reason,
                replaces=current.id if current else None,
            )
        return explanation

    # -- action plans ----------------------------------------------------------------

    async def _active_participant(self, conn: Conn, participant_id: uuid.UUID) -> Participant:
        await repo.lock_participant_id(conn, participant_id)
        participant = await repo.load_participant(conn, participant_id, "update")
        if participant is None or not participant.city_name:
            raise NotFound(("path", "participant_id"), "exists", "no such participant")
        if participant.status != "active":
            raise Conflict(("path", "participant_id"), "active", "the participant has withdrawn")
        return participant

    async def submit_plan(
        self, participant_id: uuid.UUID, draft: plans.PlanDraft, correlation_id: str
    ) -> tuple[uuid.UUID, int]:
        """Submit the first or a revised plan; earlier revisions are kept."""
        now = self.clock()
        async with self.pool.acquire() as conn, conn.transaction():
            participant = await self._active_participant(conn, participant_id)
            plan = await repo.load_plan(conn, participant_id, "update")
            plans.may_submit(plan.status if plan else None)
            earlier = await repo.revisions(conn, plan.plan_id) if plan else []
            draft = plans.check_draft(
                draft,
                participant_themes=participant.themes,
                known_milestones={m.milestone_id for r in earlier for m in r.draft.milestones}
                - {None},  # type: ignore[arg-type]
                known_measures={m.measure_id for r in earlier for m in r.draft.measures} - {None},  # type: ignore[arg-type]
            )
            if plan is None:
                plan_id, revision = uuid.uuid4(), 1
                await repo.insert_plan(conn, plan_id, participant_id, now)
            else:
                plan_id, revision = plan.plan_id, plan.current_revision + 1
                await repo.supersede_pending(conn, plan_id)
                await repo.update_plan(
                    conn, plan_id, status="submitted", current_revision=revision, at=now
                )
            await repo.insert_revision(conn, plan_id, revision, draft, now)
            mentor = await repo.mentor_of(conn, participant_id)
            await repo.write_audit(
                conn,
                [
                    AuditEntry(
                        now,
                        f"applicant:{participant_id}",
                        "plan_submitted",
                        participant_id,
                        details={"revision": revision},
                    )
                ],
            )
            await record_event(
                conn,
                ev.PlanSubmitted(
                    plan_id=plan_id,
                    participant_id=participant_id,
                    revision=revision,
                    submitted_at=now,
                    city_name=participant.city_name,
                    title=draft.title,
                    goals=draft.goals,
                    milestones=_milestones(draft.milestones),
                    mentor=mentor.ref() if mentor else None,
                ),
                correlation_id=correlation_id,
            )
        return plan_id, revision

    async def review_plan(
        self,
        participant_id: uuid.UUID,
        mentor_id: uuid.UUID,
        revision: int,
        decision: plans.ReviewDecision,
        comments: str | None,
        correlation_id: str,
    ) -> plans.PlanStatus:
        """The participant's mentor approves the current revision or asks for changes."""
        now = self.clock()
        async with self.pool.acquire() as conn, conn.transaction():
            participant = await self._active_participant(conn, participant_id)
            mentor = await repo.mentor_of(conn, participant_id)
            if mentor is None or mentor.id != mentor_id:
                raise Forbidden(
                    ("path", "participant_id"),
                    "own_participant",
                    "only the participant's current mentor reviews its plan",
                )
            plan = await repo.load_plan(conn, participant_id, "update")
            if plan is None:
                raise NotFound(("path", "participant_id"), "plan_exists", "no plan submitted yet")
            plans.may_review(plan.status, plan.current_revision, revision)
            current = await repo.load_revision(conn, plan.plan_id, revision)
            assert current is not None
            if decision == "request_changes":
                if not comments:
                    raise Invalid(
                        ("body", "comments"), "required", "say what should change in comments"
                    )
                await repo.review_revision(
                    conn, plan.plan_id, revision, "changes_requested", now, mentor_id, comments
                )
                await repo.update_plan(
                    conn,
                    plan.plan_id,
                    status="changes_requested",
                    current_revision=revision,
                    at=now,
                )
                event: Any = ev.PlanChangesRequested(
                    plan_id=plan.plan_id,
                    participant_id=participant_id,
                    revision=revision,
                    requested_at=now,
                    mentor=mentor.ref(),
                    city_name=participant.city_name,
                    contacts=participant.contacts,
                    comments=comments,
                )
                status: plans.PlanStatus = "changes_requested"
            else:
                await repo.review_revision(
                    conn, plan.plan_id, revision, "approved", now, mentor_id, comments
                )
                await repo.update_plan(
                    conn,
                    plan.plan_id,
                    status="approved",
                    current_revision=revision,
                    at=now,
                    approved_revision=revision,
                )
                await repo.insert_milestones(conn, plan.plan_id, current.draft)
                event = ev.PlanApproved(
                    plan_id=plan.plan_id,
                    participant_id=participant_id,
                    revision=revision,
                    approved_at=now,
                    mentor=mentor.ref(),
                    city_name=participant.city_name,
                    country=participant.country,
                    contacts=participant.contacts,
                    milestones=_milestones(current.draft.milestones),
                )
                status = "approved"
            await repo.write_audit(
                conn,
                [
                    AuditEntry(
                        now,
                        f"mentor:{mentor_id}",
                        f"plan_{status}",
                        participant_id,
                        mentor_id,
                        {"revision": revision, **({"comments": comments} if comments else {})},
                    )
                ],
            )
            await record_event(conn, event, correlation_id=correlation_id)
        return status

    async def report_progress(
        self,
        participant_id: uuid.UUID,
        milestone_id: uuid.UUID,
        note: str,
        evidence_urls: Sequence[str],
        reached: bool,
        correlation_id: str,
    ) -> bool:
        """Record a progress report; a reached milestone is announced. True if the plan
        is now complete."""
        now = self.clock()
        async with self.pool.acquire() as conn, conn.transaction():
            participant = await self._active_participant(conn, participant_id)
            plan = await repo.load_plan(conn, participant_id, "update")
            plans.may_report(plan.status if plan else None)
            assert plan is not None
            states = await repo.milestones(conn, plan.plan_id)
            milestone = next((m for m in states if m.milestone_id == milestone_id), None)
            if milestone is None:
                raise NotFound(
                    ("path", "milestone_id"),
                    "exists",
                    "the approved plan has no such milestone",
                )
            await repo.insert_report(conn, milestone_id, now, note, evidence_urls, reached)
            if not reached:
                return False
            plans.may_reach(milestone)
            await repo.mark_reached(conn, milestone_id, now, note, evidence_urls)
            states = await repo.milestones(conn, plan.plan_id)
            done = sum(m.reached_at is not None for m in states)
            mentor = await repo.mentor_of(conn, participant_id)
            ref: MentorRef | None = mentor.ref() if mentor else None
            await record_event(
                conn,
                ev.MilestoneReached.model_validate(
                    {
                        "plan_id": plan.plan_id,
                        "participant_id": participant_id,
                        "milestone": _milestone(milestone),
                        "reached_at": now,
                        "evidence_summary": note,
                        "evidence_urls": list(evidence_urls),
                        "milestones_reached": done,
                        "milestones_total": len(states),
                        "city_name": participant.city_name,
                        "mentor": ref,
                    }
                ),
                correlation_id=correlation_id,
            )
            await repo.write_audit(
                conn,
                [
                    AuditEntry(
                        now,
                        f"applicant:{participant_id}",
                        "milestone_reached",
                        participant_id,
                        details={"milestone_id": str(milestone_id)},
                    )
                ],
            )
            complete = done == len(states) and plan.status == "approved"
            if complete:
                await repo.update_plan(
                    conn,
                    plan.plan_id,
                    status="completed",
                    current_revision=plan.current_revision,
                    at=now,
                    completed=True,
                )
                await record_event(
                    conn,
                    ev.PlanCompleted(
                        plan_id=plan.plan_id,
                        participant_id=participant_id,
                        completed_at=now,
                        milestones_reached=done,
                        milestones_total=len(states),
                        achievements=plans.achievements(states),
                        city_name=participant.city_name,
                        country=participant.country,
                        contacts=participant.contacts,
                        mentor=ref,
                    ),
                    correlation_id=correlation_id,
                )
        return complete

    async def notice_overdue(
        self,
        today: date | None = None,
        *,
        before_commit: Callable[[uuid.UUID], Awaitable[None]] | None = None,
        after_commit: Callable[[uuid.UUID], Awaitable[None]] | None = None,
    ) -> int:
        """Announce every milestone past its due date, each exactly once.

        One transaction per milestone: the row is claimed with ``FOR UPDATE SKIP
        LOCKED`` and marked in the same transaction as its event, so a killed
        scheduler leaves nothing half done and two schedulers never both take it.
        """
        today = today or self.clock().date()
        noticed = 0
        async with self.pool.acquire() as conn:
            while True:
                async with conn.transaction():
                    due = await repo.claim_overdue(conn, today)
                    if due is None:
                        break
                    participant = await repo.load_participant(conn, due.participant_id)
                    assert participant is not None
                    mentor = await repo.mentor_of(conn, due.participant_id)
                    await repo.mark_overdue_noticed(conn, due.milestone.milestone_id, today)
                    await record_event(
                        conn,
                        ev.MilestoneOverdue(
                            plan_id=due.plan_id,
                            participant_id=due.participant_id,
                            milestone=_milestone(due.milestone),
                            detected_on=today,
                            days_overdue=plans.days_overdue(due.milestone.due_date, today),
                            city_name=participant.city_name,
                            contacts=participant.contacts,
                            mentor=mentor.ref() if mentor else None,
                        ),
                        correlation_id=_new_correlation(),
                    )
                    if before_commit is not None:  # crash tests
                        await before_commit(due.milestone.milestone_id)
                noticed += 1
                log.info(
                    "milestone_overdue",
                    participant_id=str(due.participant_id),
                    milestone_id=str(due.milestone.milestone_id),
                )
                if after_commit is not None:  # crash tests
                    await after_commit(due.milestone.milestone_id)
        return noticed

    # -- co-learning sessions -------------------------------------------------------

    async def propose_sessions(
        self, min_size: int, max_size: int, mentor_id: uuid.UUID | None = None
    ) -> list[tuple[Any, list[Participant]]]:
        """Groups among all participants, or among a mentor's own (a mentor sees no others)."""
        async with self.pool.acquire() as conn:
            mine = await repo.participants_of(conn, mentor_id) if mentor_id else None
            active = [p for p in await repo.active_participants(conn, mine) if p.city_name]
        by_id = {p.id: p for p in active}
        groups = propose_groups(
            [
                Member(p.id, p.city_name, frozenset(p.themes), frozenset(p.languages))
                for p in active
            ],
            min_size=min_size,
            max_size=max_size,
        )
        return [(g, [by_id[i] for i in g.participant_ids]) for g in groups]

    async def schedule_session(
        self, session: repo.SessionRow, host_caller: uuid.UUID | None, correlation_id: str
    ) -> repo.SessionRow:
        """``host_caller`` is the mentor scheduling it (None for a coordinator)."""
        now = self.clock()
        if host_caller is not None and host_caller not in session.hosts:
            raise Forbidden(
                ("body", "host_mentor_ids"), "own_session", "a mentor schedules sessions it hosts"
            )
        if session.starts_at <= now:
            raise Invalid(("body", "starts_at"), "future", "a session is scheduled in the future")
        async with self.pool.acquire() as conn, conn.transaction():
            hosts: list[Mentor] = []
            for i, mentor_id in enumerate(session.hosts):
                mentor = await repo.load_mentor(conn, mentor_id)
                if mentor is None:
                    raise Invalid(
                        ("body", "host_mentor_ids", i), "registered_mentor", "no such mentor"
                    )
                hosts.append(mentor)
            found = {p.id: p for p in await repo.active_participants(conn, session.invited)}
            for i, pid in enumerate(session.invited):
                if pid not in found or not found[pid].city_name:
                    raise Invalid(
                        ("body", "participant_ids", i),
                        "active_participant",
                        f"{pid} is not an active participant",
                    )
            await repo.insert_session(conn, session, now)
            await record_event(
                conn,
                ev.SessionScheduled.model_validate(
                    {
                        "session_id": session.session_id,
                        "title": session.title,
                        "language": session.language,
                        "starts_at": session.starts_at,
                        "ends_at": session.ends_at,
                        "location": session.location,
                        "online_url": session.online_url,
                        "themes": session.themes,
                        "hosts": [m.ref() for m in hosts],
                        "participants": [
                            {
                                "participant_id": p.id,
                                "city_name": p.city_name,
                                "country": p.country,
                                "contacts": p.contacts,
                            }
                            for p in (found[i] for i in session.invited)
                        ],
                    }
                ),
                correlation_id=correlation_id,
            )
        return session

    async def record_attendance(
        self,
        session_id: uuid.UUID,
        attended: Sequence[uuid.UUID],
        notes: str | None,
        host_caller: uuid.UUID | None,
    ) -> repo.SessionRow:
        async with self.pool.acquire() as conn, conn.transaction():
            session = await repo.load_session(conn, session_id, "update")
            if session is None:
                raise NotFound(("path", "session_id"), "exists", "no such session")
            if host_caller is not None and host_caller not in session.hosts:
                raise Forbidden(
                    ("path", "session_id"), "own_session", "only a host records attendance"
                )
            if session.starts_at > self.clock():
                raise Conflict(
                    ("path", "session_id"), "after_start", "attendance is recorded once it began"
                )
            for i, pid in enumerate(attended):
                if pid not in session.invited:
                    raise Invalid(("body", "attended", i), "invited", f"{pid} was not invited")
            await repo.record_attendance(conn, session_id, attended, notes)
            updated = await repo.load_session(conn, session_id)
            assert updated is not None
        return updated

    # -- playbook --------------------------------------------------------------------

    async def add_practice(self, entry: repo.PlaybookEntry, actor: str) -> repo.PlaybookEntry:
        async with self.pool.acquire() as conn, conn.transaction():
            await repo.insert_entry(conn, entry, actor)
        return entry

    async def publish_measure(
        self, participant_id: uuid.UUID, measure_id: uuid.UUID, actor: str
    ) -> repo.PlaybookEntry:
        """A measure of an approved plan joins the playbook, with the participant's consent."""
        now = self.clock()
        async with self.pool.acquire() as conn, conn.transaction():
            participant = await repo.load_participant(conn, participant_id)
            plan = await repo.load_plan(conn, participant_id)
            if participant is None or not participant.city_name or plan is None:
                raise NotFound(("path", "participant_id"), "exists", "no such plan")
            if plan.approved_revision is None:
                raise Conflict(
                    ("path", "participant_id"), "plan_approved_first", "the plan is not approved"
                )
            revision = await repo.load_revision(conn, plan.plan_id, plan.approved_revision)
            assert revision is not None
            measure = next((m for m in revision.draft.measures if m.measure_id == measure_id), None)
            if measure is None:
                raise NotFound(("path", "measure_id"), "exists", "the plan has no such measure")
            if not measure.share_consent:
                raise Conflict(
                    ("path", "measure_id"),
                    "consent",
                    "the participant has not agreed to share this measure",
                )
            entry = repo.PlaybookEntry(
                entry_id=uuid.uuid4(),
                theme=measure.theme,
                language=revision.draft.language,
                title=measure.title,
                summary=measure.description[:500],
                body=measure.description,
                city_name=participant.city_name,
                country=participant.country,
                source="action_plan",
                published_at=now,
            )
            if not await repo.insert_entry(
                conn, entry, actor, plan_id=plan.plan_id, measure_id=measure_id
            ):
                raise Conflict(
                    ("path", "measure_id"), "unique", "this measure is in the playbook already"
                )
            await repo.write_audit(
                conn,
                [
                    AuditEntry(
                        now,
                        actor,
                        "measure_published",
                        participant_id,
                        details={"measure_id": str(measure_id), "entry_id": str(entry.entry_id)},
                    )
                ],
            )
        return entry


def _violation_text(rule: str) -> str:
    return {
        "capacity": "the mentor has no free place",
        "shared_language": "the mentor shares no working language with the participant",
        "not_own_city": "a mentor never mentors its own city",
    }.get(rule, rule)


# Who reacts to what:
#   pearls.application.accepted   ParticipantEvents.on_accepted    (participant; matched next tick)
#   pearls.application.withdrawn  ParticipantEvents.on_withdrawn   pearls.mentor.unassigned
#   pearls.application.contacts_changed  .on_contacts_changed      (contacts; newer list wins)
#   pearls.person.erased          ParticipantEvents.on_erased      (pseudonymised; register)
#   (every consumed event arrives with registered erased addresses pseudonymised)
#   matching tick / POST /matching/runs  match_waiting      pearls.mentor.assigned / .unmatched
#   register mentor               register_mentor           pearls.mentor.registered
#   pause mentor                  set_mentor_status         .unassigned + .assigned (re-matched)
#   override                      override                  .unassigned + .assigned (overridden)
#   submit plan                   submit_plan               pearls.plan.submitted
#   review plan                   review_plan               pearls.plan.approved / .changes_req.
#   report progress               report_progress           .milestone_reached (+ .completed)
#   overdue tick                  notice_overdue            pearls.plan.milestone_overdue
#   schedule session              schedule_session          pearls.session.scheduled
#   attendance, playbook          record_attendance, ...    (no event)
