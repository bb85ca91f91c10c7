"""Calls, applications and the rules that bind them; pure, no I/O.

A :class:`CallBook` is the aggregate: one call with all its applications. Every
command that could break a cross-application rule (one application per city,
never more accepted than places, waitlist promotion) runs on it, and it records
the events and audit entries the change causes as data; the service layer
persists them in one transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

from pearls_shared.errors import Conflict, Invalid, NotFound
from pearls_shared.events.applications import (
    ApplicationAccepted,
    ApplicationContactsChanged,
    ApplicationRejected,
    ApplicationSubmitted,
    ApplicationWaitlisted,
    ApplicationWithdrawn,
    CallClosed,
    CallOpened,
)
from pearls_shared.events.base import EventData
from pearls_shared.events.common import ContactPerson
from pearls_shared.names import identity_key

CallStatus = Literal["scheduled", "open", "closed"]
Status = Literal["submitted", "accepted", "rejected", "waitlisted", "withdrawn"]
Decision = Literal["accept", "reject", "waitlist"]
ReasonCode = Literal["ineligible", "incomplete", "not_selected", "other"]
PlaceKind = Literal["city", "region"]
# When an applicant may see its application's score and rank (coordinators and
# its reviewers always do): never, or once a decision was taken on it.
ScoresVisibility = Literal["never", "after_decision"]
OrganisationType = Literal[
    "municipality", "regional_authority", "public_institution", "ngo", "other"
]

# Which decisions each status still allows; withdrawn and rejected are final.
DECIDABLE: dict[str, frozenset[str]] = {
    "submitted": frozenset({"accept", "reject", "waitlist"}),
    "waitlisted": frozenset({"accept", "reject"}),
}
WITHDRAWABLE: frozenset[str] = frozenset({"submitted", "accepted", "waitlisted"})
# Whose contact persons may still change: applications that are alive.
CONTACTS_CHANGEABLE: frozenset[str] = WITHDRAWABLE
SYSTEM = "system"


# The key that makes 'Kuldīga', ' KULDĪGA ', 'kuldīga', 'Kuldīga' with a zero-width
# space or a Cyrillic K in it, one city, in every service. The rule is pearls_shared.names.
#
# Stored keys: applications.city_key is written once, on insert, with the key of
# that day, and backs the one-per-city constraint for submissions racing each
# other. The rule itself is checked by CallBook.submit on keys computed now from
# the city_name as written, so a key stored under an older rule never decides
# anything and needs no migration (a migration cannot run the Python rule anyway).
# Each row says which rule made its key (city_key_rule, pearls_shared.names.KEY_RULE),
# so a submission loads only the rows whose stored key of today's rule is its own,
# and the rows of other rules. Updates never rewrite city_key, so two old rows that
# the current rule would call one city (accepted before it) never collide either.
normalise_city = identity_key


@dataclass(frozen=True, slots=True)
class Criterion:
    key: str
    weight: float
    # What reviewers judge, per language; shown to them, not used in scoring.
    label: dict[str, str] = field(default_factory=dict, hash=False)


@dataclass(frozen=True, slots=True)
class Rubric:
    """Criteria with weights, all scored on one integer scale."""

    scale_min: int
    scale_max: int
    criteria: tuple[Criterion, ...]

    def score(self, scores: Mapping[str, int]) -> float:
        """One review's weighted score, normalised to 0-100."""
        keys = {c.key for c in self.criteria}
        for key in scores:
            if key not in keys:
                raise Invalid(
                    ("body", "scores", key), "rubric_criterion", f"{key!r} is not a criterion"
                )
        total = 0.0
        for criterion in self.criteria:
            if criterion.key not in scores:
                raise Invalid(
                    ("body", "scores", criterion.key),
                    "rubric_complete",
                    f"every criterion must be scored; {criterion.key!r} is missing",
                )
            value = scores[criterion.key]
            if not self.scale_min <= value <= self.scale_max:
                raise Invalid(
                    ("body", "scores", criterion.key),
                    "rubric_scale",
                    f"score must lie within {self.scale_min}..{self.scale_max}",
                )
            total += criterion.weight * (value - self.scale_min) / (self.scale_max - self.scale_min)
        return 100 * total / sum(c.weight for c in self.criteria)


