"""`make run`'s demo, end to end: what a newcomer sees is what the system did."""

from __future__ import annotations

import email
import email.policy
import re
import shutil
import socket
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "services" / "notifications" / "src" / "pearls_notifications" / "templates"

# The people of the demo (deploy/demo/src/pearls_demo/scenario.py).
INESE, MART = "inese@kuldiga.example", "mart@viljandi.example"
FRAUKE, KARIN = "frauke@husum.example", "karin@ystad.example"
RASA, CLAUDIA, KADRI = (
    "rasa@balticculture.example",
    "claudia@boell-sh.example",
    "kadri@viljandi-pearl.example",
)
# Every mentoring e-mail the demo causes, each exactly once per (template, recipient)
# and count; templates of pearls.mentoring.v1 not listed must not be sent at all.
MENTORING_MAIL = Counter(
    {
        ("mentor_registered", RASA): 1,
        ("mentor_registered", CLAUDIA): 1,
        ("mentor_registered", KADRI): 1,
        # Every accepted city gets a mentor, Husum too before it withdraws.
        ("mentor_assigned", INESE): 1,
        ("mentor_assigned", MART): 1,
        ("mentor_assigned", FRAUKE): 1,
        ("mentor_assigned", KARIN): 1,
        ("mentee_assigned", KADRI): 1,  # Kuldīga
        ("mentee_assigned", RASA): 1,  # Viljandi
        ("mentee_assigned", CLAUDIA): 2,  # Husum, then Ystad in its place
        # Husum left by itself: its withdrawal mail says so, no "your mentor left" on top.
        ("mentee_unassigned", CLAUDIA): 1,
        ("plan_submitted", KADRI): 2,  # revisions 1 and 2
        ("plan_changes_requested", INESE): 1,
        ("plan_approved", INESE): 1,
        ("milestone_reached", KADRI): 2,
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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def workdir() -> Iterator[Path]:
    # Not under pytest's tmp dir: PostgreSQL runs as an unprivileged user when
    # the tests run as root, and must be able to reach its data directory.
    path = ROOT / "var" / f"e2e-{uuid.uuid4().hex[:8]}"
    path.mkdir(parents=True)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _subject_patterns() -> dict[str, list[re.Pattern[str]]]:
    """Template name -> its subject lines (every language) as patterns."""
    patterns: dict[str, list[re.Pattern[str]]] = {}
    for path in sorted(TEMPLATES.glob("*/*.subject")):
        literal = re.split(r"\{\{.*?\}\}", " ".join(path.read_text(encoding="utf-8").split()))
        patterns.setdefault(path.stem, []).append(re.compile(".+?".join(map(re.escape, literal))))
    return patterns


def _subject(mail: EmailMessage) -> str:
    # Long subjects are folded; unfolding may leave doubled or leading blanks.
    return " ".join(str(mail["Subject"]).split())


def _template(mail: EmailMessage, patterns: dict[str, list[re.Pattern[str]]]) -> str:
    """Which template an e-mail was written from, told by its subject alone."""
    subject = _subject(mail)
    found = {name for name, ps in patterns.items() if any(p.fullmatch(subject) for p in ps)}
    assert len(found) == 1, f"subject {subject!r} fits templates {found or 'none'}"
    return found.pop()


def _to(mail: EmailMessage) -> str:
    return str(mail["To"].addresses[0].addr_spec)


def _events(output: str, event_type: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith(f"  event  {event_type} ")]


def test_the_demo_plays_through_the_public_api_and_mails_everyone_once(workdir: Path) -> None:
    demo = subprocess.run(
        [
            sys.executable,
            "-m",
            "pearls_demo.cli",
            "--exit-after-demo",
            "--workdir",
            str(workdir),
            "--mail-port",
            str(_free_port()),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = demo.stdout
    assert demo.returncode == 0, output[-3000:] + demo.stderr[-3000:]
    # The refusals a person would expect, with the rule named.
    assert "Husum submitted a second application: refused, 409" in output
    assert "one_application_per_city" in output
    assert "Rīga applied: refused, 422 body.population" in output
    # Decisions and the waitlist promotion, as events on the topic.
    assert output.count("event  pearls.application.submitted") == 5
    assert output.count("event  pearls.application.accepted") == 4  # 3 + Ystad moving up
    assert "event  pearls.application.withdrawn         city_name=Husum" in output
    # Mail: German for the German contact, and nobody twice.
    assert "application_accepted         -> frauke@husum.example [de]" in output
    assert "demo done: " in output and "(0 failed)" in output
    mails: list[EmailMessage] = [
        email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        for path in sorted((workdir / "mail").glob("*.eml"))
    ]
    sent = output.count("  mail   sent ")
    assert len(mails) == sent >= 13
    assert len({m["Message-ID"] for m in mails}) == len(mails)
    husum = [m for m in mails if _to(m) == FRAUKE]
    assert husum and all(m.get_content_type() == "multipart/alternative" for m in husum)

    # -- mentoring, as events on pearls.mentoring.v1 ---------------------------------------
    assert len(_events(output, "pearls.mentor.registered")) == 3
    assigned = Counter(
        re.search(r"city_name=(.+?) country=", line).group(1)  # type: ignore[union-attr]
        for line in _events(output, "pearls.mentor.assigned")
    )
    # One match per accepted city still in the programme, and Husum's before it left.
    assert assigned == Counter({"Kuldīga": 1, "Viljandi": 1, "Ystad": 1, "Husum": 1})
    unassigned = _events(output, "pearls.mentor.unassigned")
    assert len(unassigned) == 1 and "city_name=Husum" in unassigned[0]
    assert not _events(output, "pearls.mentor.unmatched")
    submitted = _events(output, "pearls.plan.submitted")
    assert [line.split("revision=")[1] for line in submitted] == ["1", "2"]
    assert len(_events(output, "pearls.plan.changes_requested")) == 1
    approved = _events(output, "pearls.plan.approved")
    assert len(approved) == 1 and "revision=2" in approved[0]
    assert len(_events(output, "pearls.plan.milestone_reached")) == 2
    overdue = _events(output, "pearls.plan.milestone_overdue")
    assert len(overdue) == 1 and "city_name=Kuldīga" in overdue[0]
    assert not _events(output, "pearls.plan.completed")
    assert len(_events(output, "pearls.session.scheduled")) == 1

    # The matches, each with its mentor, points and why.
    matches = dict(
        re.findall(r"^  (\S[^(\n]*?) \(\w\w\) <- (.+: score \d+\.\d\d .*)$", output, re.M)
    )
    assert matches.keys() == {"Kuldīga", "Viljandi", "Husum", "Ystad"}, output[-6000:]
    assert matches["Kuldīga"].startswith("Kadri Tamm (pearl city Viljandi, EE): score 5.00 =")
    assert matches["Viljandi"].startswith("Rasa Jankauskienė (national expert, LT): score 5.00")
    assert matches["Husum"].startswith("Claudia Becker (national expert, DE): score 4.00")
    assert matches["Ystad"].startswith("Claudia Becker (national expert, DE): score ")
    assert "      why: Shares English and 2 of 2 themes" in output
    assert "mentors across the border (EE→LV)" in output
    assert "mentors within DE" in output
    assert (
        'publishing "Pop-up culture shops in the old town" in the playbook: refused, 409' in output
    )
    assert "-> Youth festival board (Kuldīga, LV)" in output

    # -- mentoring, at the SMTP sink: every e-mail once ------------------------------------
    patterns = _subject_patterns()
    arrived = Counter((_template(m, patterns), _to(m)) for m in mails)
    printed = Counter(re.findall(r"^  mail   sent   (\w+) +-> (\S+) \[", output, re.M))
    assert arrived == printed  # what the terminal said went out is what arrived
    mentoring = [m for m in mails if _template(m, patterns) in MENTORING_TEMPLATES]
    assert Counter((_template(m, patterns), _to(m)) for m in mentoring) == MENTORING_MAIL
    twice = [k for k, n in Counter((_to(m), _subject(m)) for m in mentoring).items() if n > 1]
    assert not twice, f"the same mail arrived twice: {twice}"
    to_kadri = {_subject(m) for m in mentoring if _to(m) == KADRI}
    assert {
        "Action plan to review: Kuldīga (revision 1)",
        "Action plan to review: Kuldīga (revision 2)",
    } <= to_kadri
    # In the recipient's language: German for Claudia Becker, English for Kadri Tamm (et).
    assert {m["Content-Language"] for m in mentoring if _to(m) == CLAUDIA} == {"de"}
    assert {m["Content-Language"] for m in mentoring if _to(m) == KADRI} == {"en"}
    # The invitation gives the session's own wall-clock time and offset (Tallinn, winter).
    [invitation] = [m for m in mentoring if _template(m, patterns) == "session_scheduled"][:1]
    text = invitation.get_body(preferencelist=("plain",)).get_content()
    assert "14:00 UTC+02:00" in text, text
