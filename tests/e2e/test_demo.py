"""`make run`'s demo, end to end: what a newcomer sees is what the system did."""

from __future__ import annotations

import email
import email.policy
import shutil
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


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
    mails = [
        email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        for path in sorted((workdir / "mail").glob("*.eml"))
    ]
    sent = output.count("  mail   sent ")
    assert len(mails) == sent >= 13
    assert len({m["Message-ID"] for m in mails}) == len(mails)
    husum = [m for m in mails if m["To"].addresses[0].addr_spec == "frauke@husum.example"]
    assert husum and all(m.get_content_type() == "multipart/alternative" for m in husum)
