"""`make run`'s work directory: a fresh start each run, one run at a time (issue 12).

`--help` says the work directory is cleared at start, yet a second run showed
the first run's mail and appended to its logs; a second run beside a running
one failed obscurely; the captured-mail page sat on the fixed port 8025 while
everything else took a free port.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pearls_demo.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]


def _earlier_run(workdir: Path) -> None:
    for name, content in {
        "mail/1-old.eml": "Subject: from the first run\n",
        "logs/applications.log": "first run\n",
        "postgres/data/PG_VERSION": "15\n",
        "kafka/node-1/data/meta.properties": "x\n",
    }.items():
        path = workdir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    (workdir / "notes.txt").write_text("not the demo's\n")


def test_a_run_starts_with_no_mail_logs_or_data_of_an_earlier_one(tmp_path: Path) -> None:
    from pearls_demo.cli import claim_workdir

    _earlier_run(tmp_path)
    with claim_workdir(tmp_path):
        assert not (tmp_path / "mail").exists()
        assert not (tmp_path / "logs").exists()
        assert not (tmp_path / "postgres").exists()
        assert not (tmp_path / "kafka").exists()
        assert (tmp_path / "notes.txt").read_text() == "not the demo's\n"  # not ours to delete
        assert (tmp_path / "pearls-demo.lock").read_text() == f"{os.getpid()}\n"


def test_a_second_run_beside_a_running_one_says_so(tmp_path: Path) -> None:
    from pearls_demo.cli import AlreadyRunning, claim_workdir

    with claim_workdir(tmp_path):
        (tmp_path / "mail").mkdir()
        with pytest.raises(AlreadyRunning, match=rf"already running \(pid {os.getpid()}\)"):
            claim_workdir(tmp_path)
        assert (tmp_path / "mail").is_dir()  # the running one's mail is left alone
    with claim_workdir(tmp_path):  # free again once the first run ends
        pass


def test_the_demo_refuses_to_start_beside_a_running_one(tmp_path: Path) -> None:
    from pearls_demo.cli import claim_workdir

    with claim_workdir(tmp_path):
        second = subprocess.run(
            [sys.executable, "-m", "pearls_demo.cli", "--workdir", str(tmp_path)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert second.returncode == 1
    assert f"pearls-demo is already running (pid {os.getpid()})" in second.stderr
    assert str(tmp_path) in second.stderr


def test_the_mail_page_takes_a_free_port_unless_one_is_given() -> None:
    assert build_parser().parse_args([]).mail_port is None
    assert build_parser().parse_args(["--mail-port", "8025"]).mail_port == 8025
    assert "8025" not in build_parser().format_help()
