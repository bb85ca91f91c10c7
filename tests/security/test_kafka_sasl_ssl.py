"""Kafka security for real: a local broker with a SASL_SSL listener (SCRAM-SHA-512, a
throwaway CA) and the ACLs of ``pearls_localinfra.acl``, reached through the services'
own client builders (``pearls_shared.kafka``) and, for the whole path, their apps.

Every record a test looks for carries an id the test made; the broker is started once,
by the first test that asks for it (``kafka_secure``).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import httpx
import pytest
import trustme
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import (
    ClusterAuthorizationFailedError,
    GroupAuthorizationFailedError,
    KafkaError,
    TopicAuthorizationFailedError,
)
from asgi_lifespan import LifespanManager
from pydantic import SecretStr

from pearls_localinfra import acl
from pearls_localinfra.pytest_plugin import SecureKafka
from pearls_shared import asyncapi, topics
from pearls_shared.kafka import (
    KafkaStartupError,
    check_connection,
    client_options,
    new_broker,
    new_producer,
)
from pearls_shared.settings import DeliverySettings, KafkaSettings
from pearls_shared.testing import wait_for
from pearls_shared.tokens import TokenEntry

pytestmark = pytest.mark.integration

README = Path(__file__).resolve().parents[2] / "README.md"
DEAD_LETTERS = tuple(t + ".dlq" for t in topics.CONTRACT_TOPICS)
COORDINATOR = "security-coordinator-token-0123456789"
AUTH = {"Authorization": f"Bearer {COORDINATOR}"}
DELIVERY = DeliverySettings(relay_poll_interval_s=0.2)


def secure_settings(
    kafka: SecureKafka, user: str, *, password: str | None = None, cafile: str | None = None
) -> KafkaSettings:
    """A service's Kafka settings for production: SASL_SSL, SCRAM-SHA-512, a CA file."""
    return KafkaSettings(
        bootstrap_servers=kafka.bootstrap_servers,
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username=user,
        sasl_password=SecretStr(password or kafka.password(user)),
        ssl_cafile=cafile or kafka.ca_file,
    )


def service_settings(kafka: SecureKafka, service: str) -> KafkaSettings:
    return secure_settings(kafka, kafka.access(service).user)


def fresh_group(kafka: SecureKafka, service: str) -> str:
    """A consumer group of ``service``'s (its ACL allows its group name as a prefix)."""
    group = kafka.access(service).group
    assert group is not None
    return f"{group}-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
async def secure_topics(kafka_secure: SecureKafka) -> tuple[str, ...]:
    """The contract topics and their dead-letter topics, created by the administrator
    (no service may create topics)."""
    admin = secure_settings(kafka_secure, kafka_secure.admin_user)
    await topics.ensure_topics(admin, [*topics.CONTRACT_TOPICS, *DEAD_LETTERS])
    contract: tuple[str, ...] = topics.CONTRACT_TOPICS
    return contract


async def poll_once(consumer: AIOKafkaConsumer) -> list[Any]:
    batches = await consumer.getmany(timeout_ms=500)
    return [record for batch in batches.values() for record in batch]


# -- the layout agrees with the contract and the README ----------------------------------


