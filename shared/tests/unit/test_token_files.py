"""Tokens rotate without a restart: a tokens file is read again when it changes or on SIGHUP,
and a malformed one keeps the last good tokens."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from pathlib import Path

import structlog
from pydantic import Field

from pearls_shared import token_files
from pearls_shared.testing import wait_for
from pearls_shared.token_files import (
    TokenFiles,
    TokenList,
    read_token_file,
    reload_on_sighup,
    staff_tokens,
)
from pearls_shared.tokens import Principal, TokenEntry, hash_token


class ReviewerEntry(TokenEntry):
    city_name: str = Field(min_length=1)


def write(path: Path, entries: object) -> None:
    """Replace the file as operators should: a new file renamed over the old one."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(entries if isinstance(entries, str) else json.dumps(entries))
    os.replace(tmp, path)


def coordinators(path: Path, configured: list[TokenEntry] | None = None) -> TokenFiles[Principal]:
    return staff_tokens([TokenList("coordinator", TokenEntry, configured or [], path)])


def captured(monkeypatch):
    logs = structlog.testing.capture_logs()
    entries = logs.__enter__()
    monkeypatch.setattr(token_files, "log", structlog.get_logger(token_files.__name__))
    return logs, entries


def test_a_token_added_to_the_file_is_accepted_without_a_restart(tmp_path):
    path = tmp_path / "coordinators.json"
    write(path, [{"id": "anna", "token": "anna-token-0123456789"}])
    files = coordinators(path, [TokenEntry(id="env", token_sha256=hash_token("env-tok").hex())])
    book = files.book
    assert book.identify("anna-token-0123456789") == Principal("coordinator", "anna")
    assert book.identify("env-tok") == Principal("coordinator", "env")
    assert book.identify("jonas-token-0123456789") is None
    write(
        path,
        [
            {"id": "anna", "token": "anna-token-0123456789"},
            {"id": "jonas", "token_sha256": hash_token("jonas-token-0123456789").hex()},
        ],
    )
    assert book.identify("jonas-token-0123456789") == Principal("coordinator", "jonas")
    assert [e.id for e in files.entries("coordinator")] == ["env", "anna", "jonas"]


def test_a_token_removed_from_the_file_is_refused(tmp_path):
    path = tmp_path / "coordinators.json"
    write(path, [{"id": "anna", "token": "anna-token-0123456789"}, {"id": "old", "token": "old-t"}])
    book = coordinators(path).book
    assert book.identify("old-t") == Principal("coordinator", "old")
    write(path, [{"id": "anna", "token": "anna-token-0123456789"}])
    assert book.identify("old-t") is None
    assert book.identify("anna-token-0123456789") == Principal("coordinator", "anna")
    write(path, [])  # every token of the file revoked
    assert book.identify("anna-token-0123456789") is None


def test_a_malformed_file_keeps_the_last_good_tokens_and_says_why(tmp_path, monkeypatch):
    path = tmp_path / "coordinators.json"
    write(path, [{"id": "anna", "token": "anna-token-0123456789"}])
    files = coordinators(path)
    logs, entries = captured(monkeypatch)
    try:
        for bad in (
            '[{"id": "anna", "token": "leaked-plain-token"',  # truncated JSON
            '{"id": "anna"}',  # not a list
            json.dumps([{"id": "anna", "token_sha256": "not-hex-leaked-plain-token"}]),
            json.dumps([{"id": "", "token": "leaked-plain-token"}]),
            json.dumps([{"id": "a", "token": "same-tok"}, {"id": "b", "token": "same-tok"}]),
            json.dumps([{"id": "a", "token": "tok-1"}, {"id": "a", "token": "tok-2"}]),
            "",
        ):
            write(path, bad)
            assert files.book.identify("anna-token-0123456789") == Principal("coordinator", "anna")
            for token in ("leaked-plain-token", "same-tok", "tok-1"):
                assert files.book.identify(token) is None
    finally:
        logs.__exit__(None, None, None)
    errors = [e for e in entries if e["event"] == "token_file_invalid"]
    assert len(errors) == 7  # each bad version reported once, not per lookup
    assert all(e["path"] == str(path) and e["kind"] == "coordinator" for e in errors)
    assert "not JSON" in errors[0]["error"] and "JSON list" in errors[1]["error"]
    assert "token_sha256" in errors[2]["error"] and "same one" in errors[4]["error"]
    assert not any("leaked-plain-token" in json.dumps(e, default=str) for e in entries)
    # Fixed again: the new tokens count.
    write(path, [{"id": "jonas", "token": "jonas-token-0123456789"}])
    assert files.book.identify("jonas-token-0123456789") == Principal("coordinator", "jonas")
    assert files.book.identify("anna-token-0123456789") is None


