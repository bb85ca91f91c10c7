"""Generated command sequences never break the invariants of a call's applications.

Invariants: never more accepted than places; one application per city (after
normalisation); a withdrawn application stays withdrawn and takes no decision;
every change to an application is audited and published.
"""

from __future__ import annotations

import uuid
from dataclasses import astuple
from datetime import timedelta

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from pearls_applications.domain.model import CallBook
from pearls_shared.errors import DomainError

from .test_domain import NOW, make_application, make_call

CITIES = ["Kuldīga", " KULDĪGA", "Valmiera", "valmiera ", "Viljandi", "Talsi", "Kėdainiai"]
COUNTRIES = ["LV", "LV", "EE", "LT", "RU"]
EVENT_OF = {
    "submitted": "pearls.application.submitted",
    "accepted": "pearls.application.accepted",
    "rejected": "pearls.application.rejected",
    "waitlisted": "pearls.application.waitlisted",
    "withdrawn": "pearls.application.withdrawn",
}


class Selection(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.book = CallBook(make_call(places=2))
        self.now = NOW
        self.withdrawn: set[uuid.UUID] = set()

    # -- helpers -----------------------------------------------------------------

    def _ids(self) -> list[uuid.UUID]:
        return sorted(self.book.applications, key=str)

    def _pick(self, index: int) -> uuid.UUID:
        ids = self._ids()
        return ids[index % len(ids)]

    def _run(self, command) -> None:
        """Run a command; a refusal must change nothing, a success must be audited."""
        before = {i: astuple(a) for i, a in self.book.applications.items()}
        statuses = {i: a.status for i, a in self.book.applications.items()}
        audit_before, events_before = len(self.book.audit), len(self.book.events)
        try:
            command()
        except DomainError:
            after = {i: astuple(a) for i, a in self.book.applications.items()}
            assert after == before, "a refused command changed state"
            assert len(self.book.audit) == audit_before
            assert len(self.book.events) == events_before
            return
        audited = {e.application_id for e in self.book.audit[audit_before:]}
        for app_id, app in self.book.applications.items():
            old = before.get(app_id)
            if old != astuple(app):
                assert app_id in audited, f"change to {app_id} not audited"
            if statuses.get(app_id) != app.status:  # a new status must be published
                published = [
                    e
                    for e in self.book.events[events_before:]
                    if getattr(e, "application_id", None) == app_id
                ]
                assert EVENT_OF[app.status] in [e.event_type for e in published]

    # -- commands --------------------------------------------------------------------

    # Start from a call that already has applications: an empty call explores little.
    @initialize(
        entries=st.lists(
            st.tuples(st.sampled_from(CITIES), st.sampled_from(COUNTRIES)), min_size=3, max_size=10
        ),
        closed=st.booleans(),
    )
    def populate(self, entries: list[tuple[str, str]], closed: bool) -> None:
        for city, country in entries:
            self.submit(city, country, 20_000)
        if closed:  # half the runs start with selection under way
            self.close()

    @rule(
        city=st.sampled_from(CITIES),
        country=st.sampled_from(COUNTRIES),
        # Mostly eligible (5 000 - 200 000), sometimes not.
        population=st.integers(5_000, 200_000) | st.sampled_from([4_999, 200_001]),
    )
    def submit(self, city: str, country: str, population: int) -> None:
        app = make_application(
            self.book.call, city, country, population=population, submitted_at=self.now
        )
        self._run(lambda: self.book.submit(app, self.now))

    @precondition(lambda self: self.book.applications)
    @rule(index=st.integers(0, 50), population=st.integers(4_000, 210_000))
    def update(self, index: int, population: int) -> None:
        app_id = self._pick(index)
        self._run(lambda: self.book.update(app_id, {"population": population}, self.now))

    @precondition(lambda self: self.book.applications)
    @rule(index=st.integers(0, 50), score=st.none() | st.floats(0, 100))
    def review(self, index: int, score: float | None) -> None:
        # Reviews only move the score (their own audit lives in the service layer).
        self.book.applications[self._pick(index)].score = score

    @rule()
    def close(self) -> None:
        self._run(lambda: self.book.close(self.now, "coordinator:anna"))

    @rule()
    def time_passes(self) -> None:
        self.now += timedelta(days=3)

    @precondition(lambda self: self.book.applications)
    @rule(index=st.integers(0, 50), reason=st.none() | st.just("changed plans"))
    def withdraw(self, index: int, reason: str | None) -> None:
        app_id = self._pick(index)
        before = self.book.applications[app_id].status
        waiting = len(self.book.waitlist())
        accepted = self.book.accepted
        self._run(lambda: self.book.withdraw(app_id, self.now, reason))
        if self.book.applications[app_id].status == "withdrawn":
            self.withdrawn.add(app_id)
            if before == "accepted" and waiting:
                assert self.book.accepted == accepted, "the freed place was not refilled"

    @precondition(lambda self: self.book.applications)
    @rule(
        index=st.integers(0, 50),
        decision=st.sampled_from(["accept", "accept", "reject", "waitlist", "waitlist"]),
        reason=st.none() | st.just("Not selected this time."),
    )
    def decide(self, index: int, decision, reason: str | None) -> None:
        app_id = self._pick(index)
        self._run(
            lambda: self.book.decide(app_id, decision, self.now, "coordinator:anna", reason=reason)
        )

    # -- invariants ----------------------------------------------------------------------

    @invariant()
    def never_more_accepted_than_places(self) -> None:
        assert self.book.accepted <= self.book.call.places

    @invariant()
    def one_application_per_city(self) -> None:
        keys = [(a.country, a.city_key) for a in self.book.applications.values()]
        assert len(keys) == len(set(keys))

    @invariant()
    def withdrawn_stays_withdrawn(self) -> None:
        for app_id in self.withdrawn:
            assert self.book.applications[app_id].status == "withdrawn"

    @invariant()
    def only_eligible_applications_exist(self) -> None:
        for app in self.book.applications.values():
            assert app.country in self.book.call.eligible_countries
            assert self.book.call.population_min <= app.population <= self.book.call.population_max

    @invariant()
    def rejections_carry_a_reason(self) -> None:
        for app in self.book.applications.values():
            if app.status == "rejected":
                assert app.decision_reason


Selection.TestCase.settings = settings(
    max_examples=300,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestSelection = Selection.TestCase