def test_the_acl_layout_names_the_contract_topics_and_the_services_subscriptions() -> None:
    from pearls_awards.config import Settings as AwardsSettings
    from pearls_awards.entrypoints.consumers import subscription as awards_subscription
    from pearls_mentoring.config import Settings as MentoringSettings
    from pearls_mentoring.entrypoints.consumers import subscription as mentoring_subscription
    from pearls_notifications.config import Settings as NotificationsSettings
    from pearls_notifications.entrypoints.consumers import CONSUMED_TOPICS

    assert (acl.APPLICATIONS, acl.MENTORING, acl.AWARDS, acl.NOTIFICATIONS) == (
        topics.APPLICATIONS,
        topics.MENTORING,
        topics.AWARDS,
        topics.NOTIFICATIONS,
    )
    assert acl.DEAD_LETTER_SUFFIX == KafkaSettings().dead_letter_suffix
    assert all(t.startswith(acl.TOPIC_PREFIX) for t in (*topics.CONTRACT_TOPICS, *DEAD_LETTERS))
    layout = {a.service: a for a in acl.PEARLS_SERVICES}
    consumed = {
        "applications": (),
        "mentoring": mentoring_subscription(mock.Mock(), "g").topics,
        "awards": awards_subscription(mock.Mock(), "g").topics,
        "notifications": CONSUMED_TOPICS,
    }
    assert {s: set(a.consumes) for s, a in layout.items()} == {
        s: set(t) for s, t in consumed.items()
    }
    groups = {
        "mentoring": MentoringSettings.model_fields["consumer_group"].default,
        "awards": AwardsSettings.model_fields["consumer_group"].default,
        "notifications": NotificationsSettings.model_fields["consumer_group"].default,
    }
    assert {s: layout[s].group for s in groups} == groups
    assert {s.service: s.group_default for s in asyncapi.SUBSCRIPTIONS} == groups
    assert {s: a.produces for s, a in layout.items()} == {
        "applications": topics.APPLICATIONS,
        "mentoring": topics.MENTORING,
        "awards": topics.AWARDS,
        "notifications": topics.NOTIFICATIONS,
    }


def test_the_readme_lists_the_kafka_acls_commands_of_the_layout() -> None:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Kafka security", 1)[1].split("\n## ", 1)[0]
    written = [
        re.sub(r"\s*\\\n\s*", " ", block).strip()
        for block in re.findall(r"^kafka-acls\.sh (?:[^\n]*\\\n)*[^\n]*$", section, re.M)
    ]
    assert written == acl.kafka_acls_commands(acl.pearls_bindings())


# -- 1. publish -> consume over SASL_SSL --------------------------------------------------


async def test_an_event_written_with_applications_credentials_is_read_with_mentorings(
    kafka_secure: SecureKafka, secure_topics: tuple[str, ...]
) -> None:
    marker = uuid.uuid4().hex.encode()
    producer = new_producer(service_settings(kafka_secure, "applications"), "sec-applications")
    await producer.start()
    try:
        await producer.send_and_wait(topics.APPLICATIONS, b"{}", key=marker)
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        topics.APPLICATIONS,
        **client_options(service_settings(kafka_secure, "mentoring"), "sec-mentoring"),
        group_id=fresh_group(kafka_secure, "mentoring"),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:

        async def mine() -> list[Any]:
            return [r for r in await poll_once(consumer) if r.key == marker]

        [record] = await wait_for(mine, within=60, what="the record written as applications")
        await consumer.commit()  # offsets too: Read on the service's own group
    finally:
        await consumer.stop()
    assert record.topic == topics.APPLICATIONS


@pytest.fixture
async def secured_services(
    kafka_secure: SecureKafka, secure_topics: tuple[str, ...], postgres_server: Any
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    """The applications and mentoring services' own apps, each with its own Kafka user."""
    from pearls_applications.bootstrap import create_app as applications_app
    from pearls_applications.config import CoordinatorEntry
    from pearls_applications.config import Settings as ApplicationsSettings
    from pearls_mentoring.bootstrap import create_app as mentoring_app
    from pearls_mentoring.config import Settings as MentoringSettings

    applications = applications_app(
        ApplicationsSettings(
            database_url=postgres_server.new_database("sec_apps"),
            coordinators=[CoordinatorEntry.model_validate({"id": "anna", "token": COORDINATOR})],
        ),
        kafka=service_settings(kafka_secure, "applications"),
        delivery=DELIVERY,
    )
    mentoring = mentoring_app(
        MentoringSettings(
            database_url=postgres_server.new_database("sec_mentoring"),
            coordinators=[TokenEntry.model_validate({"id": "anna", "token": COORDINATOR})],
            consumer_group=fresh_group(kafka_secure, "mentoring"),
            matching_interval_s=0.2,
        ),
        kafka=service_settings(kafka_secure, "mentoring"),
        delivery=DELIVERY,
    )
    async with (
        LifespanManager(applications, startup_timeout=90) as apps,
        LifespanManager(mentoring, startup_timeout=90) as ment,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=apps.app), base_url="http://applications"
        ) as a,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=ment.app), base_url="http://mentoring"
        ) as m,
    ):
        yield a, m


