"""Infrastructure-free checks: naming, DSNs, source choice and the failure message."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from pearls_localinfra._kafkawire import live_broker_ids
from pearls_localinfra._proc import free_ports
from pearls_localinfra.cli import build_parser
from pearls_localinfra.kafka import random_cluster_id
from pearls_localinfra.pgserver import PostgresServer, _with_credentials
from pearls_localinfra.postgres import make_dsn


def test_cluster_id_is_a_base64url_uuid() -> None:
    cluster_id = random_cluster_id()
    assert len(cluster_id) == 22 and not cluster_id.startswith("-")


def test_probe_reports_a_silent_port_as_down() -> None:
    assert live_broker_ids("127.0.0.1", free_ports(1)[0], timeout=0.5) is None


def test_dsns_quote_credentials() -> None:
    assert (
        make_dsn("127.0.0.1", 5432, "db", "u", "p@ss:/")
        == "postgresql://u:p%40ss%3A%2F@127.0.0.1:5432/db"
    )
    superuser = "postgresql://postgres:secret@db.example:6543/postgres?sslmode=require"
    assert _with_credentials(superuser, "x_1", "x_1", "pw") == (
        "postgresql://x_1:pw@db.example:6543/x_1?sslmode=require"
    )


def test_fresh_database_names_are_safe_identifiers() -> None:
    name = PostgresServer._fresh_name("Mentoring Tests/Integration")
    assert name.startswith("mentoring_tests_integration_") and len(name) <= 63


def test_cli_defaults_to_the_four_service_databases() -> None:
    args = build_parser().parse_args(["up", "--nodes", "3"])
    assert args.nodes == 3
    assert args.databases == ["applications", "mentoring", "awards", "notifications"]


def test_missing_infrastructure_fails_with_install_hints(tmp_path: Path) -> None:
    (tmp_path / "test_needs_infra.py").write_text(
        "def test_kafka(kafka_bootstrap_servers): pass\ndef test_postgres(postgres_server): pass\n"
    )
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"KAFKA_BOOTSTRAP_SERVERS", "PEARLS_TEST_POSTGRES_DSN", "JAVA_HOME"}
    }
    env |= {"PATH": str(tmp_path), "PEARLS_INFRA_SOURCE": "local", "PEARLS_PG_BIN": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rA", str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = done.stdout
    assert done.returncode == 1, out
    assert "2 errors" in out and "skipped" not in out, out
    assert "Java 17+" in out and "Maven" in out and "KAFKA_BOOTSTRAP_SERVERS" in out, out
    assert "initdb" in out and "PEARLS_TEST_POSTGRES_DSN" in out and "Docker" in out, out