def test_a_missing_file_at_start_gives_no_tokens_until_it_appears(tmp_path):
    path = tmp_path / "later.json"
    configured = [TokenEntry(id="env", token_sha256=hash_token("env-tok").hex())]
    files = coordinators(path, configured)
    assert files.book.identify("env-tok") == Principal("coordinator", "env")
    assert files.book.identify("anna-token-0123456789") is None
    write(path, [{"id": "anna", "token": "anna-token-0123456789"}])
    assert files.book.identify("anna-token-0123456789") == Principal("coordinator", "anna")
    path.unlink()  # deleted by mistake: the last good tokens stay
    assert files.book.identify("anna-token-0123456789") == Principal("coordinator", "anna")


def test_a_file_entry_may_not_take_an_id_or_token_of_the_settings(tmp_path):
    path = tmp_path / "coordinators.json"
    configured = [TokenEntry(id="env", token_sha256=hash_token("env-tok").hex())]
    write(path, [{"id": "anna", "token": "anna-token-0123456789"}])
    files = coordinators(path, configured)
    write(path, [{"id": "mallory", "token": "env-tok"}])
    assert files.book.identify("env-tok") == Principal("coordinator", "env")
    assert files.book.identify("anna-token-0123456789") == Principal("coordinator", "anna")


def test_two_lists_with_their_own_files_and_models(tmp_path):
    coordinators_file, reviewers_file = tmp_path / "c.json", tmp_path / "r.json"
    write(coordinators_file, [{"id": "anna", "token": "anna-token-0123456789"}])
    write(reviewers_file, [{"id": "rev", "city_name": "Tartu", "token": "rev-token-0123456789"}])
    files = staff_tokens(
        [
            TokenList("coordinator", TokenEntry, [], coordinators_file),
            TokenList("reviewer", ReviewerEntry, [], reviewers_file),
        ]
    )
    assert files.book.identify("rev-token-0123456789") == Principal("reviewer", "rev")
    [reviewer] = files.entries("reviewer")
    assert isinstance(reviewer, ReviewerEntry) and reviewer.city_name == "Tartu"
    write(reviewers_file, [{"id": "rev", "city_name": "Viljandi", "token": "rev-token-0123456789"}])
    assert [e.city_name for e in files.entries("reviewer")] == ["Viljandi"]  # type: ignore[attr-defined]
    # A reviewer holding a coordinator's token is refused with the whole change.
    write(reviewers_file, [{"id": "rev2", "city_name": "Tartu", "token": "anna-token-0123456789"}])
    assert files.book.identify("anna-token-0123456789") == Principal("coordinator", "anna")
    assert [e.id for e in files.entries("reviewer")] == ["rev"]


def test_read_token_file_names_the_faulty_entry_without_its_token(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps([{"id": "ok", "token": "t1"}, {"id": "x" * 101, "token": "t2"}]))
    try:
        read_token_file(path, TokenEntry)
    except ValueError as exc:
        assert str(exc).startswith("invalid entries: 1.id:") and "t2" not in str(exc)
    else:
        raise AssertionError("a faulty entry must be refused")


async def test_sighup_reads_the_file_again_even_when_its_stat_did_not_change(tmp_path):
    path = tmp_path / "coordinators.json"
    path.write_text(json.dumps([{"id": "anna", "token": "token-AAAA"}]))
    an_hour_ago = time.time_ns() - 3600 * 10**9
    os.utime(path, ns=(an_hour_ago, an_hour_ago))
    files = coordinators(path)
    assert files.book.identify("token-AAAA") == Principal("coordinator", "anna")
    # Same size, same (old) modification time, same inode: invisible to the stat check.
    path.write_text(json.dumps([{"id": "anna", "token": "token-BBBB"}]))
    os.utime(path, ns=(an_hour_ago, an_hour_ago))
    assert files.book.identify("token-BBBB") is None
    with reload_on_sighup(files):
        os.kill(os.getpid(), signal.SIGHUP)

        async def reloaded() -> bool:
            await asyncio.sleep(0)
            return files.book.identify("token-BBBB") is not None

        await wait_for(reloaded, within=10, what="the SIGHUP reload")
    assert files.book.identify("token-AAAA") is None


def test_a_second_quick_edit_of_the_same_size_is_not_missed(tmp_path):
    path = tmp_path / "coordinators.json"
    path.write_text(json.dumps([{"id": "anna", "token": "token-AAAA"}]))
    files = coordinators(path)
    first = os.stat(path)
    assert files.book.identify("token-AAAA") == Principal("coordinator", "anna")
    # Rewritten in place within the file system's timestamp granularity: same stat.
    path.write_text(json.dumps([{"id": "anna", "token": "token-BBBB"}]))
    os.utime(path, ns=(first.st_atime_ns, first.st_mtime_ns))
    assert files.book.identify("token-BBBB") == Principal("coordinator", "anna")
    assert files.book.identify("token-AAAA") is None