async def test_the_mentoring_service_takes_an_acceptance_the_applications_service_published(
    secured_services: tuple[httpx.AsyncClient, httpx.AsyncClient], kafka_secure: SecureKafka
) -> None:
    """Outbox relay (applications' user) -> topic -> mentoring's consumer (its user and
    group) -> match -> mentoring's relay -> read by awards' user, all over SASL_SSL."""
    applications, mentoring = secured_services
    mentor = await mentoring.post(
        "/mentors",
        headers=AUTH,
        json={
            "kind": "national_expert",
            "name": "Liis Kask",
            "email": f"liis.{uuid.uuid4().hex[:6]}@example.org",
            "language": "et",
            "languages": ["et"],
            "country": "EE",
            "capacity": 5,
            "themes": ["culture_creative_industries"],
        },
    )
    assert mentor.status_code == 201, mentor.text
    call = await applications.post(
        "/calls",
        headers=AUTH,
        json={
            "title": {"en": "Secured call"},
            "description": {"en": "Culture on the coast."},
            "closes_at": (datetime.now(UTC) + timedelta(days=1)).isoformat(),
            "places": 1,
            "population_min": 1_000,
            "population_max": 100_000,
            "eligible_countries": ["LV"],
            "rubric": {
                "criteria": [{"key": "relevance", "weight": 1, "label": {"en": "Relevance"}}]
            },
            "reviews_required": 1,
        },
    )
    assert call.status_code == 201, call.text
    call_id = call.json()["call_id"]
    submitted = await applications.post(
        f"/calls/{call_id}/applications",
        json={
            "city_name": f"Talsi {uuid.uuid4().hex[:4]}",
            "place_kind": "city",
            "country": "LV",
            "population": 9_000,
            "organisation_name": "Talsu novads",
            "organisation_type": "municipality",
            "contacts": [
                {
                    "name": "Ilze",
                    "email": f"ilze.{uuid.uuid4().hex[:6]}@example.org",
                    "language": "et",
                    "role": "primary",
                }
            ],
            "themes": ["culture_creative_industries"],
            "languages": ["et"],
            "motivation": "Culture holds the town together.",
            "challenges": "Young people leave.",
            "commitments": "A culture officer.",
        },
    )
    assert submitted.status_code == 201, submitted.text
    application_id = submitted.json()["application_id"]
    assert (await applications.post(f"/calls/{call_id}/close", headers=AUTH)).is_success
    decided = await applications.post(
        f"/applications/{application_id}/decision",
        headers=AUTH,
        json={"decision": "accept"},
    )
    assert decided.status_code == 200, decided.text

    async def matched() -> dict[str, Any] | None:
        response = await mentoring.get(f"/participants/{application_id}", headers=AUTH)
        if response.status_code != 200 or response.json()["status"] != "matched":
            return None
        data: dict[str, Any] = response.json()
        return data

    participant = await wait_for(matched, within=90, what="the participant's mentor")
    assert participant["mentor"]["mentor_id"] == mentor.json()["mentor_id"]

    # Mentoring's relay wrote the match with mentoring's user; awards' user may read it.
    consumer = AIOKafkaConsumer(
        topics.MENTORING,
        **client_options(service_settings(kafka_secure, "awards"), "sec-awards"),
        group_id=fresh_group(kafka_secure, "awards"),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:

        async def assigned() -> list[Any]:
            return [
                r
                for r in await poll_once(consumer)
                if r.key == application_id.encode()
                and ("ce_type", b"pearls.mentor.assigned") in list(r.headers)
            ]

        [record] = await wait_for(assigned, within=60, what="pearls.mentor.assigned")
    finally:
        await consumer.stop()
    assert record.topic == topics.MENTORING


# -- 2. wrong credentials, wrong CA: a clear reason at start-up ---------------------------


async def test_a_wrong_password_fails_start_up_naming_authentication_and_the_address(
    kafka_secure: SecureKafka,
) -> None:
    user = kafka_secure.access("applications").user
    wrong = secure_settings(kafka_secure, user, password="not-the-password")
    with pytest.raises(KafkaStartupError) as refused:
        await check_connection(wrong, timeout_s=20)
    message = str(refused.value)
    assert "authentication failed" in message.lower()
    assert kafka_secure.bootstrap_servers in message
    assert repr(user) in message and "KAFKA_SASL_PASSWORD" in message
    assert "not-the-password" not in message
    assert "\n" not in message
    # The clients themselves refuse too (promptly, but with no reason given).
    producer = new_producer(wrong, "sec-wrong-password")
    with pytest.raises(KafkaError):
        await producer.start()
    await producer.stop()


async def test_a_ca_that_did_not_sign_the_broker_certificate_fails_tls_verification(
    kafka_secure: SecureKafka, tmp_path: Path
) -> None:
    other_ca = tmp_path / "other-ca.pem"
    trustme.CA(organization_name="Not the broker's CA").cert_pem.write_to_path(str(other_ca))
    user = kafka_secure.access("mentoring").user
    untrusting = secure_settings(kafka_secure, user, cafile=str(other_ca))
    with pytest.raises(KafkaStartupError) as refused:
        await check_connection(untrusting, timeout_s=20)
    message = str(refused.value)
    assert "TLS verification" in message and "KAFKA_SSL_CAFILE" in message
    assert kafka_secure.bootstrap_servers in message and str(other_ca) in message
    assert "\n" not in message


async def test_a_service_given_a_wrong_password_fails_to_start_instead_of_waiting(
    kafka_secure: SecureKafka, secure_topics: tuple[str, ...], postgres_server: Any
) -> None:
    """The service's start checks the connection first (``check_connection`` in
    ``service_runtime``): it stops with a reason naming authentication and the address."""
    from pearls_mentoring.bootstrap import create_app as mentoring_app
    from pearls_mentoring.config import Settings as MentoringSettings

    user = kafka_secure.access("mentoring").user
    app = mentoring_app(
        MentoringSettings(
            database_url=postgres_server.new_database("sec_wrong"),
            consumer_group=fresh_group(kafka_secure, "mentoring"),
        ),
        kafka=secure_settings(kafka_secure, user, password="not-the-password"),
        delivery=DELIVERY,
    )
    with pytest.raises(KafkaStartupError) as refused:
        async with LifespanManager(app, startup_timeout=90):
            pass
    assert "authentication failed" in str(refused.value).lower()
    assert kafka_secure.bootstrap_servers in str(refused.value)


async def test_sasl_without_a_user_is_refused_before_any_connection() -> None:
    settings = KafkaSettings(bootstrap_servers="127.0.0.1:1", security_protocol="SASL_SSL")
    with pytest.raises(KafkaStartupError, match="KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD"):
        await check_connection(settings)


async def test_the_right_credentials_and_ca_pass_the_start_up_check(
    kafka_secure: SecureKafka,
) -> None:
    for access in kafka_secure.services:
        await check_connection(service_settings(kafka_secure, access.service), timeout_s=20)


# -- 3. the broker refuses what a service's user may not do -------------------------------


@pytest.mark.parametrize("service", [a.service for a in acl.PEARLS_SERVICES])
async def test_a_service_writes_its_own_topic_and_dead_letters_and_no_other_topic(
    kafka_secure: SecureKafka, secure_topics: tuple[str, ...], service: str
) -> None:
    access = kafka_secure.access(service)
    producer = new_producer(service_settings(kafka_secure, service), f"sec-{service}")
    await producer.start()
    try:
        allowed = [access.produces, *(t + ".dlq" for t in access.consumes)]
        for topic in allowed:
            await producer.send_and_wait(topic, b"{}", key=uuid.uuid4().hex.encode())
        refused = [t for t in (*topics.CONTRACT_TOPICS, *DEAD_LETTERS) if t not in allowed]
        for topic in refused:
            with pytest.raises(TopicAuthorizationFailedError):
                await producer.send_and_wait(topic, b"{}", key=uuid.uuid4().hex.encode())
    finally:
        await producer.stop()


async def test_the_faststream_broker_of_a_service_is_refused_another_services_topic(
    kafka_secure: SecureKafka, secure_topics: tuple[str, ...]
) -> None:
    broker = new_broker(service_settings(kafka_secure, "notifications"), "sec-notifications")
    await broker.start()
    try:
        await broker.publish(b"{}", topics.NOTIFICATIONS, key=uuid.uuid4().hex.encode())
        with pytest.raises(TopicAuthorizationFailedError):
            await broker.publish(b"{}", topics.AWARDS, key=uuid.uuid4().hex.encode())
    finally:
        await broker.stop()


async def read_as(kafka: SecureKafka, user: str, topic: str, group: str | None) -> list[Any]:
    consumer = AIOKafkaConsumer(
        topic,
        **client_options(secure_settings(kafka, user), f"sec-read-{user}"),
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    try:
        await consumer.start()
        return await poll_once(consumer)
    finally:
        await consumer.stop()


@pytest.mark.parametrize(
    ("service", "topic"),
    [
        ("mentoring", topics.AWARDS),
        ("mentoring", topics.NOTIFICATIONS),
        ("awards", topics.NOTIFICATIONS),
        ("notifications", topics.NOTIFICATIONS),
        ("applications", topics.APPLICATIONS),
        ("mentoring", topics.APPLICATIONS + ".dlq"),
    ],
)
async def test_reading_a_topic_the_service_does_not_consume_is_refused(
    kafka_secure: SecureKafka, secure_topics: tuple[str, ...], service: str, topic: str
) -> None:
    access = kafka_secure.access(service)
    # A service's own group where it has one; applications consumes nothing and has none.
    group = fresh_group(kafka_secure, service) if access.group else None
    with pytest.raises(TopicAuthorizationFailedError):
        await read_as(kafka_secure, access.user, topic, group)


async def test_reading_with_another_services_consumer_group_is_refused(
    kafka_secure: SecureKafka, secure_topics: tuple[str, ...]
) -> None:
    mentoring = kafka_secure.access("mentoring").user
    with pytest.raises(GroupAuthorizationFailedError):
        await read_as(
            kafka_secure, mentoring, topics.APPLICATIONS, fresh_group(kafka_secure, "awards")
        )


async def test_a_user_without_acls_may_neither_read_nor_write(
    kafka_secure: SecureKafka, secure_topics: tuple[str, ...]
) -> None:
    with pytest.raises((TopicAuthorizationFailedError, GroupAuthorizationFailedError)):
        await read_as(
            kafka_secure,
            kafka_secure.stranger,
            topics.APPLICATIONS,
            fresh_group(kafka_secure, "mentoring"),
        )
    producer = new_producer(secure_settings(kafka_secure, kafka_secure.stranger), "sec-stranger")
    # The idempotent producer asks for a producer id first; with Write on no topic at all
    # (KIP-679) even that is refused.
    with pytest.raises(ClusterAuthorizationFailedError):
        await producer.start()
    await producer.stop()


async def test_a_topic_the_broker_refuses_to_create_stops_the_start_naming_it(
    kafka_secure: SecureKafka,
) -> None:
    # Services may not create topics here (an administrator does): the broker's per-topic
    # refusal must surface, not pass as if the topic now existed.
    missing = f"pearls.security-missing-{uuid.uuid4().hex[:8]}"
    with pytest.raises(topics.TopicsNotCreated) as refused:
        await topics.ensure_topics(service_settings(kafka_secure, "applications"), [missing])
    assert missing in str(refused.value)
    assert "AuthorizationFailed" in str(refused.value)
