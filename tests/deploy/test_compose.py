"""docker-compose.yml: valid against the Compose Specification's JSON Schema, and
consistent with the services it runs (health checks, start order, settings)."""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.support import (
    COMPOSE_FILE,
    SERVICES,
    check_jsonschema,
    load_settings,
    run,
    unknown_env,
)

pytestmark = pytest.mark.deploy

INFRASTRUCTURE = {"kafka", "mailpit", *(f"{s}-db" for s in SERVICES)}
JOBS = {f"{s}-prepare" for s in SERVICES}


def validate(path: Path) -> tuple[int, str]:
    done = run([*check_jsonschema(), "--builtin-schema", "vendor.compose-spec", str(path)])
    return done.returncode, done.stdout + done.stderr


def with_defaults(text: str) -> str:
    """The compose file as it runs with no variables set: ``${NAME:-default}`` ->
    default (the official images, the documented ports)."""
    return re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", text)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(with_defaults(COMPOSE_FILE.read_text()))
    return loaded


def env_of(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    assert isinstance(env, dict), "environment: use the mapping form"
    return {str(k): str(v) for k, v in env.items()}


def test_compose_file_matches_the_compose_specification() -> None:
    code, output = validate(COMPOSE_FILE)
    assert code == 0, output


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("    healthcheck:\n", "    healthchek:\n"), "healthchek"),
        (("condition: service_completed_successfully", "condition: completed"), "depends_on"),
        (("    restart: unless-stopped\n", "    restart: [always]\n"), "restart"),
    ],
    ids=["typo-in-a-key", "unknown-condition", "wrong-type"],
)
def test_a_broken_compose_file_is_rejected(
    tmp_path: Path, change: tuple[str, str], expected: str
) -> None:
    text = COMPOSE_FILE.read_text()
    old, new = change
    assert old in text
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(text.replace(old, new, 1))
    code, output = validate(broken)
    assert code != 0, output
    assert expected in output


def test_the_system_is_all_there(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == {*SERVICES, *JOBS, *INFRASTRUCTURE}
    assert compose["services"]["kafka"]["image"].startswith("apache/kafka:4.")
    assert compose["services"]["mailpit"]["image"].startswith("axllent/mailpit")
    for service in SERVICES:
        db = compose["services"][f"{service}-db"]
        assert db["image"] == "postgres:15"
        assert db["environment"]["POSTGRES_DB"] == service


def test_every_long_running_container_has_a_healthcheck(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        if name in JOBS:
            assert service.get("restart") == "no", f"{name}: a one-shot job must not restart"
            continue
        check = service.get("healthcheck")
        assert check and check.get("test") and not check.get("disable"), f"{name}: no healthcheck"


def test_services_are_healthy_when_ready(compose: dict[str, Any]) -> None:
    for name in SERVICES:
        probe = " ".join(compose["services"][name]["healthcheck"]["test"])
        assert "http://127.0.0.1:8000/health/ready" in probe, name


def test_start_order_follows_health(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, service in services.items():
        for target, rule in service.get("depends_on", {}).items():
            assert target in services, f"{name} depends on {target}, which does not exist"
            condition = rule["condition"]
            if target in JOBS:
                assert condition == "service_completed_successfully", f"{name} -> {target}"
            else:
                assert condition == "service_healthy", f"{name} -> {target}"
                assert "healthcheck" in services[target], f"{name} waits for {target}'s health"
    for service in SERVICES:
        assert set(services[service]["depends_on"]) >= {f"{service}-prepare", f"{service}-db"}
        assert set(services[f"{service}-prepare"]["depends_on"]) == {"kafka", f"{service}-db"}
    assert "mailpit" in services["notifications"]["depends_on"]


def test_services_and_jobs_are_built_from_the_one_dockerfile(compose: dict[str, Any]) -> None:
    for service in SERVICES:
        for name in (service, f"{service}-prepare"):
            build = compose["services"][name]["build"]
            assert build["dockerfile"] == "deploy/Dockerfile"
            assert build["args"] == {
                "SERVICE": service,
                "PYTHON_IMAGE": "python:3.11-slim-bookworm",
            }
        job = compose["services"][f"{service}-prepare"]
        assert [*job["entrypoint"], *job["command"]] == [
            "python",
            "/app/prepare.py",
            service,
        ]


def test_every_variable_is_one_the_settings_know(compose: dict[str, Any]) -> None:
    for service in SERVICES:
        for name in (service, f"{service}-prepare"):
            env = env_of(compose["services"][name])
            assert not unknown_env(service, set(env)), f"{name}: unknown variables"
            own = f"PEARLS_{service.upper()}_"
            shared = ("PEARLS_DELIVERY_", "PEARLS_HTTP_", "PEARLS_ERASURE_")
            strangers = {v for v in env if v.startswith("PEARLS_") and not v.startswith(own)} - {
                v for v in env if v.startswith(shared)
            }
            assert not strangers, f"{name}: another service's variables"


def test_the_settings_accept_every_value(compose: dict[str, Any]) -> None:
    for service in SERVICES:
        env = env_of(compose["services"][service])
        settings = load_settings(service, env)[0]
        url = settings.database_url.get_secret_value()
        db = compose["services"][f"{service}-db"]["environment"]
        assert url == (
            f"postgresql://{db['POSTGRES_USER']}:{db['POSTGRES_PASSWORD']}"
            f"@{service}-db:5432/{db['POSTGRES_DB']}"
        )
        # No setting: the service finds the migrations in its own package.
        assert (
            settings.migrations_dir
            == importlib.import_module(f"pearls_{service}.config").MIGRATIONS_DIR
        )


def test_notifications_mail_goes_to_mailpit(compose: dict[str, Any]) -> None:
    env = env_of(compose["services"]["notifications"])
    settings = load_settings("notifications", env)[0]
    assert (settings.smtp_host, settings.smtp_port) == ("mailpit", 1025)
    assert "127.0.0.1:8025:8025" in compose["services"]["mailpit"]["ports"]


def test_apis_and_mailpit_are_published(compose: dict[str, Any]) -> None:
    published = {
        name: [str(p) for p in service.get("ports", [])]
        for name, service in compose["services"].items()
    }
    for port, service in enumerate(SERVICES, start=8001):
        assert published[service] == [f"127.0.0.1:{port}:8000"]
    assert published["kafka"] == ["127.0.0.1:9094:9094"]  # for subscribers on this host
    assert not any(published[db] for db in INFRASTRUCTURE - {"mailpit", "kafka"})
    # Loopback only: a reverse proxy serves anyone else.
    assert all(p.startswith("127.0.0.1:") for ports in published.values() for p in ports)


def test_services_run_read_only_and_stop_gracefully(compose: dict[str, Any]) -> None:
    for name in (*SERVICES, *JOBS):
        service = compose["services"][name]
        assert service["read_only"] is True and service["tmpfs"] == ["/tmp"], name
    for name in SERVICES:
        assert compose["services"][name]["stop_grace_period"] == "30s", name


def test_development_credentials_are_marked(compose: dict[str, Any]) -> None:
    secretish = re.compile(r"(PASSWORD|TOKENS?|COORDINATORS|SECRET)$")
    for name, service in compose["services"].items():
        for var, value in env_of(service).items():
            if secretish.search(var):
                assert "CHANGE-ME" in value, f"{name}: {var} is not marked as to be replaced"
