"""Use cases of the awards service: transaction -> domain -> repository -> outbox.

The participants' view is fed by events (``ViewEvents``); rounds, nominations,
scores and awards by people through the HTTP API (``Awards``). A participant
that becomes eligible while a round is open is nominated at once, in the same
transaction as the event that made it eligible.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import structlog

from pearls_awards.adapters import repository as repo
from pearls_awards.domain import ranking
from pearls_awards.domain.rounds import (
    Round,
    check_scores,
    conflicts,
    ineligibility,
    may_close,
    may_score,
)
from pearls_awards.domain.showcase import Pearl, make_slug
from pearls_awards.domain.view import ParticipantView, apply
from pearls_shared import envelope as ce
from pearls_shared import privacy
from pearls_shared.db import Conn
from pearls_shared.errors import Conflict, Forbidden, NotFound
from pearls_shared.events import awards as ev
from pearls_shared.events.applications import PersonErased
from pearls_shared.events.common import ContactPerson, PersonRef
from pearls_shared.outbox import record_event
from pearls_shared.tokens import new_token

log = structlog.get_logger(__name__)
Clock = Callable[[], datetime]
SYSTEM = "system"


def utcnow() -> datetime:
    return datetime.now(UTC)


def participant_of(data: Any) -> uuid.UUID:
    """The participant an event is about (applications call it the application id)."""
    found: uuid.UUID = getattr(data, "participant_id", None) or data.application_id
    return found


def _person(j: Any) -> PersonRef:
    return PersonRef(person_id=j.juror_id, name=j.name, email=j.email, language=j.language)


async def _nominate(
    conn: Conn,
    round_: Round,
    view: ParticipantView,
    *,
    by: str,
    statement: str | None,
    now: datetime,
    correlation_id: str,
    causation_id: str | None = None,
) -> bool:
    """Nominate (once), note the jurors in conflict, announce it. False if nominated before."""
    fresh = await repo.insert_nomination(
        conn, repo.Nomination(round_.round_id, view.participant_id, now, by, statement)
    )
    if not fresh:
        return False
    await repo.record_exclusions(
        conn,
        round_.round_id,
        [
            repo.Exclusion(j.juror_id, view.participant_id, reason, detail, now)
            for j in round_.jurors
            for reason, detail in conflicts(j, view)
        ],
    )
    await repo.audit(
        conn,
        now,
        by,
        "nominated",
        round_id=round_.round_id,
        participant_id=view.participant_id,
        details={"statement": statement} if statement else {},
    )
    await record_event(
        conn,
        ev.AwardNominated(
            round_id=round_.round_id,
            participant_id=view.participant_id,
            nominated_at=now,
            city_name=view.city_name or "",
            country=view.country or "",
            contacts=tuple(ContactPerson.model_validate(c) for c in view.contacts or ()),
            themes=view.themes,
        ),
        correlation_id=correlation_id,
        causation_id=causation_id,
    )
    return True


class ViewEvents:
    """Participants' view from pearls.applications.v1 and pearls.mentoring.v1.

    With ``nominate`` off (a rebuild from the topics) only the view changes:
    nominations are people's and rounds' history, not a function of the topics.
    """

    def __init__(
        self,
        clock: Clock = utcnow,
        *,
        nominate: bool = True,
        eraser: privacy.Eraser | None = None,
    ) -> None:
        self.clock = clock
        self.nominate = nominate
        self.eraser = eraser or privacy.Eraser.from_settings()

    async def on_erased(self, conn: Conn, envelope: ce.Envelope, data: Any) -> None:
        """Pseudonymise every record of the erased addresses (view contacts, mentors in
        the view, jurors, conflict details, audit, outbox) and register them."""
        erased: PersonErased = data
        hide = await privacy.apply_erasure(conn, self.eraser, erased)
        if not hide:
            return  # unknown here, already erased, or arriving before the data
        await repo.anonymise_jurors(conn, sorted(hide.values()))
        await repo.audit(
            conn,
            self.clock(),
            SYSTEM,
            "person_erased",
            participant_id=erased.application_id,
            details={"erasure_id": str(erased.erasure_id), "addresses": len(hide)},
        )

    async def on_event(self, conn: Conn, envelope: ce.Envelope, data: Any) -> None:
        # Erased addresses are pseudonymised before they reach the view (live and rebuild).
        data = await privacy.hide_erased(conn, self.eraser, data)
        pid = participant_of(data)
        await repo.lock_participant(conn, pid)
        view = await repo.load_view(conn, pid) or ParticipantView(pid)
        apply(view, data)
        await repo.save_view(conn, view)
        if not self.nominate or not view.active:
            return
        for round_id in await repo.open_round_ids(conn):
            round_ = await repo.load_round(conn, round_id)
            assert round_ is not None
            if ineligibility(view, round_.eligibility) is not None:
                continue
            if await repo.is_nominated(conn, round_id, pid):
                continue
            await _nominate(
                conn,
                round_,
                view,
                by=SYSTEM,
                statement=None,
                now=self.clock(),
                correlation_id=envelope.correlation_id,
                causation_id=envelope.id,
            )
            log.info("nominated_automatically", round_id=str(round_id), participant_id=str(pid))


@dataclass(frozen=True, slots=True)
class Closed:
    result: ranking.Result
    pearls: tuple[Pearl, ...]


class Awards:
    """The use cases people drive, bound to the service's pool."""

    def __init__(self, pool: asyncpg.Pool[Any], clock: Clock = utcnow) -> None:
        self.pool = pool
        self.clock = clock

    async def open_round(
        self, round_: Round, actor: str, correlation_id: str
    ) -> tuple[Round, dict[uuid.UUID, str], int]:
        """Open a round; return it, each juror's token (shown once) and how many of the
        participants eligible right now were nominated."""
        tokens = {j.juror_id: new_token() for j in round_.jurors}
        round_.opened_at = self.clock()
        async with self.pool.acquire() as conn, conn.transaction():
            await repo.insert_round(
                conn, round_, actor, {jid: digest for jid, (_, digest) in tokens.items()}
            )
            await repo.audit(
                conn, round_.opened_at, actor, "round_opened", round_id=round_.round_id
            )
            await record_event(
                conn,
                ev.AwardRoundOpened.model_validate(
                    {
                        "round_id": round_.round_id,
                        "title": round_.title,
                        "opened_at": round_.opened_at,
                        "closes_at": round_.closes_at,
                        "criteria": [
                            {
                                "criterion_id": c.criterion_id,
                                "name": round_.criterion_names[c.criterion_id],
                                "weight": c.weight,
                            }
                            for c in round_.criteria
                        ],
                        "eligibility": {
                            "plan_approved_required": round_.eligibility.plan_approved_required,
                            "min_milestone_share": round_.eligibility.min_milestone_share,
                            "call_ids": round_.eligibility.call_ids,
                        },
                        "awards_count": round_.awards_count,
                        "additional_award_allowed": round_.additional_award_allowed,
                        "tie_break_rule": ranking.TIE_BREAK_RULE,
                        "per_country": round_.per_country,
                        "tight_margin": round_.tight_margin,
                        "normalise_scores": round_.normalise,
                        "jurors": [_person(j) for j in round_.jurors],
                    }
                ),
                correlation_id=correlation_id,
            )
            nominated = 0
            for view in await repo.all_views(conn):
                if view.active and ineligibility(view, round_.eligibility) is None:
                    nominated += await _nominate(
                        conn,
                        round_,
                        view,
                        by=SYSTEM,
                        statement=None,
                        now=round_.opened_at,
                        correlation_id=correlation_id,
                    )
        return round_, {jid: text for jid, (text, _) in tokens.items()}, nominated

    async def _round(self, conn: Conn, round_id: uuid.UUID, *, lock: bool = False) -> Round:
        round_ = await repo.load_round(conn, round_id, lock=lock)
        if round_ is None:
            raise NotFound(("path", "round_id"), "exists", "no such round")
        return round_

    async def nominate(
        self,
        round_id: uuid.UUID,
        participant_id: uuid.UUID,
        statement: str,
        actor: str,
        correlation_id: str,
    ) -> None:
        """A coordinator nominates with a statement; an ineligible one is refused by rule."""
        now = self.clock()
        async with self.pool.acquire() as conn, conn.transaction():
            round_ = await self._round(conn, round_id)
            if round_.status != "open":
                raise Conflict(("path", "round_id"), "round_open", "the round is closed")
            await repo.lock_participant(conn, participant_id)
            view = await repo.load_view(conn, participant_id)
            failed = ineligibility(view, round_.eligibility)
            if failed is not None:
                rule, why = failed
                raise Conflict(("body", "participant_id"), rule, f"not eligible: {why}")
            assert view is not None
            if not await _nominate(
                conn,
                round_,
                view,
                by=actor,
                statement=statement,
                now=now,
                correlation_id=correlation_id,
            ):
                raise Conflict(
                    ("body", "participant_id"), "unique", "the participant is nominated already"
                )

    async def score(
        self,
        round_id: uuid.UUID,
        juror_id: uuid.UUID,
        participant_id: uuid.UUID,
        values: Mapping[str, int],
    ) -> None:
        """A juror scores every criterion of one nominee; a juror in conflict may not."""
        now = self.clock()
        async with self.pool.acquire() as conn, conn.transaction():
            round_ = await self._round(conn, round_id)
            may_score(round_, now)
            juror = next((j for j in round_.jurors if j.juror_id == juror_id), None)
            if juror is None:
                raise Forbidden(("path", "round_id"), "juror", "you are not on this round's jury")
            if not await repo.is_nominated(conn, round_id, participant_id):
                raise NotFound(("path", "participant_id"), "nominated", "no such nominee")
            view = await repo.load_view(conn, participant_id)
            assert view is not None
            found = conflicts(juror, view)
            if not found:
                checked = check_scores(values, round_.criteria)
                await repo.save_scores(conn, round_id, juror_id, participant_id, checked, now)
                await repo.audit(
                    conn,
                    now,
                    f"juror:{juror_id}",
                    "scored",
                    round_id=round_id,
                    participant_id=participant_id,
                    details={"scores": checked},
                )
                return
            # Refused, yet recorded: this transaction commits before the refusal is raised,
            # so the coordinator sees why.
            await repo.record_exclusions(
                conn,
                round_id,
                [repo.Exclusion(juror_id, participant_id, r, d, now) for r, d in found],
            )
            reason, detail = found[0]
            await repo.audit(
                conn,
                now,
                f"juror:{juror_id}",
                "score_refused",
                round_id=round_id,
                participant_id=participant_id,
                details={"reason": reason, "detail": detail},
            )
        raise _Excluded(("path", "participant_id"), "conflict_of_interest", f"{reason}: {detail}")

    async def standings(self, round_id: uuid.UUID, *, additional: bool = True) -> ranking.Result:
        """The ranking as it stands (coordinators preview it before closing)."""
        async with self.pool.acquire() as conn:
            round_ = await self._round(conn, round_id)
            return await self._rank(conn, round_, additional=additional)

    async def exclusions(self, round_id: uuid.UUID) -> list[repo.Exclusion]:
        """Jurors excluded for conflicts: as recorded, and (while the round is open) as
        the events say now — read only, nothing is written by looking."""
        async with self.pool.acquire() as conn:
            round_ = await self._round(conn, round_id)
            recorded = await repo.exclusions(conn, round_id)
            if round_.status == "closed":
                return recorded
            nominations = await repo.nominations(conn, round_id)
            derived = _derived(
                round_,
                nominations,
                await repo.views(conn, [n.participant_id for n in nominations]),
                self.clock(),
            )
        seen = {(e.juror_id, e.participant_id, e.reason) for e in recorded}
        return recorded + [
            e for e in derived if (e.juror_id, e.participant_id, e.reason) not in seen
        ]

    async def _rank(
        self, conn: Conn, round_: Round, *, additional: bool, record: bool = False
    ) -> ranking.Result:
        nominations = await repo.nominations(conn, round_.round_id)
        views = await repo.views(conn, [n.participant_id for n in nominations])
        excluded = _derived(round_, nominations, views, self.clock())
        if record:  # the decision keeps who could not score whom, and why
            await repo.record_exclusions(conn, round_.round_id, excluded)
        nominees = [
            ranking.Nominee(
                n.participant_id,
                views[n.participant_id].city_name or "",
                views[n.participant_id].country or "",
                n.nominated_at,
            )
            for n in nominations
            if views[n.participant_id].withdrawn_at is None  # a participant that left wins nothing
        ]
        return ranking.rank(
            nominees,
            round_.criteria,
            await repo.scores(conn, round_.round_id),
            ranking.Rules(
                awards_count=round_.awards_count,
                per_country=round_.per_country,
                additional_award_allowed=round_.additional_award_allowed and additional,
                tight_margin=round_.tight_margin,
                normalise=round_.normalise,
            ),
            excluded={(str(e.juror_id), e.participant_id) for e in excluded},
        )

    async def close(
        self,
        round_id: uuid.UUID,
        actor: str,
        correlation_id: str,
        *,
        citations: Mapping[uuid.UUID, Mapping[str, str]],
        grant_additional: bool = True,
    ) -> Closed:
        """Close the round: rank, grant, record why, announce. Closing twice is refused."""
        now = self.clock()
        async with self.pool.acquire() as conn, conn.transaction():
            round_ = await self._round(conn, round_id, lock=True)
            may_close(round_)
            result = await self._rank(conn, round_, additional=grant_additional, record=True)
            views = await repo.views(conn, [w.participant_id for w in result.winners])
            taken = await repo.slugs(conn)
            title = round_.title.get("en") or next(iter(round_.title.values()))
            pearls: list[Pearl] = []
            for w in result.winners:
                view = views[w.participant_id]
                slug = make_slug(now.year, view.city_name or "pearl", taken)
                taken.add(slug)
                pearl = Pearl(
                    participant_id=w.participant_id,
                    slug=slug,
                    city_name=view.city_name or "",
                    country=view.country or "",
                    year=now.year,
                    round_id=round_id,
                    round_title=title,
                    rank=w.rank,
                    additional_award=w.additional_award,
                    citation=dict(citations.get(w.participant_id) or _citation(view, now.year)),
                    themes=view.themes,
                    achievements=view.achievements_for_showcase(),
                    granted_at=now,
                )
                pearls.append(pearl)
                await repo.insert_award(conn, round_id, pearl, w.score)
                await record_event(
                    conn,
                    ev.AwardGranted.model_validate(
                        {
                            "round_id": round_id,
                            "participant_id": w.participant_id,
                            "granted_at": now,
                            "city_name": pearl.city_name,
                            "country": pearl.country,
                            "contacts": view.contacts,
                            "rank": w.rank,
                            "score": round(w.score, 2),
                            "additional_award": w.additional_award,
                            "citation": pearl.citation,
                            "themes": pearl.themes or ("culture_creative_industries",),
                            "achievements": pearl.achievements,
                        }
                    ),
                    correlation_id=correlation_id,
                )
            record = result_record(result, await repo.exclusions(conn, round_id))
            await repo.close_round(conn, round_id, now, record)
            await repo.audit(conn, now, actor, "round_closed", round_id=round_id, details={})
            await record_event(
                conn,
                ev.AwardRoundClosed.model_validate(
                    {
                        "round_id": round_id,
                        "closed_at": now,
                        "nominees_count": len(result.standings),
                        "winners": [
                            {
                                "participant_id": w.participant_id,
                                "city_name": views[w.participant_id].city_name,
                                "country": views[w.participant_id].country,
                                "rank": w.rank,
                                "score": round(w.score, 2),
                                "additional_award": w.additional_award,
                            }
                            for w in result.winners
                        ],
                        "jurors": [_person(j) for j in round_.jurors],
                    }
                ),
                correlation_id=correlation_id,
            )
        return Closed(result, tuple(pearls))

    async def revoke(
        self,
        round_id: uuid.UUID,
        participant_id: uuid.UUID,
        reason: str,
        actor: str,
        correlation_id: str,
    ) -> None:
        now = self.clock()
        async with self.pool.acquire() as conn, conn.transaction():
            outcome = await repo.revoke(conn, round_id, participant_id, now, reason)
            if outcome is None:
                raise NotFound(("path", "participant_id"), "awarded", "no such award")
            if outcome == "already":
                raise Conflict(("path", "participant_id"), "not_revoked", "revoked already")
            view = await repo.load_view(conn, participant_id)
            assert view is not None
            await repo.audit(
                conn,
                now,
                actor,
                "award_revoked",
                round_id=round_id,
                participant_id=participant_id,
                details={"reason": reason},
            )
            await record_event(
                conn,
                ev.AwardRevoked.model_validate(
                    {
                        "round_id": round_id,
                        "participant_id": participant_id,
                        "revoked_at": now,
                        "city_name": view.city_name,
                        "country": view.country,
                        "contacts": view.contacts,
                        "reason": reason,
                    }
                ),
                correlation_id=correlation_id,
            )


