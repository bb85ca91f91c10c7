"""`pearls rebuild` and `pearls demo`."""

from __future__ import annotations

from typing import Any

from deploy.ops.tests.helpers import clean_env, pearls


async def test_rebuild_awards_rebuilds_its_view_and_others_say_they_have_none(
    postgres_server: Any, kafka_bootstrap_servers: str, contract_topics: tuple[str, ...]
) -> None:
    dsn = await postgres_server.new_database_async("opsrebuild")
    env = clean_env(KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap_servers, PEARLS_AWARDS_DATABASE_URL=dsn)
    result = await pearls("rebuild", "awards", env=env)
    assert result.code == 0, result
    assert "participants' view rebuilt from" in result.stdout
    for name in ("applications", "mentoring", "notifications"):
        result = await pearls("rebuild", name, env=env)
        assert result.code == 1, result
        assert f"{name} has no read model" in result.stderr


async def test_demo_passes_its_arguments_through() -> None:
    result = await pearls("demo", "--help", env=clean_env())
    assert result.code == 0, result
    assert "pearls-demo" in result.stdout
