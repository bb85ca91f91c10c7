"""The test infrastructure's source is the one asked for: in the testcontainers stage of
`make test` (PEARLS_INFRA_SOURCE=docker) Kafka and PostgreSQL are containers of the
images named by PEARLS_KAFKA_IMAGE / PEARLS_POSTGRES_IMAGE, published on loopback; in
the main stage (local) they are the local launchers' processes."""

from __future__ import annotations

import json
import os
from typing import Any

import asyncpg
import pytest

from pearls_localinfra.containers import kafka_image, postgres_image
from pearls_localinfra.pgserver import PostgresServer
from tests.containers.stack import docker

pytestmark = pytest.mark.integration


def containers_publishing(port: int) -> list[dict[str, Any]]:
    """Running containers with a host port ``port`` published, and how they publish it."""
    found = []
    for cid in docker("ps", "-q").split():
        [info] = json.loads(docker("inspect", cid))
        for bindings in (info["NetworkSettings"]["Ports"] or {}).values():
            for binding in bindings or []:
                if int(binding["HostPort"]) == port:
                    found.append({"image": info["Config"]["Image"], "ip": binding["HostIp"]})
    return found


async def test_kafka_and_postgres_come_from_the_source_asked_for(
    infra_sources: dict[str, str], kafka_bootstrap_servers: str, postgres_server: PostgresServer
) -> None:
    asked = os.environ.get("PEARLS_INFRA_SOURCE", "").strip().lower()
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or os.environ.get("PEARLS_TEST_POSTGRES_DSN"):
        asked = "env"
    assert asked, "make test names the source of every stage (PEARLS_INFRA_SOURCE)"
    assert infra_sources == {"kafka": asked, "postgres": asked}
    conn = await asyncpg.connect(postgres_server.superuser_dsn)
    try:
        assert (await conn.fetchval("SHOW server_version")).startswith("15")
    finally:
        await conn.close()
    if asked != "docker":
        return
    kafka_port = int(kafka_bootstrap_servers.rpartition(":")[2])
    assert containers_publishing(kafka_port) == [{"image": kafka_image(), "ip": "127.0.0.1"}]
    pg_port = int(postgres_server.superuser_dsn.rsplit(":", 1)[1].split("/")[0])
    assert containers_publishing(pg_port) == [{"image": postgres_image(), "ip": "127.0.0.1"}]
