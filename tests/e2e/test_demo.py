"""`make run`'s demo, end to end: what a newcomer sees is what the system did."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.mail import read_mail, subject, subject_patterns, template, to

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]

# The people of the demo (deploy/demo/src/pearls_demo/scenario.py).
INESE, MART = "inese@kuldiga.example", "mart@viljandi.example"
FRAUKE, KARIN = "frauke@husum.example", "karin@ystad.example"
LIGA, TRIIN = "liga@cesis.example", "triin@haapsalu.example"
RASA, CLAUDIA, KADRI, MIKKO = (
    "rasa@balticculture.example",
    "claudia@boell-sh.example",
    "kadri@viljandi-pearl.example",
    "mikko@kulttuuriverkosto.example",
)
# The jury: Kadri Tamm (Kuldīga's mentor, from Viljandi) and two more.
BIRGIT, PIOTR = "birgit@kulturnetz-sh.example", "piotr@baltic-culture-fund.example"
COORDINATORS = "coordinators@bsr-cultural-pearls.example"  # notifications' default mailbox
# Every mentoring e-mail the demo causes, each exactly once per (template, recipient)
# and count; templates of pearls.mentoring.v1 not listed must not be sent at all.
MENTORING_MAIL = Counter(
    {
        ("mentor_registered", RASA): 1,
        ("mentor_registered", CLAUDIA): 1,
        ("mentor_registered", KADRI): 1,
        ("mentor_registered", MIKKO): 1,
        # Every accepted city gets a mentor, Husum too before it withdraws.
        ("mentor_assigned", INESE): 1,
        ("mentor_assigned", MART): 1,
        ("mentor_assigned", FRAUKE): 1,
        ("mentor_assigned", KARIN): 1,
        ("mentor_assigned", LIGA): 1,
        ("mentor_assigned", TRIIN): 1,
        ("mentee_assigned", KADRI): 1,  # Kuldīga
        ("mentee_assigned", RASA): 1,  # Viljandi
        ("mentee_assigned", CLAUDIA): 2,  # Husum, then Ystad in its place
        ("mentee_assigned", MIKKO): 2,  # Cēsis and Haapsalu
        # Husum left by itself: its withdrawal mail says so, no "your mentor left" on top.
        ("mentee_unassigned", CLAUDIA): 1,
        ("plan_submitted", KADRI): 2,  # Kuldīga's revisions 1 and 2
        ("plan_changes_requested", INESE): 1,
        ("plan_approved", INESE): 1,
        ("milestone_reached", KADRI): 3,  # two, then the overdue one, late
        # Before the award round the others carry out their plans (revision 1 approved).
        ("plan_submitted", RASA): 1,  # Viljandi
        ("plan_submitted", MIKKO): 2,  # Cēsis, Haapsalu
        ("plan_submitted", CLAUDIA): 1,  # Ystad
        ("plan_approved", MART): 1,
        ("plan_approved", LIGA): 1,
        ("plan_approved", TRIIN): 1,
        ("plan_approved", KARIN): 1,
        ("milestone_reached", RASA): 2,
        ("milestone_reached", MIKKO): 4,
        ("milestone_reached", CLAUDIA): 2,  # Ystad's second one once the round is open
        ("milestone_overdue", INESE): 1,
        ("milestone_overdue", KADRI): 1,
        ("session_scheduled", INESE): 1,
        ("session_scheduled", MART): 1,
        ("session_scheduled", KADRI): 1,
        ("session_scheduled", RASA): 1,
    }
)
MENTORING_TEMPLATES = {t for t, _ in MENTORING_MAIL} | {
    "mentor_unassigned",
    "mentor_unmatched",
    "plan_completed",
}
# Every award e-mail, exactly once each: the jury is invited, every nominee hears of
# its nomination, every winner of its award (the additional one too), and the jury
# and the coordinators that the round closed. Nothing is revoked.
AWARD_MAIL = Counter(
    {
        ("award_jury_invited", KADRI): 1,
        ("award_jury_invited", BIRGIT): 1,
        ("award_jury_invited", PIOTR): 1,
        ("award_nominated", INESE): 1,
        ("award_nominated", MART): 1,
        ("award_nominated", LIGA): 1,
        ("award_nominated", TRIIN): 1,
        ("award_nominated", KARIN): 1,
        ("award_granted", INESE): 1,
        ("award_granted", LIGA): 1,
        ("award_granted", MART): 1,
        ("award_round_closed", KADRI): 1,
        ("award_round_closed", BIRGIT): 1,
        ("award_round_closed", PIOTR): 1,
        ("award_round_closed", COORDINATORS): 1,
    }
)
AWARD_TEMPLATES = {t for t, _ in AWARD_MAIL} | {"award_revoked"}


@pytest.fixture
def workdir() -> Iterator[Path]:
    # Not under pytest's tmp dir: PostgreSQL runs as an unprivileged user when
    # the tests run as root, and must be able to reach its data directory.
    path = ROOT / "var" / f"e2e-{uuid.uuid4().hex[:8]}"
    path.mkdir(parents=True)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _events(output: str, event_type: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith(f"  event  {event_type} ")]


def _cities(lines: list[str]) -> Counter[str]:
    """How many of these event lines name each city."""
    return Counter(
        re.search(r"city_name=(.+?) (?:country|mentor)=", line).group(1)  # type: ignore[union-attr]
        for line in lines
    )


def test_the_demo_plays_through_the_public_api_and_mails_everyone_once(workdir: Path) -> None:
    demo = subprocess.run(
        [
            sys.executable,
            "-m",
            "pearls_demo.cli",
            "--exit-after-demo",
            "--workdir",
            str(workdir),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = demo.stdout
    assert demo.returncode == 0, output[-3000:] + demo.stderr[-3000:]
    # Thrown away as the README says: no database or Kafka data stays behind, logs do.
    assert not (workdir / "postgres" / "data").exists()
    assert not list(workdir.glob("kafka/*/data"))
    assert (workdir / "logs" / "applications.log").is_file()
    # The mail page takes a free port like everything else, and says where.
    [mail_page] = re.findall(r"^captured mail +(http://127\.0\.0\.1:\d+/)$", output, re.M)
    assert mail_page != "http://127.0.0.1:8025/"
    # The refusals a person would expect, with the rule named.
    assert "Husum submitted a second application: refused, 409" in output
    assert "one_application_per_city" in output
    assert "Rīga applied: refused, 422 body.population" in output
    # Decisions and the waitlist promotion, as events on the topic.
    assert output.count("event  pearls.application.submitted") == 7
    assert output.count("event  pearls.application.accepted") == 6  # 5 + Ystad moving up
    assert "event  pearls.application.withdrawn         city_name=Husum" in output
    # Mail: German for the German contact, and nobody twice.
    assert "application_accepted         -> frauke@husum.example [de]" in output
    assert "demo done: " in output and "(0 failed)" in output
    mails = read_mail(workdir / "mail")
    sent = output.count("  mail   sent ")
    assert len(mails) == sent >= 13
    assert len({m["Message-ID"] for m in mails}) == len(mails)
    husum = [m for m in mails if to(m) == FRAUKE]
    assert husum and all(m.get_content_type() == "multipart/alternative" for m in husum)

    # -- mentoring, as events on pearls.mentoring.v1 ---------------------------------------
    assert len(_events(output, "pearls.mentor.registered")) == 4
    assigned = _cities(_events(output, "pearls.mentor.assigned"))
    # One match per accepted city still in the programme, and Husum's before it left.
    assert assigned == Counter(
        {"Kuldīga": 1, "Viljandi": 1, "Ystad": 1, "Husum": 1, "Cēsis": 1, "Haapsalu": 1}
    )
    unassigned = _events(output, "pearls.mentor.unassigned")
    assert len(unassigned) == 1 and "city_name=Husum" in unassigned[0]
    assert not _events(output, "pearls.mentor.unmatched")
    submitted = _events(output, "pearls.plan.submitted")
    kuldiga = [line for line in submitted if "city_name=Kuldīga " in line]
    assert [line.split("revision=")[1] for line in kuldiga] == ["1", "2"]
    # The others' plans, written before the award round, approved as they are.
    assert len(submitted) == 2 + 4 and all(
        line.endswith("revision=1") for line in submitted if line not in kuldiga
    )
    assert len(_events(output, "pearls.plan.changes_requested")) == 1
    approved = _cities(_events(output, "pearls.plan.approved"))
    assert approved == Counter(
        {c: 1 for c in ("Kuldīga", "Viljandi", "Cēsis", "Haapsalu", "Ystad")}
    )
    assert "city_name=Kuldīga country=LV mentor=Kadri Tamm revision=2" in output
    reached = _cities(_events(output, "pearls.plan.milestone_reached"))
    assert reached == Counter({"Kuldīga": 3, "Viljandi": 2, "Cēsis": 2, "Haapsalu": 2, "Ystad": 2})
    overdue = _events(output, "pearls.plan.milestone_overdue")
    assert len(overdue) == 1 and "city_name=Kuldīga" in overdue[0]
    assert not _events(output, "pearls.plan.completed")
    assert len(_events(output, "pearls.session.scheduled")) == 1

    # The matches, each with its mentor, points and why.
    matches = dict(
        re.findall(r"^  (\S[^(\n]*?) \(\w\w\) <- (.+: score \d+\.\d\d .*)$", output, re.M)
    )
    assert matches.keys() == {"Kuldīga", "Viljandi", "Husum", "Ystad", "Cēsis", "Haapsalu"}, output
    assert matches["Kuldīga"].startswith("Kadri Tamm (pearl city Viljandi, EE): score 5.00 =")
    assert matches["Viljandi"].startswith("Rasa Jankauskienė (national expert, LT): score 5.00")
    assert matches["Husum"].startswith("Claudia Becker (national expert, DE): score 4.00")
    assert matches["Ystad"].startswith("Claudia Becker (national expert, DE): score ")
    # Mikko Laine covers both new cities' themes; which of them has his first slot varies.
    assert matches["Cēsis"].startswith("Mikko Laine (national expert, FI): score ")
    assert matches["Haapsalu"].startswith("Mikko Laine (national expert, FI): score ")
    assert "      why: Shares English and 2 of 2 themes" in output
    assert "mentors across the border (EE→LV)" in output
    assert "mentors within DE" in output
    assert (
        'publishing "Pop-up culture shops in the old town" in the playbook: refused, 409' in output
    )
    assert "-> Youth festival board (Kuldīga, LV)" in output

    # -- mentoring, at the SMTP sink: every e-mail once ------------------------------------
    patterns = subject_patterns()
    arrived = Counter((template(m, patterns), to(m)) for m in mails)
    printed = Counter(re.findall(r"^  mail   sent   (\w+) +-> (\S+) \[", output, re.M))
    assert arrived == printed  # what the terminal said went out is what arrived
    mentoring = [m for m in mails if template(m, patterns) in MENTORING_TEMPLATES]
    assert Counter((template(m, patterns), to(m)) for m in mentoring) == MENTORING_MAIL
    twice = [k for k, n in Counter((to(m), subject(m)) for m in mentoring).items() if n > 1]
    assert not twice, f"the same mail arrived twice: {twice}"
    to_kadri = {subject(m) for m in mentoring if to(m) == KADRI}
    assert {
        "Action plan to review: Kuldīga (revision 1)",
        "Action plan to review: Kuldīga (revision 2)",
    } <= to_kadri
    # In the recipient's language: German for Claudia Becker, English for Kadri Tamm (et).
    assert {m["Content-Language"] for m in mentoring if to(m) == CLAUDIA} == {"de"}
    assert {m["Content-Language"] for m in mentoring if to(m) == KADRI} == {"en"}
    # The invitation gives the session's own wall-clock time and offset (Tallinn, winter).
    [invitation] = [m for m in mentoring if template(m, patterns) == "session_scheduled"][:1]
    text = invitation.get_body(preferencelist=("plain",)).get_content()
    assert "14:00 UTC+02:00" in text, text

    # -- awards, as events on pearls.awards.v1 ---------------------------------------------
    [opened] = _events(output, "pearls.award.round_opened")
    assert "awards=2 jurors=3" in opened
    # Each nominee once: three eligible when the round opened, two made so by mentoring's events.
    nominated = _cities(_events(output, "pearls.award.nominated"))
    assert nominated == Counter(
        {c: 1 for c in ("Kuldīga", "Viljandi", "Cēsis", "Haapsalu", "Ystad")}
    )
    granted = re.findall(
        r"^  event  pearls\.award\.granted +city_name=(\S+) country=\w\w rank=(\d) score=\S+"
        r"( additional_award)?$",
        output,
        re.M,
    )
    assert len(granted) == len(_events(output, "pearls.award.granted")) == 3
    # Cēsis scored second, but Latvia had its regular award: the additional one is Cēsis's.
    assert {city: (rank, bool(extra)) for city, rank, extra in granted} == {
        "Kuldīga": ("1", False),
        "Cēsis": ("2", True),
        "Viljandi": ("3", False),
    }
    [closed] = _events(output, "pearls.award.round_closed")
    assert "nominees=5 winners=Kuldīga,Cēsis,Viljandi" in closed
    assert not _events(output, "pearls.award.revoked")

    # -- awards, as the terminal tells it: nominations, conflicts, the rule and why --------
    assert "> nominated at once, eligible already (3): Cēsis, Haapsalu, Viljandi" in output
    assert (
        "> coordinator nominated Ystad: refused, 409 body.participant_id: milestone_share" in output
    )
    assert re.search(
        r'^> Kuldīga reported "Agreement with shop owners signed" reached, \d+ days after its due'
        r" date: 3 of 5 milestones, so the awards service nominated it by itself$",
        output,
        re.M,
    )
    assert (
        '> Ystad reported "Story trail through the old town" reached: 2 of 3 milestones' in output
    )
    # The juror who mentored Kuldīga (matched by her e-mail) and comes from Viljandi.
    assert "  Kadri Tamm does not score Kuldīga: mentored (Kadri Tamm mentored Kuldīga)" in output
    assert (
        "  Kadri Tamm does not score Viljandi: same_city (Kadri Tamm comes from Viljandi)" in output
    )
    assert (
        "> Kadri Tamm tried to score Kuldīga anyway: refused, 403 path.participant_id:"
        " conflict_of_interest" in output
    )
    assert "> the jury scored: 13 score sheets from 3 jurors" in output
    ranking = re.findall(
        r"^  (\d)\. (\S+) \((\w\w)\) (\d+\.\d\d) from (\d) jurors: (.+)\n      why: (.+)$",
        output,
        re.M,
    )
    assert [(pos, city, score, outcome) for pos, city, _, score, _, outcome, _ in ranking] == [
        ("1", "Kuldīga", "90.00", "award, rank 1"),
        ("2", "Cēsis", "85.00", "additional award, rank 2"),
        ("3", "Viljandi", "83.75", "award, rank 3"),
        ("4", "Haapsalu", "75.00", "no award (country_quota)"),
        ("5", "Ystad", "70.00", "no award (awards_exhausted)"),
    ], output[-8000:]
    why = {city: reason for _, city, _, _, _, _, reason in ranking}
    assert why["Kuldīga"].startswith("Highest score in LV (90.00), place 1 of 2 regular awards")
    assert why["Viljandi"].startswith("Highest score in EE (83.75), place 2 of 2 regular awards")
    assert why["Cēsis"].startswith("Additional award, exempt from the country rule: score 85.00")
    assert "within the margin of 2.00" in why["Cēsis"]
    assert "EE already has 1 regular award, the quota per country" in why["Haapsalu"]
    assert "the one additional award went to Cēsis (LV, 85.00)" in why["Ystad"]
    assert re.search(
        r"^> coordinator closed the round with the jury's citations: Kuldīga, Cēsis and Viljandi"
        r" are the Baltic Sea cultural pearls \d{4}$",
        output,
        re.M,
    )
    # The showcase's address, and a page per pearl under it.
    [showcase] = re.findall(
        r"^> the pearls are public at (http://127\.0\.0\.1:\d+/showcase)$", output, re.M
    )
    pages = re.findall(
        rf"^  (\S+) \(\w\w\): {re.escape(showcase)}/(\d{{4}}-[a-z-]+)$", output, re.M
    )
    assert [(city, slug[5:]) for city, slug in pages] == [
        ("Kuldīga", "kuldiga"),
        ("Cēsis", "cesis"),
        ("Viljandi", "viljandi"),
    ]

    # -- awards, at the SMTP sink: every e-mail exactly once -------------------------------
    awards = [m for m in mails if template(m, patterns) in AWARD_TEMPLATES]
    assert Counter((template(m, patterns), to(m)) for m in awards) == AWARD_MAIL
    twice = [k for k, n in Counter((to(m), subject(m)) for m in awards).items() if n > 1]
    assert not twice, f"the same mail arrived twice: {twice}"
    subjects = {(template(m, patterns), to(m)): subject(m) for m in awards}
    assert subjects[("award_granted", LIGA)] == "Cēsis receives the BSR Cultural Pearls Award"
    assert subjects[("award_nominated", KARIN)] == (
        "Ystad is nominated for the BSR Cultural Pearls Award"
    )
    assert subjects[("award_round_closed", COORDINATORS)] == "Award round closed: 3 winner(s)"
    # German for Birgit Lorenzen, English for Kadri Tamm (et) and Piotr Zieliński (pl).
    assert subjects[("award_jury_invited", BIRGIT)].startswith(
        "Sie sind in der Jury: BSR Cultural Pearls Award "
    )
    assert {m["Content-Language"] for m in awards if to(m) == BIRGIT} == {"de"}
    assert {m["Content-Language"] for m in awards if to(m) in (KADRI, PIOTR)} == {"en"}
