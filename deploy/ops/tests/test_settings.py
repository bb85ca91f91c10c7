"""`pearls settings`: the effective settings of a service, secrets masked."""

from __future__ import annotations

import json

from deploy.ops.tests.helpers import clean_env, free_port, run_pearls

SECRETS = {
    "PEARLS_NOTIFICATIONS_DATABASE_URL": "postgresql://notes:db-pw-4711@db.internal:5433/notes",
    "PEARLS_NOTIFICATIONS_SMTP_USERNAME": "mailer",
    "PEARLS_NOTIFICATIONS_SMTP_STARTTLS": "true",  # AUTH only over TLS
    "PEARLS_NOTIFICATIONS_SMTP_PASSWORD": "smtp-pw-4711",
    "PEARLS_NOTIFICATIONS_UNSUBSCRIBE_SECRET": "unsub-key-4711",
    "PEARLS_NOTIFICATIONS_COORDINATOR_TOKENS": "plain-coordinator-token-4711",
    "KAFKA_SASL_USERNAME": "pearls",
    "KAFKA_SASL_PASSWORD": "kafka-pw-4711",
}


def test_settings_json_masks_every_secret() -> None:
    result = run_pearls("settings", "notifications", "--json", env=clean_env(**SECRETS))
    assert result.code == 0, result
    assert "4711" not in result.stdout + result.stderr
    shown = json.loads(result.stdout)
    assert shown["notifications"]["database_url"] == (
        "postgresql://notes:********@db.internal:5433/notes"
    )
    assert shown["notifications"]["smtp_password"] == "********"
    assert shown["notifications"]["unsubscribe_secret"] == "********"
    assert shown["notifications"]["coordinator_tokens"] == "********"
    assert shown["notifications"]["smtp_username"] == "mailer"
    assert shown["kafka"]["sasl_password"] == "********"
    assert shown["kafka"]["sasl_username"] == "pearls"


def test_settings_table_masks_tokens_of_configured_coordinators() -> None:
    coordinators = json.dumps([{"id": "anna", "token": "anna-plain-token-4711"}])
    env = clean_env(
        PEARLS_MENTORING_COORDINATORS=coordinators,
        PEARLS_MENTORING_DATABASE_URL="postgresql://m:mentor-pw-4711@127.0.0.1:5432/m",
        PEARLS_MENTORING_HTTP_PORT=str(free_port()),
    )
    result = run_pearls("settings", "mentoring", env=env)
    assert result.code == 0, result
    assert "4711" not in result.stdout
    assert "postgresql://m:********@127.0.0.1:5432/m" in result.stdout
    assert "anna" in result.stdout  # who is configured stays visible
    assert "token_sha256" in result.stdout and "********" in result.stdout


def test_settings_of_unknown_service_or_invalid_settings_exit_2() -> None:
    result = run_pearls("settings", "payments", env=clean_env())
    assert result.code == 2, result
    assert "unknown service 'payments'" in result.stderr
    result = run_pearls("settings", "mentoring", env=clean_env(PEARLS_MENTORING_HTTP_PORT="0"))
    assert result.code == 2, result
    assert "PEARLS_MENTORING_HTTP_PORT" in result.stderr
