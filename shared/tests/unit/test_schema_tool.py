"""pearls-schemas write/check against copies of the published contract."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pearls_shared.events.registry import EVENT_TYPES
from pearls_shared.schema_tool import TABLE_END, TABLE_START, asyncapi_document, main

ROOT = Path(__file__).resolve().parents[3]
CALL_OPENED = "pearls.call.opened.v1.json"


@pytest.fixture
def published(tmp_path: Path) -> Path:
    """A copy of docs/ (schemas, README, AsyncAPI, OpenAPI) and of the main README;
    returns its events folder."""
    shutil.copytree(ROOT / "docs" / "events", tmp_path / "docs" / "events")
    shutil.copytree(ROOT / "docs" / "openapi", tmp_path / "docs" / "openapi")
    shutil.copy(ROOT / "docs" / "asyncapi.json", tmp_path / "docs" / "asyncapi.json")
    shutil.copy(ROOT / "README.md", tmp_path / "README.md")
    return tmp_path / "docs" / "events"


def readme_of(events: Path) -> Path:
    return events.parent.parent / "README.md"


def edit(path: Path, change: Any) -> None:
    schema = json.loads(path.read_text(encoding="utf-8"))
    change(schema)
    path.write_text(json.dumps(schema, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def check(events: Path) -> int:
    return main(["check", "--against", str(events), "--readme", str(readme_of(events))])


def write(events: Path, *extra: str) -> int:
    return main(["write", "--out", str(events), "--readme", str(readme_of(events)), *extra])


def test_committed_contract_passes_check(
    published: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert check(published) == 0
    assert "28 event types" in capsys.readouterr().out


def test_check_fails_on_an_out_of_date_file(
    published: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    edit(published / CALL_OPENED, lambda s: s.update(description="edited by hand"))
    assert check(published) == 1
    err = capsys.readouterr().err
    assert f"{CALL_OPENED}: out of date with the code" in err
    assert "breaking" not in err


def test_check_fails_when_the_code_breaks_a_published_schema(
    published: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # As if the published schema had a property the code has since dropped.
    def add_property(schema: dict[str, Any]) -> None:
        schema["properties"]["venue"] = {"type": "string", "description": "Where."}
        schema["required"].append("venue")

    edit(published / CALL_OPENED, add_property)
    assert check(published) == 1
    err = capsys.readouterr().err
    assert "breaking change within the version: venue: property removed" in err


def test_check_fails_on_a_missing_schema_and_an_unknown_one(
    published: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (published / CALL_OPENED).rename(published / "pearls.call.reopened.v1.json")
    assert check(published) == 1
    err = capsys.readouterr().err
    assert f"{CALL_OPENED}: missing" in err
    assert "pearls.call.reopened.v1.json: no event type of the contract" in err


def test_older_versions_stay_as_history_but_newer_ones_fail(
    published: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copy(published / CALL_OPENED, published / "pearls.call.opened.v0.json")
    assert check(published) == 0
    shutil.copy(published / CALL_OPENED, published / "pearls.call.opened.v2.json")
    assert check(published) == 1
    assert "newer than the code" in capsys.readouterr().err


def test_check_fails_on_a_stale_readme_table_or_asyncapi(
    published: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    readme = published / "README.md"
    readme.write_text(readme.read_text().replace("| `pearls.call.closed`", "| `x`", 1))
    (published.parent / "asyncapi.json").write_text("{}\n")
    assert check(published) == 1
    err = capsys.readouterr().err
    assert "README.md: event table out of date" in err
    assert "asyncapi.json: out of date" in err


def test_write_creates_everything_in_an_empty_folder(tmp_path: Path) -> None:
    out = tmp_path / "docs" / "events"
    assert write(out) == 0
    assert len(list(out.glob("pearls.*.v1.json"))) == len(EVENT_TYPES)
    readme = (out / "README.md").read_text()
    assert TABLE_START in readme and TABLE_END in readme and "pearls.award.granted" in readme
    assert (tmp_path / "docs" / "asyncapi.json").exists()
    assert sorted(p.name for p in (tmp_path / "docs" / "openapi").iterdir()) == [
        "applications.json",
        "awards.json",
        "mentoring.json",
        "notifications.json",
    ]
    assert "`PEARLS_NOTIFICATIONS_COORDINATORS`" in (tmp_path / "README.md").read_text()
    assert check(out) == 0


def test_write_refuses_to_overwrite_with_a_breaking_change(
    published: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    edit(published / CALL_OPENED, lambda s: s["properties"].update(venue={"type": "string"}))
    before = (published / CALL_OPENED).read_text()
    assert write(published) == 1
    assert "bump schema_version" in capsys.readouterr().err
    assert (published / CALL_OPENED).read_text() == before
    assert write(published, "--allow-breaking") == 0
    assert check(published) == 0


def test_asyncapi_describes_every_message_with_headers_and_key() -> None:
    doc = asyncapi_document(EVENT_TYPES.values())
    assert doc["asyncapi"].startswith("3.")
    addresses = {channel["address"] for channel in doc["channels"].values()}
    topics = {model.topic for model in EVENT_TYPES.values()}
    assert addresses == topics | {f"{topic}.dlq" for topic in topics}
    for event_type, model in EVENT_TYPES.items():
        message = doc["components"]["messages"][event_type]
        headers = message["headers"]["properties"]
        assert headers["ce_type"]["const"] == event_type
        assert headers["ce_dataschema"]["const"] == model.dataschema()
        assert {"ce_subject", "ce_correlationid", "ce_causationid"} <= headers.keys()
        assert message["payload"]["schema"]["$ref"].endswith(f"{model.schema_name()}.json")
        assert message["bindings"]["kafka"]["key"]["type"] == "string"


def test_console_script_help() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pearls_shared.schema_tool", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0
    assert "write" in result.stdout and "check" in result.stdout


def test_check_fails_on_a_stale_openapi_document_or_one_of_no_service(
    published: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    openapi = published.parent / "openapi"
    edit(openapi / "awards.json", lambda doc: doc["paths"].pop(next(iter(doc["paths"]))))
    shutil.copy(openapi / "mentoring.json", openapi / "matching.json")
    assert check(published) == 1
    err = capsys.readouterr().err
    assert "openapi/awards.json: out of date with the code; run `pearls-schemas write`" in err
    assert "openapi/matching.json: no service has this OpenAPI document" in err
    assert write(published) == 0
    (openapi / "matching.json").unlink()
    assert check(published) == 0


def test_check_fails_on_a_stale_settings_table_or_missing_markers(
    published: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    readme = readme_of(published)
    original = readme.read_text()
    stale = original.replace("`PEARLS_AWARDS_HTTP_PORT` | integer | `8003`", "x", 1)
    assert stale != original
    readme.write_text(stale)
    assert check(published) == 1
    assert "README.md: settings table out of date" in capsys.readouterr().err
    readme.write_text(original.replace("<!-- settings-table:end -->", ""))
    assert check(published) == 1
    assert "markers of the generated settings table are missing" in capsys.readouterr().err
    assert write(published) == 1
    readme.write_text(stale)
    assert write(published) == 0
    assert readme.read_text() == original