def mean_score(review_scores: Sequence[float]) -> float | None:
    return round(sum(review_scores) / len(review_scores), 2) if review_scores else None


@dataclass(slots=True)
class Call:
    id: uuid.UUID
    title: dict[str, str]
    description: dict[str, str]
    opens_at: datetime
    closes_at: datetime
    places: int
    themes: tuple[str, ...]
    eligible_countries: tuple[str, ...]
    population_min: int
    population_max: int
    rubric: Rubric
    reviews_required: int
    conflict_same_country: bool
    status: CallStatus = "scheduled"
    closed_at: datetime | None = None
    closed_early: bool = False
    public_url: str | None = None
    scores_visible_to_applicants: ScoresVisibility = "after_decision"

    def __post_init__(self) -> None:
        if self.closes_at <= self.opens_at:
            raise Invalid(("body", "closes_at"), "window", "closes_at must be after opens_at")
        if self.population_max < self.population_min:
            raise Invalid(
                ("body", "population_max"),
                "population_range",
                "population_max must not be below population_min",
            )
        if self.rubric.scale_max <= self.rubric.scale_min:
            raise Invalid(
                ("body", "rubric", "scale_max"),
                "rubric_scale",
                "scale_max must be above scale_min",
            )
        keys = [c.key for c in self.rubric.criteria]
        if len(set(keys)) != len(keys):
            raise Invalid(("body", "rubric", "criteria"), "unique", "criterion keys must be unique")

    def is_open_at(self, now: datetime) -> bool:
        return self.status == "open" and self.opens_at <= now < self.closes_at

    def shows_scores_to_applicant(self, app: Application) -> bool:
        """Whether the applicant of ``app`` may see its score and rank now.

        A score shown before the decision would invite lobbying and tell the
        applicant how the others fare; after it, the applicant may learn why.
        An application withdrawn before any decision never had one.
        """
        if self.scores_visible_to_applicants == "never":
            return False
        return app.decided_at is not None


@dataclass(slots=True)
class Application:
    id: uuid.UUID
    call_id: uuid.UUID
    city_name: str
    place_kind: PlaceKind
    country: str
    population: int
    organisation_name: str
    organisation_type: OrganisationType
    contacts: tuple[ContactPerson, ...]
    themes: tuple[str, ...]
    languages: tuple[str, ...]
    motivation: str
    challenges: str
    commitments: str
    submitted_at: datetime
    updated_at: datetime
    status: Status = "submitted"
    score: float | None = None
    review_count: int = 0
    decided_at: datetime | None = None
    reason_code: ReasonCode | None = None
    decision_reason: str | None = None
    from_waitlist: bool = False
    withdrawn_reason: str | None = None
    # SHA-256 of the applicant's bearer token (never the token): the accepted
    # event carries it so other services recognise the participant's token.
    token_sha256: bytes | None = field(default=None, repr=False)

    @property
    def city_key(self) -> str:
        return normalise_city(self.city_name)


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """Who did what to which application (or to the call), and when."""

    call_id: uuid.UUID
    application_id: uuid.UUID | None
    actor: str
    action: str
    at: datetime
    details: dict[str, Any] = field(default_factory=dict)


# Fields an applicant may change while the call is open; the city and its
# country are the application's identity and stay as submitted.
UPDATABLE = frozenset(
    {
        "place_kind",
        "population",
        "organisation_name",
        "organisation_type",
        "contacts",
        "themes",
        "languages",
        "motivation",
        "challenges",
        "commitments",
    }
)


