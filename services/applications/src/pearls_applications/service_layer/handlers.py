"""Use cases of the applications service: transaction -> domain -> repository -> outbox.

Each public method opens one transaction, loads what the rule needs (locking
the call row when a cross-application rule is at stake), lets the domain
decide, writes rows, audit entries and events together, and commits. A
refusal raised by the domain rolls everything back.
"""

from __future__ import annotations

import hashlib
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import asyncpg
import structlog

from pearls_applications.adapters import repository as repo
from pearls_applications.config import ReviewerEntry
from pearls_applications.domain.model import (
    SYSTEM,
    Application,
    AuditEntry,
    Call,
    CallBook,
    Decision,
    ReasonCode,
    mean_score,
    normalise_city,
)
from pearls_applications.domain.review import Reviewer, Spread, conflict_of_interest, spread
from pearls_applications.service_layer import tokens
from pearls_shared import privacy
from pearls_shared.db import Conn
from pearls_shared.errors import Conflict, DomainError, Forbidden, Invalid, NotFound
from pearls_shared.events.applications import ApplicationReviewed, PersonErased
from pearls_shared.outbox import record_event
from pearls_shared.tokens import Principal, new_token

log = structlog.get_logger(__name__)
Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Submitted:
    application_id: uuid.UUID
    applicant_token: str
    replayed: bool


@dataclass(frozen=True, slots=True)
class Erasure:
    erasure_id: uuid.UUID
    scope: str
    requested_at: datetime
    applications: int


# Applications whose contact data a coordinator may erase: closed for good.
ERASABLE = frozenset({"withdrawn", "rejected"})


@dataclass(frozen=True, slots=True)
class Assignment:
    reviewer_id: str
    refused_reason: str | None


def request_digest(canonical_body: bytes) -> bytes:
    return hashlib.sha256(canonical_body).digest()


# An application in one of these states is out of the race: no review is recorded.
UNREVIEWABLE: frozenset[str] = frozenset({"withdrawn", "rejected"})

# What each conflict-of-interest reason means, for the refusal's message.
CONFLICTS: dict[str, str] = {
    "same_city": "the reviewer comes from the applicant's city",
    "same_country": "the reviewer comes from the applicant's country and the call excludes it",
    "reviewer_unknown": "the reviewer is no longer in the reviewer pool",
}


@dataclass(frozen=True, slots=True)
class ConstraintRefusal:
    """How a database check that refused a decision is answered."""

    status: Literal[409, 422]
    loc: tuple[str, ...]
    type: str
    msg: str


# Every check a decision's commit can trip (migrations/*.sql), each with its own answer.
# The domain checks the same rules first; these answer when the database is the one
# that noticed (a second line of defence, or data changed behind the service's back).
DECISION_CONSTRAINTS: dict[str, ConstraintRefusal] = {
    "applications_places_guard": ConstraintRefusal(
        409, ("body", "decision"), "places_limit", "all places of the call are taken"
    ),
    "applications_status_check": ConstraintRefusal(
        409, ("body", "decision"), "status", "the decision would leave an unknown status"
    ),
    "applications_reason_code_check": ConstraintRefusal(
        422, ("body", "reason_code"), "reason_code", "unknown reason code"
    ),
    "applications_score_check": ConstraintRefusal(
        409, ("path", "application_id"), "score_range", "the stored score lies outside 0..100"
    ),
    "applications_population_check": ConstraintRefusal(
        409, ("path", "application_id"), "population", "the stored population is not positive"
    ),
}


def decision_refused(exc: asyncpg.CheckViolationError, application_id: uuid.UUID) -> DomainError:
    """The refusal for a check violation on a decision: its own answer per constraint.

    An unknown constraint is still a refusal (409 ``constraint``, never a 500) and
    its name is logged, so the mapping above can learn it.
    """
    name = getattr(exc, "constraint_name", None) or ""
    known = DECISION_CONSTRAINTS.get(name)
    if known is None:
        log.error(
            "decision_check_violation_unmapped",
            application_id=str(application_id),
            constraint=name or None,
            error=str(exc),
        )
        return Conflict(
            ("body", "decision"),
            "constraint",
            f"the decision conflicts with a rule of the stored data ({name or 'unnamed check'})",
        )
    log.info(
        "decision_check_violation",
        application_id=str(application_id),
        constraint=name,
        refusal=known.type,
    )
    cls = Conflict if known.status == 409 else Invalid
    return cls(known.loc, known.type, known.msg)


