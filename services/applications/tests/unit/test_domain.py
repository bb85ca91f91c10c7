"""Domain rules of the applications service, without I/O."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from pearls_applications.domain.model import (
    Application,
    Call,
    CallBook,
    Criterion,
    Rubric,
    mean_score,
    normalise_city,
)
from pearls_applications.domain.review import Reviewer, conflict_of_interest, spread
from pearls_shared.errors import Conflict, Invalid
from pearls_shared.events.common import DEFAULT_THEMES, ContactPerson

NOW = datetime(2026, 9, 15, 12, tzinfo=UTC)
RUBRIC = Rubric(1, 5, (Criterion("relevance", 2), Criterion("commitment", 1)))


def make_call(**overrides) -> Call:
    fields = {
        "id": uuid.uuid4(),
        "title": {"en": "Call"},
        "description": {"en": "Description"},
        "opens_at": NOW - timedelta(days=1),
        "closes_at": NOW + timedelta(days=30),
        "places": 2,
        "themes": DEFAULT_THEMES,
        "eligible_countries": ("LV", "EE", "LT", "SE"),
        "population_min": 5_000,
        "population_max": 200_000,
        "rubric": RUBRIC,
        "reviews_required": 2,
        "conflict_same_country": False,
        "status": "open",
    }
    fields.update(overrides)
    return Call(**fields)


def make_application(call: Call, city: str = "Kuldīga", country: str = "LV", **overrides):
    fields = {
        "id": uuid.uuid4(),
        "call_id": call.id,
        "city_name": city,
        "place_kind": "city",
        "country": country,
        "population": 10_000,
        "organisation_name": f"{city} Municipality",
        "organisation_type": "municipality",
        "contacts": (
            ContactPerson(name="Inese", email="inese@example.org", language="lv", role="primary"),
        ),
        "themes": ("culture_creative_industries",),
        "languages": ("lv",),
        "motivation": "m",
        "challenges": "c",
        "commitments": "k",
        "submitted_at": NOW,
        "updated_at": NOW,
    }
    fields.update(overrides)
    return Application(**fields)


@pytest.mark.parametrize(
    "spelling", ["Kuldīga", " KULDĪGA ", "kuldīga", "Ｋｕｌｄīｇａ", "Kuldi\u0304ga", "Kuldīga  "]
)
def test_city_names_normalise_to_one_key(spelling):
    assert normalise_city(spelling) == "kuldīga"


def test_different_cities_stay_different():
    assert normalise_city("Gdańsk") != normalise_city("Gdansk")
    assert normalise_city("Sankt  Peterburg") == normalise_city("sankt peterburg")


def test_a_review_is_a_weighted_score_normalised_to_0_100():
    assert RUBRIC.score({"relevance": 5, "commitment": 5}) == 100
    assert RUBRIC.score({"relevance": 1, "commitment": 1}) == 0
    assert RUBRIC.score({"relevance": 4, "commitment": 3}) == pytest.approx(66.667, abs=1e-3)
    assert mean_score([100.0, 200 / 3]) == 83.33
    assert mean_score([]) is None


@pytest.mark.parametrize(
    ("scores", "rule", "loc"),
    [
        ({"relevance": 5}, "rubric_complete", ("body", "scores", "commitment")),
        ({"relevance": 6, "commitment": 1}, "rubric_scale", ("body", "scores", "relevance")),
        ({"relevance": 0, "commitment": 1}, "rubric_scale", ("body", "scores", "relevance")),
        ({"relevance": 3, "commitment": 3, "x": 1}, "rubric_criterion", ("body", "scores", "x")),
    ],
)
def test_a_review_must_score_every_criterion_on_the_scale(scores, rule, loc):
    with pytest.raises(Invalid) as refused:
        RUBRIC.score(scores)
    assert refused.value.rule == rule and refused.value.loc == loc


def test_a_call_refuses_an_inverted_window_range_or_scale():
    with pytest.raises(Invalid, match="closes_at"):
        make_call(closes_at=NOW - timedelta(days=2))
    with pytest.raises(Invalid, match="population_max"):
        make_call(population_min=10, population_max=5)
    with pytest.raises(Invalid, match="scale_max"):
        make_call(rubric=Rubric(3, 3, (Criterion("a", 1),)))
    with pytest.raises(Invalid, match="unique"):
        make_call(rubric=Rubric(1, 5, (Criterion("a", 1), Criterion("a", 2))))


def test_conflicts_of_interest_same_city_always_same_country_when_asked():
    call = make_call()
    app = make_application(call, "Tartu", "EE")
    assert conflict_of_interest(Reviewer("r", "R", " tartu", "EE"), app, call) == "same_city"
    assert conflict_of_interest(Reviewer("r", "R", "Viljandi", "EE"), app, call) is None
    assert conflict_of_interest(Reviewer("r", "R", "Tartu", "LV"), app, call) is None
    strict = make_call(conflict_same_country=True)
    assert conflict_of_interest(Reviewer("r", "R", "Viljandi", "EE"), app, strict) == "same_country"


def test_spreading_is_even_and_skips_conflicts():
    call = make_call(reviews_required=2)
    apps = [make_application(call, f"City {i}", "LV") for i in range(6)]
    apps.append(make_application(call, "Tartu", "EE"))
    reviewers = [
        Reviewer("a", "A", "Tartu", "EE"),
        Reviewer("b", "B", "Kaunas", "LT"),
        Reviewer("c", "C", "Gdańsk", "PL"),
    ]
    result = spread(call, apps, reviewers, {}, {})
    counts = {r.id: 0 for r in reviewers}
    for _, reviewer_id in result.assigned:
        counts[reviewer_id] += 1
    assert len(result.assigned) == 14 and max(counts.values()) - min(counts.values()) <= 1
    assert (apps[-1].id, "a") not in result.assigned
    assert (apps[-1].id, "a", "same_city") in result.refused
    assert result.short == {}


def test_spreading_reports_applications_left_short():
    call = make_call(reviews_required=2, conflict_same_country=True)
    app = make_application(call, "Tartu", "EE")
    result = spread(call, [app], [Reviewer("a", "A", "Pärnu", "EE")], {}, {})
    assert result.assigned == [] and result.short == {app.id: 2}


def test_a_submission_checks_the_places_of_applications_it_did_not_load():
    # The submission path loads only (country, city name) of the call's others.
    book = CallBook(make_call(), other_places=(("LV", "Kuld\u200bīga"), ("EE", "Viljandi")))
    with pytest.raises(Conflict) as refused:
        book.submit(make_application(book.call, city=" kuldīga "), NOW)
    assert refused.value.rule == "one_application_per_city"
    book.submit(make_application(book.call, city="Viljandi", country="LV"), NOW)
    assert len(book.applications) == 1 and len(book.events) == 1


def test_submission_rules():
    book = CallBook(make_call())
    with pytest.raises(Invalid) as refused:
        book.submit(make_application(book.call, country="RU"), NOW)
    assert refused.value.loc == ("body", "country")
    with pytest.raises(Invalid) as refused:
        book.submit(make_application(book.call, population=4_999), NOW)
    assert refused.value.rule == "population_range"
    with pytest.raises(Invalid) as refused:
        book.submit(make_application(book.call, themes=("culture_creative_industries", "x")), NOW)
    assert refused.value.loc == ("body", "themes", 1)
    book.submit(make_application(book.call), NOW)
    with pytest.raises(Conflict) as refused:
        book.submit(make_application(book.call, city="KULDĪGA"), NOW)
    assert refused.value.rule == "one_application_per_city"
    with pytest.raises(Conflict) as refused:
        book.submit(make_application(book.call, city="Talsi"), book.call.closes_at)
    assert refused.value.rule == "submission_window"
    assert [e.event_type for e in book.events] == ["pearls.application.submitted"]
    assert len(book.audit) == 1


def test_a_withdrawn_acceptance_promotes_the_best_ranked_waitlisted():
    book = CallBook(make_call(places=1))
    apps = [make_application(book.call, c) for c in ("A-town", "B-town", "C-town")]
    for app, score in zip(apps, (90.0, 40.0, 70.0), strict=True):
        book.submit(app, NOW)
        app.score = score
    book.close(NOW, "coordinator:anna")
    book.decide(apps[0].id, "accept", NOW, "coordinator:anna")
    book.decide(apps[1].id, "waitlist", NOW, "coordinator:anna")
    book.decide(apps[2].id, "waitlist", NOW, "coordinator:anna")
    with pytest.raises(Conflict, match="places"):
        book.decide(apps[2].id, "accept", NOW, "coordinator:anna")
    book.events.clear()
    book.withdraw(apps[0].id, NOW, None)
    assert apps[2].status == "accepted" and apps[2].from_waitlist
    assert apps[1].status == "waitlisted"
    assert [e.event_type for e in book.events] == [
        "pearls.application.withdrawn",
        "pearls.application.accepted",
    ]
    assert book.audit[-1].actor == "system"


def test_an_accepted_event_carries_the_applicant_token_digest_never_the_token():
    book = CallBook(make_call(places=1))
    first, second = (make_application(book.call, c) for c in ("A-town", "B-town"))
    first.token_sha256, second.token_sha256 = b"\x01" * 32, b"\x02" * 32
    for app in (first, second):
        book.submit(app, NOW)
    book.close(NOW, "coordinator:anna")
    book.decide(first.id, "accept", NOW, "coordinator:anna")
    book.decide(second.id, "waitlist", NOW, "coordinator:anna")
    book.withdraw(first.id, NOW, None)
    accepted = [e for e in book.events if e.event_type == "pearls.application.accepted"]
    assert [(e.application_id, e.applicant_token_sha256) for e in accepted] == [
        (first.id, "01" * 32),
        (second.id, "02" * 32),
    ]
    assert "token_sha256" not in repr(first)


def test_rejection_needs_a_reason_and_withdrawn_is_final():
    book = CallBook(make_call())
    app = make_application(book.call)
    book.submit(app, NOW)
    book.close(NOW, "c")
    with pytest.raises(Invalid) as refused:
        book.decide(app.id, "reject", NOW, "c", reason="  ")
    assert refused.value.loc == ("body", "reason")
    book.withdraw(app.id, NOW, "moved on")
    for decision in ("accept", "reject", "waitlist"):
        with pytest.raises(Conflict):
            book.decide(app.id, decision, NOW, "c", reason="r")  # type: ignore[arg-type]


def test_a_reason_code_goes_with_a_rejection_only():
    book = CallBook(make_call())
    app = make_application(book.call)
    book.submit(app, NOW)
    book.close(NOW, "c")
    for decision in ("accept", "waitlist"):
        with pytest.raises(Invalid) as refused:
            book.decide(app.id, decision, NOW, "c", reason_code="ineligible")  # type: ignore[arg-type]
        assert refused.value.loc == ("body", "reason_code")
    assert app.status == "submitted"
    book.decide(app.id, "reject", NOW, "c", reason_code="ineligible", reason="Too large.")
    assert app.reason_code == "ineligible"


@pytest.mark.parametrize(
    ("visibility", "decided", "withdrawn_first", "shown"),
    [
        ("after_decision", False, False, False),
        ("after_decision", True, False, True),
        ("after_decision", False, True, False),  # withdrawn before any decision
        ("never", True, False, False),
        ("never", False, False, False),
    ],
)
def test_an_applicant_sees_its_score_only_as_the_call_allows(
    visibility, decided, withdrawn_first, shown
):
    call = make_call(status="closed", scores_visible_to_applicants=visibility)
    book = CallBook(call)
    app = make_application(call)
    app.score = 80.0
    book.applications[app.id] = app
    if withdrawn_first:
        book.withdraw(app.id, NOW, None)
    if decided:
        book.decide(app.id, "waitlist", NOW, "coordinator:anna")
    assert call.shows_scores_to_applicant(app) is shown


def test_contacts_change_after_the_call_closed_is_published_once_and_only_when_changed():
    book = CallBook(make_call())
    app = make_application(book.call)
    book.submit(app, NOW)
    book.close(NOW, "c")
    book.decide(app.id, "accept", NOW, "c")
    book.events.clear()
    later = NOW + timedelta(days=40)
    new = (
        ContactPerson(name="Mārtiņš", email="martins@example.org", language="en", role="primary"),
        ContactPerson(name="Inese", email="inese@example.org", language="lv", role="backup"),
    )
    book.update(app.id, {"contacts": new}, later)
    [event] = book.events
    assert event.event_type == "pearls.application.contacts_changed"
    assert event.contacts == new and event.changed_at == later
    book.events.clear()
    book.update(app.id, {"contacts": tuple(reversed(new))}, later)  # the same people
    assert book.events == []
    with pytest.raises(Conflict, match="submission"):
        book.update(app.id, {"contacts": new, "population": 12_000}, later)


def test_the_contacts_of_a_closed_application_stay_as_they_were():
    book = CallBook(make_call())
    app = make_application(book.call)
    book.submit(app, NOW)
    book.withdraw(app.id, NOW, None)
    other = (ContactPerson(name="X", email="x@example.org", language="en", role="primary"),)
    with pytest.raises(Conflict, match="withdrawn"):
        book.update(app.id, {"contacts": other}, NOW)