@dataclass
class CallBook:
    """One call and all its applications: the unit of consistency."""

    call: Call
    applications: dict[uuid.UUID, Application] = field(default_factory=dict)
    # (country, city name as written) of those of the call's applications, not loaded,
    # that may be the place of a submission: it needs only these, not whole applications.
    other_places: tuple[tuple[str, str], ...] = ()
    events: list[EventData] = field(default_factory=list)
    audit: list[AuditEntry] = field(default_factory=list)
    changed: set[uuid.UUID] = field(default_factory=set)

    # -- queries -----------------------------------------------------------

    @property
    def accepted(self) -> int:
        return sum(a.status == "accepted" for a in self.applications.values())

    def ranking(self) -> list[Application]:
        """Scored applications still in the race, best first (ties: earlier submission)."""
        scored = [
            a for a in self.applications.values() if a.score is not None and a.status != "withdrawn"
        ]
        return sorted(scored, key=lambda a: (-(a.score or 0.0), a.submitted_at, str(a.id)))

    def rank_of(self, application_id: uuid.UUID) -> int | None:
        for position, app in enumerate(self.ranking(), start=1):
            if app.id == application_id:
                return position
        return None

    def waitlist(self) -> list[Application]:
        """Waitlisted applications in the order they move up: ranked ones first."""
        waiting = [a for a in self.applications.values() if a.status == "waitlisted"]
        return sorted(
            waiting,
            key=lambda a: (a.score is None, -(a.score or 0.0), a.submitted_at, str(a.id)),
        )

    def get(self, application_id: uuid.UUID) -> Application:
        try:
            return self.applications[application_id]
        except KeyError:
            raise NotFound(("path", "application_id"), "exists", "no such application") from None

    # -- call lifecycle ----------------------------------------------------

    def open(self, now: datetime, actor: str) -> None:
        if self.call.status != "scheduled":
            raise Conflict(("path", "call_id"), "call_status", f"the call is {self.call.status}")
        self.call.status = "open"
        self._audit(None, actor, "call_opened", now, {"opens_at": self.call.opens_at.isoformat()})
        self.events.append(
            CallOpened(
                call_id=self.call.id,
                title=self.call.title,
                opens_at=self.call.opens_at,
                closes_at=self.call.closes_at,
                places=self.call.places,
                themes=self.call.themes,
                eligible_countries=self.call.eligible_countries,
                population_min=self.call.population_min,
                population_max=self.call.population_max,
                public_url=self.call.public_url,
            )
        )

    def close(self, now: datetime, actor: str) -> None:
        if self.call.status == "closed":
            raise Conflict(("path", "call_id"), "call_status", "the call is already closed")
        early = now < self.call.closes_at
        if self.call.status == "scheduled":
            # Never opened: it closes without a CallOpened, so no CallClosed either.
            self.call.status = "closed"
            self.call.closed_at, self.call.closed_early = now, early
            self._audit(None, actor, "call_cancelled", now, {})
            return
        self.call.status = "closed"
        self.call.closed_at, self.call.closed_early = now, early
        received = sum(a.status != "withdrawn" for a in self.applications.values())
        self._audit(None, actor, "call_closed", now, {"early": early, "received": received})
        self.events.append(
            CallClosed(
                call_id=self.call.id,
                closed_at=now,
                closed_early=early,
                applications_received=received,
            )
        )

    # -- applicant commands -----------------------------------------------

    def submit(self, application: Application, now: datetime) -> None:
        self._require_window(now)
        self._check_eligible(application)
        key = (application.country, application.city_key)
        places = [(other.country, other.city_key) for other in self.applications.values()]
        places += [(country, normalise_city(name)) for country, name in self.other_places]
        for place in places:
            if place == key:
                raise Conflict(
                    ("body", "city_name"),
                    "one_application_per_city",
                    f"{application.city_name} ({application.country}) has already applied"
                    " to this call",
                )
        self.applications[application.id] = application
        self.changed.add(application.id)
        self._audit(application.id, "applicant", "submitted", now, {"city": application.city_name})
        self.events.append(
            ApplicationSubmitted(
                application_id=application.id,
                call_id=self.call.id,
                submitted_at=application.submitted_at,
                city_name=application.city_name,
                place_kind=application.place_kind,
                country=application.country,
                population=application.population,
                organisation_name=application.organisation_name,
                organisation_type=application.organisation_type,
                contacts=application.contacts,
                themes=application.themes,
                languages=application.languages,
                summary=application.motivation,
            )
        )

    def update(self, application_id: uuid.UUID, changes: Mapping[str, Any], now: datetime) -> None:
        """Change what the applicant submitted. The contact persons alone may change at
        any time while the application is alive (staff change often, and mail must reach
        whoever is in charge now); everything else only while the call is open and the
        application not yet decided. A changed contact list is published."""
        app = self.get(application_id)
        for name in changes:
            if name not in UPDATABLE:
                raise Invalid(("body", name), "not_updatable", f"{name} cannot be changed")
        if set(changes) == {"contacts"}:
            if app.status not in CONTACTS_CHANGEABLE:
                raise Conflict(
                    ("path", "application_id"),
                    "status",
                    f"the contacts of an application that is {app.status} cannot be changed",
                )
        else:
            self._require_window(now)
            if app.status != "submitted":
                raise Conflict(
                    ("path", "application_id"),
                    "status",
                    f"only a submitted application can be changed; this one is {app.status}",
                )
        candidate = replace(app, **changes, updated_at=now)
        self._check_eligible(candidate)
        self.applications[application_id] = candidate
        self.changed.add(application_id)
        self._audit(application_id, "applicant", "updated", now, {"fields": sorted(changes)})
        if "contacts" in changes and set(candidate.contacts) != set(app.contacts):
            self.events.append(
                ApplicationContactsChanged(
                    application_id=app.id,
                    call_id=self.call.id,
                    changed_at=now,
                    city_name=candidate.city_name,
                    contacts=candidate.contacts,
                )
            )

    def withdraw(self, application_id: uuid.UUID, now: datetime, reason: str | None) -> None:
        app = self.get(application_id)
        if app.status not in WITHDRAWABLE:
            raise Conflict(
                ("path", "application_id"),
                "status",
                f"an application that is {app.status} cannot be withdrawn",
            )
        previous = app.status
        app.status, app.withdrawn_reason, app.updated_at = "withdrawn", reason, now
        self.changed.add(app.id)
        self._audit(app.id, "applicant", "withdrawn", now, {"previous_status": previous})
        self.events.append(
            ApplicationWithdrawn(
                application_id=app.id,
                call_id=self.call.id,
                withdrawn_at=now,
                previous_status=previous,
                city_name=app.city_name,
                country=app.country,
                contacts=app.contacts,
                reason=reason,
            )
        )
        if previous == "accepted":
            self._promote_from_waitlist(now)

    # -- coordinator commands ---------------------------------------------

    def decide(
        self,
        application_id: uuid.UUID,
        decision: Decision,
        now: datetime,
        actor: str,
        *,
        reason_code: ReasonCode | None = None,
        reason: str | None = None,
    ) -> None:
        app = self.get(application_id)
        if self.call.status != "closed":
            raise Conflict(
                ("path", "application_id"),
                "call_closed_first",
                "decisions are taken after the call has closed",
            )
        if decision not in DECIDABLE.get(app.status, frozenset()):
            raise Conflict(
                ("body", "decision"),
                "status",
                f"cannot {decision} an application that is {app.status}",
            )
        if decision == "reject" and not (reason and reason.strip()):
            raise Invalid(("body", "reason"), "required", "a rejection needs a reason")
        if reason_code is not None and decision != "reject":
            # It would be dropped silently; the coordinator likely meant to reject.
            raise Invalid(
                ("body", "reason_code"), "reject_only", "a reason code goes with a rejection only"
            )
        if decision == "accept":
            self._accept(app, now, actor, from_waitlist=False)
        elif decision == "reject":
            app.status, app.decided_at, app.updated_at = "rejected", now, now
            app.reason_code, app.decision_reason = reason_code or "not_selected", reason
            self.changed.add(app.id)
            self._audit(
                app.id, actor, "rejected", now, {"reason_code": app.reason_code, "reason": reason}
            )
            self.events.append(
                ApplicationRejected(
                    application_id=app.id,
                    call_id=self.call.id,
                    decided_at=now,
                    city_name=app.city_name,
                    country=app.country,
                    contacts=app.contacts,
                    reason_code=app.reason_code,
                    reason=reason or "",
                    rank=self.rank_of(app.id),
                    score=app.score,
                )
            )
        else:
            app.status, app.decided_at, app.updated_at = "waitlisted", now, now
            app.decision_reason = reason
            self.changed.add(app.id)
            position = [a.id for a in self.waitlist()].index(app.id) + 1
            self._audit(app.id, actor, "waitlisted", now, {"waitlist_position": position})
            self.events.append(
                ApplicationWaitlisted(
                    application_id=app.id,
                    call_id=self.call.id,
                    decided_at=now,
                    city_name=app.city_name,
                    country=app.country,
                    contacts=app.contacts,
                    waitlist_position=position,
                    rank=self.rank_of(app.id),
                    score=app.score,
                )
            )

    # -- rules ---------------------------------------------------------------

    def _accept(self, app: Application, now: datetime, actor: str, *, from_waitlist: bool) -> None:
        if self.accepted >= self.call.places:
            raise Conflict(
                ("body", "decision"),
                "places_limit",
                f"all {self.call.places} places of the call are taken",
            )
        app.status, app.decided_at, app.updated_at = "accepted", now, now
        app.from_waitlist = from_waitlist
        self.changed.add(app.id)
        self._audit(app.id, actor, "accepted", now, {"from_waitlist": from_waitlist})
        self.events.append(
            ApplicationAccepted(
                application_id=app.id,
                call_id=self.call.id,
                decided_at=now,
                city_name=app.city_name,
                country=app.country,
                population=app.population,
                contacts=app.contacts,
                themes=app.themes,
                languages=app.languages,
                rank=self.rank_of(app.id),
                score=app.score,
                from_waitlist=from_waitlist,
                applicant_token_sha256=app.token_sha256.hex() if app.token_sha256 else None,
            )
        )

    def _promote_from_waitlist(self, now: datetime) -> None:
        # Exactly the freed place is refilled; places the coordinators left
        # open on purpose stay theirs to fill.
        waiting = self.waitlist()
        if waiting and self.accepted < self.call.places:
            self._accept(waiting[0], now, SYSTEM, from_waitlist=True)

    def _require_window(self, now: datetime) -> None:
        if not self.call.is_open_at(now):
            raise Conflict(
                ("path", "call_id"),
                "submission_window",
                f"the call accepts submissions from {self.call.opens_at.isoformat()}"
                f" until {self.call.closes_at.isoformat()}; it is {self.call.status} now",
            )

    def _check_eligible(self, app: Application) -> None:
        call = self.call
        if app.country not in call.eligible_countries:
            raise Invalid(
                ("body", "country"),
                "eligible_country",
                f"{app.country} is not eligible; eligible: {', '.join(call.eligible_countries)}",
            )
        if not call.population_min <= app.population <= call.population_max:
            raise Invalid(
                ("body", "population"),
                "population_range",
                f"population must lie within {call.population_min}..{call.population_max}",
            )
        for index, theme in enumerate(app.themes):
            if theme not in call.themes:
                raise Invalid(
                    ("body", "themes", index),
                    "call_theme",
                    f"{theme!r} is not offered; offered: {', '.join(call.themes)}",
                )

    def _audit(
        self,
        application_id: uuid.UUID | None,
        actor: str,
        action: str,
        at: datetime,
        details: dict[str, Any],
    ) -> None:
        self.audit.append(AuditEntry(self.call.id, application_id, actor, action, at, details))