class Applications:
    """The service's use cases, bound to its pool and its configured reviewers."""

    def __init__(
        self,
        pool: asyncpg.Pool[Any],
        reviewers: Sequence[ReviewerEntry] | Callable[[], Sequence[ReviewerEntry]] = (),
        clock: Clock = utcnow,
        *,
        idempotency_retention: timedelta = timedelta(days=1),
        eraser: privacy.Eraser | None = None,
    ) -> None:
        self.pool = pool
        self.clock = clock
        self.idempotency_retention = idempotency_retention
        self.eraser = eraser or privacy.Eraser.from_settings()
        # Configured reviewers: a fixed list, or a function answering the current one
        # (read again when a tokens file changes, so a reviewer's town may change too).
        if callable(reviewers):
            self._reviewer_entries = reviewers
        else:
            fixed = tuple(reviewers)
            self._reviewer_entries = lambda: fixed

    @property
    def _configured(self) -> dict[str, Reviewer]:
        return {
            r.id: Reviewer(r.id, r.name, r.city_name, r.country) for r in self._reviewer_entries()
        }

    # -- persistence of an aggregate's outcome --------------------------------

    async def _persist(
        self,
        conn: Conn,
        book: CallBook,
        correlation_id: str,
        *,
        new: Mapping[uuid.UUID, bytes] | None = None,
        call_changed: bool = False,
    ) -> None:
        new = new or {}
        if call_changed:
            await repo.save_call_status(conn, book.call)
        for app_id in book.changed:
            app = book.applications[app_id]
            if app_id in new:
                await repo.insert_application(conn, app, new[app_id])
            else:
                await repo.update_application(conn, app)
        await repo.write_audit(conn, book.audit)
        for event in book.events:
            await record_event(conn, event, correlation_id=correlation_id)

    # -- calls -----------------------------------------------------------------

    async def create_call(self, call: Call, actor: str, correlation_id: str) -> Call:
        now = self.clock()
        if call.closes_at <= now:
            raise Invalid(("body", "closes_at"), "future", "closes_at must lie in the future")
        call.status = "scheduled"
        book = CallBook(call)
        async with self.pool.acquire() as conn, conn.transaction():
            await repo.insert_call(conn, call, actor)
            book.audit.append(AuditEntry(call.id, None, actor, "call_created", now, {}))
            if call.opens_at <= now:
                book.open(now, actor)
            await self._persist(conn, book, correlation_id, call_changed=True)
        return call

    async def close_call(self, call_id: uuid.UUID, actor: str, correlation_id: str) -> Call:
        async with self.pool.acquire() as conn, conn.transaction():
            book = await repo.load_book(conn, call_id, "update")
            book.close(self.clock(), actor)
            await self._persist(conn, book, correlation_id, call_changed=True)
        return book.call

    async def run_schedule(self) -> int:
        """Open and close the calls whose time has come; return how many changed.

        One transaction per call, so a call that fails to change (and is retried
        on the next tick) never holds back the others.
        """
        changed = 0
        async with self.pool.acquire() as conn:
            for call_id in await repo.calls_due(conn, self.clock()):
                try:
                    async with conn.transaction():
                        book = await repo.load_book(conn, call_id, "update")
                        before, now = book.call.status, self.clock()
                        if book.call.status == "scheduled" and book.call.opens_at <= now:
                            book.open(now, SYSTEM)
                        if book.call.status != "closed" and book.call.closes_at <= now:
                            book.close(now, SYSTEM)
                        if book.call.status == before:
                            continue  # another replica got there first
                        await self._persist(conn, book, str(uuid.uuid4()), call_changed=True)
                except Exception:
                    log.exception("call_scheduled_change_failed", call_id=str(call_id))
                    continue
                log.info("call_scheduled_change", call_id=str(call_id), status=book.call.status)
                changed += 1
        return changed

    # -- applicants ----------------------------------------------------------------

    async def submit(
        self,
        call_id: uuid.UUID,
        fields: Mapping[str, Any],
        correlation_id: str,
        *,
        idempotency_key: str | None = None,
        request_hash: bytes = b"",
    ) -> Submitted:
        key_hash = tokens.key_digest(idempotency_key) if idempotency_key else None
        async with self.pool.acquire() as conn:
            try:
                async with conn.transaction():
                    if key_hash is not None:
                        assert idempotency_key is not None
                        replay = await self._replay(
                            conn, call_id, key_hash, idempotency_key, request_hash
                        )
                        if replay:
                            return replay
                    now = self.clock()
                    book = await repo.load_book_for_submission(
                        conn, call_id, fields["country"], normalise_city(fields["city_name"])
                    )
                    token, digest = new_token()
                    app = Application(
                        id=uuid.uuid4(),
                        call_id=call_id,
                        submitted_at=now,
                        updated_at=now,
                        token_sha256=digest,
                        **fields,
                    )
                    book.submit(app, now)
                    await self._persist(conn, book, correlation_id, new={app.id: digest})
                    if key_hash is not None:
                        assert idempotency_key is not None
                        sealed = tokens.seal(tokens.token_raw(token), idempotency_key, app.id)
                        await repo.insert_idempotent(
                            conn,
                            call_id,
                            key_hash,
                            repo.IdempotentResult(request_hash, app.id, sealed),
                        )
                    return Submitted(app.id, token, replayed=False)
            except (asyncpg.UniqueViolationError, Conflict) as exc:
                if key_hash is not None and idempotency_key:
                    # A concurrent request with the same key may have won: this one then
                    # trips the one-per-city rule (in the domain when the winner committed
                    # before the book was loaded, else in the database). Answer as it did.
                    async with conn.transaction():
                        replay = await self._replay(
                            conn, call_id, key_hash, idempotency_key, request_hash
                        )
                    if replay is not None:
                        return replay
                if isinstance(exc, Conflict):
                    raise
                if exc.constraint_name == "one_application_per_city":
                    raise Conflict(
                        ("body", "city_name"),
                        "one_application_per_city",
                        f"{fields['city_name']} ({fields['country']}) has already applied"
                        " to this call",
                    ) from None
                raise

    async def _replay(
        self,
        conn: Conn,
        call_id: uuid.UUID,
        key_hash: bytes,
        idempotency_key: str,
        request_hash: bytes,
    ) -> Submitted | None:
        found = await repo.find_idempotent(conn, call_id, key_hash)
        if found is None:
            return None
        if found.request_hash != request_hash:
            raise Invalid(
                ("header", "Idempotency-Key"),
                "idempotency_key_reuse",
                "this Idempotency-Key was used with a different request body",
            )
        raw = tokens.unseal(found.sealed_token, idempotency_key, found.application_id)
        return Submitted(found.application_id, tokens.token_text(raw), replayed=True)

    async def update(
        self, application_id: uuid.UUID, changes: Mapping[str, Any], correlation_id: str
    ) -> Application:
        async with self.pool.acquire() as conn, conn.transaction():
            call_id = await repo.call_of(conn, application_id)
            # The whole row is written back: two updates at once must not both start
            # from the old row (one would undo the other), so they take turns.
            book = await repo.load_book(conn, call_id, "update")
            book.update(application_id, changes, self.clock())
            await self._persist(conn, book, correlation_id)
        return book.applications[application_id]

    async def withdraw(
        self, application_id: uuid.UUID, reason: str | None, correlation_id: str
    ) -> Application:
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                call_id = await repo.call_of(conn, application_id)
                book = await repo.load_book(conn, call_id, "update")
                book.withdraw(application_id, self.clock(), reason)
                await self._persist(conn, book, correlation_id)
        except asyncpg.CheckViolationError as exc:
            # Moving the best waitlisted one up is a decision too (by the system).
            raise decision_refused(exc, application_id) from None
        return book.applications[application_id]

    # -- coordinators: erasure (GDPR art. 17) -------------------------------------------

    async def erase(
        self,
        *,
        email: str | None = None,
        application_id: uuid.UUID | None = None,
        actor: str,
        correlation_id: str,
    ) -> Erasure:
        """Erase a person (every application's contact with that address) or the contact
        data of one withdrawn or rejected application: pseudonymise this service's copy
        (rows, audit details, outbox) and publish one ``pearls.person.erased`` carrying
        only keyed hashes, in one transaction. An address no application holds is still
        published: mentors and jurors are known to other services only."""
        if (email is None) == (application_id is None):
            raise Invalid(("body",), "one_of", "give either email or application_id")
        now, erasure_id = self.clock(), uuid.uuid4()
        async with self.pool.acquire() as conn, conn.transaction():
            if application_id is not None:
                call_id = await repo.call_of(conn, application_id)
                await repo.lock_calls(conn, [call_id])
                app = await repo.load_application(conn, application_id)
                if app.status not in ERASABLE:
                    raise Conflict(
                        ("body", "application_id"),
                        "status",
                        f"only a withdrawn or rejected application's contacts can be erased;"
                        f" this one is {app.status}",
                    )
                addresses = [c.email for c in app.contacts if not privacy.is_pseudonym(c.email)]
                affected = [(application_id, call_id)]
                scope = "application"
            else:
                assert email is not None
                addresses = [email]
                affected = await repo.applications_with_address(conn, privacy.normalise(email))
                await repo.lock_calls(conn, [c for _, c in affected])
                scope = "person"
            hashes = tuple(sorted({self.eraser.hash(a) for a in addresses}))
            hide = {privacy.normalise(a): self.eraser.pseudonym(a) for a in addresses}
            await privacy.sweep(conn, hide)
            if scope == "person":
                await privacy.register_addresses(conn, hashes, erasure_id, now)
            else:
                assert application_id is not None
                await privacy.register_application(conn, application_id, erasure_id, now)
            await repo.write_audit(
                conn,
                [
                    AuditEntry(
                        call_id,
                        app_id,
                        actor,
                        "contacts_erased",
                        now,
                        {"erasure_id": str(erasure_id), "scope": scope},
                    )
                    for app_id, call_id in affected
                ],
            )
            await repo.insert_erasure(
                conn,
                erasure_id,
                scope,
                hashes,
                application_id,
                [a for a, _ in affected],
                actor,
                now,
            )
            await record_event(
                conn,
                PersonErased(
                    erasure_id=erasure_id,
                    requested_at=now,
                    scope=scope,
                    email_hashes=hashes,
                    application_id=application_id,
                ),
                correlation_id=correlation_id,
            )
        log.info("erasure_recorded", erasure_id=str(erasure_id), scope=scope, by=actor)
        return Erasure(erasure_id, scope, now, len(affected))

    # -- coordinators: decisions -------------------------------------------------------

    async def decide(
        self,
        application_id: uuid.UUID,
        decision: Decision,
        actor: str,
        correlation_id: str,
        *,
        reason_code: ReasonCode | None = None,
        reason: str | None = None,
    ) -> Application:
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                call_id = await repo.call_of(conn, application_id)
                # The call row lock serialises every decision on this call: two
                # coordinators accepting at once cannot both see a free place.
                book = await repo.load_book(conn, call_id, "update")
                book.decide(
                    application_id,
                    decision,
                    self.clock(),
                    actor,
                    reason_code=reason_code,
                    reason=reason,
                )
                await self._persist(conn, book, correlation_id)
        except asyncpg.CheckViolationError as exc:
            # The database's own checks, a second line behind the domain's rules.
            raise decision_refused(exc, application_id) from None
        return book.applications[application_id]

    # -- reviewers ---------------------------------------------------------------------

    async def reviewers(self, conn: Conn) -> dict[str, Reviewer]:
        registered = {r.id: r for r in await repo.registered_reviewers(conn)}
        return {**registered, **self._configured}

    async def register_reviewer(self, reviewer: Reviewer, actor: str) -> str:
        token, digest = new_token()
        if reviewer.id in self._configured:
            raise Conflict(("body", "reviewer_id"), "unique", "this reviewer id is configured")
        async with self.pool.acquire() as conn, conn.transaction():
            try:
                await repo.insert_reviewer(conn, reviewer, digest, actor)
            except asyncpg.UniqueViolationError:
                raise Conflict(
                    ("body", "reviewer_id"), "unique", "this reviewer id is taken"
                ) from None
        log.info("reviewer_registered", reviewer_id=reviewer.id, by=actor)
        return token

    async def assign(self, application_id: uuid.UUID, reviewer_id: str, actor: str) -> Assignment:
        """Assign one reviewer; a conflict of interest is refused and recorded."""
        now = self.clock()
        async with self.pool.acquire() as conn, conn.transaction():
            call_id = await repo.call_of(conn, application_id)
            call = await repo.load_call(conn, call_id, "share")
            app = await repo.load_application(conn, application_id)
            reviewer = (await self.reviewers(conn)).get(reviewer_id)
            if reviewer is None:
                raise NotFound(("body", "reviewer_id"), "exists", "no such reviewer")
            if app.status in ("withdrawn", "rejected"):
                raise Conflict(
                    ("path", "application_id"),
                    "status",
                    f"an application that is {app.status} gets no reviewers",
                )
            reason = conflict_of_interest(reviewer, app, call)
            if reason is not None:
                await repo.write_audit(
                    conn,
                    [
                        AuditEntry(
                            call_id,
                            application_id,
                            actor,
                            "assignment_refused",
                            now,
                            {"reviewer_id": reviewer_id, "reason": reason},
                        )
                    ],
                )
                log.warning(
                    "assignment_refused",
                    application_id=str(application_id),
                    reviewer_id=reviewer_id,
                    reason=reason,
                )
                return Assignment(reviewer_id, reason)
            if reviewer_id not in await repo.assignments_of(conn, application_id):
                await repo.insert_assignments(conn, [(application_id, reviewer_id)], actor, now)
                await repo.write_audit(
                    conn,
                    [
                        AuditEntry(
                            call_id,
                            application_id,
                            actor,
                            "reviewer_assigned",
                            now,
                            {"reviewer_id": reviewer_id},
                        )
                    ],
                )
        return Assignment(reviewer_id, None)

    async def auto_assign(self, call_id: uuid.UUID, actor: str) -> Spread:
        """Spread the call's open applications evenly over the reviewer pool."""
        now = self.clock()
        async with self.pool.acquire() as conn, conn.transaction():
            book = await repo.load_book(conn, call_id, "update")
            pool = await self.reviewers(conn)
            existing: dict[uuid.UUID, set[str]] = {}
            load: Counter[str] = Counter()
            for app_id, reviewer_id in await repo.assignments_in_call(conn, call_id):
                existing.setdefault(app_id, set()).add(reviewer_id)
                load[reviewer_id] += 1
            candidates = [
                a for a in book.applications.values() if a.status not in ("withdrawn", "rejected")
            ]
            result = spread(book.call, candidates, pool.values(), existing, load)
            await repo.insert_assignments(conn, result.assigned, actor, now)
            entries = [
                AuditEntry(call_id, a, actor, "reviewer_assigned", now, {"reviewer_id": r})
                for a, r in result.assigned
            ] + [
                AuditEntry(
                    call_id,
                    a,
                    actor,
                    "assignment_refused",
                    now,
                    {"reviewer_id": r, "reason": why},
                )
                for a, r, why in result.refused
            ]
            await repo.write_audit(conn, entries)
        for app_id, reviewer_id, why in result.refused:
            log.info(
                "conflict_skipped", application_id=str(app_id), reviewer_id=reviewer_id, reason=why
            )
        return result

    async def review(
        self,
        application_id: uuid.UUID,
        reviewer: Principal,
        scores: dict[str, int],
        comment: str,
        correlation_id: str,
    ) -> float:
        """Record one reviewer's scores; return the application's new score.

        A conflict of interest found now (the reviewer's town or country, the
        call's same-country rule or the application may have changed since the
        assignment) refuses the review with 403 ``conflict_of_interest``; the
        refusal and its reason are committed to the audit trail and logged.
        """
        now = self.clock()
        async with self.pool.acquire() as conn, conn.transaction():
            call_id = await repo.call_of(conn, application_id)
            call = await repo.load_call(conn, call_id, "share")
            # Lock the application so two reviews never race on the aggregate.
            await conn.execute(
                "SELECT 1 FROM applications WHERE application_id = $1 FOR UPDATE", application_id
            )
            app = await repo.load_application(conn, application_id)
            assigned = await repo.assignments_of(conn, application_id)
            if reviewer.id not in assigned:
                raise Forbidden(
                    ("path", "application_id"),
                    "assigned_reviewer",
                    "you are not assigned to review this application",
                )
            if call.status != "closed":
                raise Conflict(
                    ("path", "application_id"),
                    "call_closed_first",
                    "reviews are recorded after the call has closed",
                )
            if app.status in UNREVIEWABLE:
                raise Conflict(
                    ("path", "application_id"),
                    "status",
                    f"the application is {app.status}; it can no longer be reviewed",
                )
            conflict = await self._review_conflict(conn, reviewer, app, call, now)
            if conflict is None:
                return await self._record_review(
                    conn, app, call, reviewer, assigned, scores, comment, now, correlation_id
                )
        # Raised after the commit, so the refusal stays in the audit trail.
        raise Forbidden(
            ("path", "application_id"),
            "conflict_of_interest",
            f"conflict of interest: {conflict} ({CONFLICTS.get(conflict, conflict)});"
            " the review is not recorded",
        )

    async def _review_conflict(
        self, conn: Conn, reviewer: Principal, app: Application, call: Call, now: datetime
    ) -> str | None:
        """Why ``reviewer`` may not review ``app`` now (audited and logged), or None."""
        who = (await self.reviewers(conn)).get(reviewer.id)
        reason = "reviewer_unknown" if who is None else conflict_of_interest(who, app, call)
        if reason is None:
            return None
        await repo.write_audit(
            conn,
            [
                AuditEntry(
                    call.id,
                    app.id,
                    reviewer.actor,
                    "review_refused",
                    now,
                    {"reviewer_id": reviewer.id, "reason": reason},
                )
            ],
        )
        log.warning(
            "review_refused", application_id=str(app.id), reviewer_id=reviewer.id, reason=reason
        )
        return reason

    async def _record_review(
        self,
        conn: Conn,
        app: Application,
        call: Call,
        reviewer: Principal,
        assigned: Sequence[str],
        scores: dict[str, int],
        comment: str,
        now: datetime,
        correlation_id: str,
    ) -> float:
        score = call.rubric.score(scores)
        try:
            async with conn.transaction():
                await repo.insert_review(conn, app.id, reviewer.id, scores, comment, score, now)
        except asyncpg.UniqueViolationError:
            raise Conflict(
                ("path", "application_id"), "one_review", "you have already reviewed it"
            ) from None
        all_scores = await repo.review_scores(conn, app.id)
        aggregate = mean_score(all_scores)
        assert aggregate is not None
        await repo.save_score(conn, app.id, aggregate, len(all_scores))
        await repo.write_audit(
            conn,
            [
                AuditEntry(
                    call.id,
                    app.id,
                    reviewer.actor,
                    "review_recorded",
                    now,
                    {"score": score, "application_score": aggregate},
                )
            ],
        )
        if len(all_scores) >= call.reviews_required:
            await record_event(
                conn,
                ApplicationReviewed(
                    application_id=app.id,
                    call_id=call.id,
                    reviewed_at=now,
                    score=aggregate,
                    review_count=len(all_scores),
                    reviewers_assigned=len(assigned),
                ),
                correlation_id=correlation_id,
            )
        return aggregate

    # -- housekeeping -------------------------------------------------------------------

    async def purge_idempotency(self, batch: int = 1000) -> int:
        """Forget idempotency records older than the retention; return how many went.

        Safe on every replica at once: each deletes rows the others have not
        locked (``SKIP LOCKED``), in batches, each batch its own transaction.
        """
        before = self.clock() - self.idempotency_retention
        total = 0
        async with self.pool.acquire() as conn:
            while True:
                async with conn.transaction():
                    deleted = await repo.purge_idempotent(conn, before, batch)
                total += deleted
                if deleted < batch:
                    break
        if total:
            log.info("idempotency_keys_purged", count=total, before=before.isoformat())
        return total


# Who reacts to what (commands come from HTTP; the service consumes no events):
#   create call (opens now)  Applications.create_call   pearls.call.opened
#   schedule tick            Applications.run_schedule  pearls.call.opened / pearls.call.closed
#   close call early         Applications.close_call    pearls.call.closed
#   submit application       Applications.submit        pearls.application.submitted
#   update application       Applications.update        .contacts_changed (contacts changed)
#   erase person/application Applications.erase         pearls.person.erased
#   withdraw application     Applications.withdraw      .withdrawn (+ .accepted, from_waitlist)
#   assign / auto-assign     Applications.assign/...    (audit only; conflicts recorded)
#   record review            Applications.review        pearls.application.reviewed
#   decide                   Applications.decide        .accepted / .rejected / .waitlisted
#   housekeeping tick        Applications.purge_idempotency  (old idempotency records deleted)