def _derived(
    round_: Round,
    nominations: Sequence[repo.Nomination],
    views: Mapping[uuid.UUID, ParticipantView],
    now: datetime,
) -> list[repo.Exclusion]:
    """Every (juror, nominee) conflict the events show now."""
    return [
        repo.Exclusion(j.juror_id, n.participant_id, reason, detail, now)
        for n in nominations
        for j in round_.jurors
        for reason, detail in conflicts(j, views[n.participant_id])
    ]


class _Excluded(Forbidden):
    """A juror in conflict with a nominee (403, the rule and reason named)."""


def _citation(view: ParticipantView, year: int) -> dict[str, str]:
    first = view.achievements_for_showcase()[0]
    return {
        "en": f"{view.city_name} is a Baltic Sea cultural pearl {year}: {first}"[:4000],
    }


def result_record(result: ranking.Result, exclusions: Sequence[repo.Exclusion]) -> dict[str, Any]:
    """The decision as recorded with the round: why each winner won, why others did not."""
    return {
        "tie_break_rule": result.tie_break_rule,
        "standings": [
            {
                "participant_id": str(s.participant_id),
                "city_name": s.city_name,
                "country": s.country,
                "score": s.score,
                "raw_score": s.raw_score,
                "jurors": s.jurors,
                "position": s.position,
            }
            for s in result.standings
        ],
        "winners": [
            {
                "participant_id": str(w.participant_id),
                "rank": w.rank,
                "score": w.score,
                "additional_award": w.additional_award,
                "reason": w.reason,
            }
            for w in result.winners
        ],
        "runners_up": [
            {
                "participant_id": str(r.participant_id),
                "score": r.score,
                "reason_code": r.reason_code,
                "reason": r.reason,
            }
            for r in result.runners_up
        ],
        "exclusions": [
            {
                "juror_id": str(e.juror_id),
                "participant_id": str(e.participant_id),
                "reason": e.reason,
                "detail": e.detail,
            }
            for e in exclusions
        ],
    }


# Who reacts to what:
#   pearls.application.* / pearls.mentor.* / pearls.plan.*  ViewEvents.on_event
#       (the view; an eligible participant is nominated)     pearls.award.nominated
#       (.contacts_changed: the latest contact list wins; erased addresses arrive pseudonymised)
#   pearls.person.erased       ViewEvents.on_erased          (pseudonymised; register)
#   open round                 Awards.open_round             .round_opened (+ .nominated)
#   nominate with a statement  Awards.nominate               pearls.award.nominated
#   score                      Awards.score                  (audit; conflicts refused and recorded)
#   close round                Awards.close                  pearls.award.granted + .round_closed
#   revoke                     Awards.revoke                 pearls.award.revoked
