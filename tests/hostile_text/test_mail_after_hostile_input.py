"""Hostile strings through the applications API end as e-mails with nothing injected.

The real applications and notifications apps run on the shared broker with a
real SMTP server (aiosmtpd) capturing what is sent. Hypothesis generates
contact names, organisation names and free texts from an alphabet of what
attackers like (quotes, angle brackets, colons, encoded-word markers, direction
marks, look-alike letters, line breaks where a field allows them); every mail
that arrives must have exactly the headers Pearls writes, one recipient, the
right one, and no line in its text that an injection would have added.
"""

from __future__ import annotations

import asyncio
import email.policy
import socket
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from asgi_lifespan import LifespanManager
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pearls_notifications.bootstrap import create_app as notifications_app
from pearls_notifications.config import Settings as NotificationsSettings
from pearls_notifications.devsmtp import MaildirHandler
from pearls_shared.http import MAX_ERROR_BODY_BYTES
from pearls_shared.settings import KafkaSettings
from pearls_shared.testing import start_group_at_end, wait_for
from pearls_shared.topics import APPLICATIONS, AWARDS, MENTORING
from tests.apps import APPS, COORDINATOR

pytestmark = pytest.mark.integration

# Headers a Pearls e-mail may carry; anything else was injected.
ALLOWED = {
    "from", "to", "subject", "date", "message-id", "mime-version", "content-type",
    "content-transfer-encoding", "content-language", "auto-submitted", "x-auto-response-suppress",
    "list-unsubscribe", "list-unsubscribe-post", "list-id", "precedence", "reply-to",
    "x-pearls-event-id", "x-pearls-event-type", "x-pearls-template", "x-pearls-category",
}  # fmt: skip
HOSTILE = st.sampled_from(
    [
        "Bcc: evil@example.org", "=?utf-8?q?Mayor?=", "?=", "=?", "<script>", '"', "\\", ":",
        ",", ";", "@", "<evil@example.org>", "\u202e", "\u200b", "\ufeff", "Кулдīга", "ﬁ",
        "%0d%0a", "&#13;&#10;", "{{ 7*7 }}", "${x}", "'; DROP TABLE calls; --", "ä", "ß",
    ]
)  # fmt: skip
WORDS = st.lists(
    st.one_of(HOSTILE, st.text("abc XYZ-", min_size=1, max_size=8)), min_size=1, max_size=6
)
NAME = WORDS.map(lambda parts: " ".join(parts)[:200]).filter(lambda s: any(c.isalpha() for c in s))
FREE = st.lists(
    st.one_of(
        HOSTILE, st.just("\r\nBcc: evil@example.org\r\n"), st.just("\n\n"), st.text(max_size=20)
    ),
    min_size=1,
    max_size=8,
).map(lambda parts: "x" + "".join(parts).replace("\x00", ""))


@pytest.fixture
async def system(
    postgres_server: Any,
    kafka_settings: KafkaSettings,
    contract_topics: tuple[str, ...],
    tmp_path: Path,
) -> AsyncIterator[tuple[httpx.AsyncClient, Path]]:
    maildir = tmp_path / "mail"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        smtp_port = probe.getsockname()[1]
    smtp = Controller(MaildirHandler(maildir), hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    group = f"notifications-hostile-mail-{uuid.uuid4()}"
    await start_group_at_end(
        kafka_settings.bootstrap_servers, group, [APPLICATIONS, MENTORING, AWARDS]
    )
    notifications = notifications_app(
        NotificationsSettings(
            database_url=postgres_server.new_database("ntf_hostile"),
            consumer_group=group,
            smtp_host="127.0.0.1",
            smtp_port=smtp_port,
            smtp_starttls=False,
            rate_limit_per_minute=60_000.0,
            sender_idle_poll_s=0.2,
            unsubscribe_secret="test-secret",
            public_base_url="http://notifications.test",
            coordinator_email="coordinators@pearls.example",
        ),
        kafka_settings,
    )
    applications = APPS["applications"](
        postgres_server.new_database("apps_hostile"), kafka_settings
    )
    try:
        async with (
            LifespanManager(notifications, startup_timeout=60),
            LifespanManager(applications, startup_timeout=60) as apps,
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=apps.app), base_url="http://applications"
            ) as client,
        ):
            yield client, maildir
    finally:
        smtp.stop()


async def test_hostile_input_never_injects_anything_into_an_email(
    system: tuple[httpx.AsyncClient, Path],
) -> None:
    client, maildir = system
    auth = {"Authorization": f"Bearer {COORDINATOR}"}
    call = await client.post(
        "/calls",
        headers=auth,
        json={
            "title": {"en": "Hostile input call"},
            "description": {"en": "x"},
            "closes_at": (datetime.now(UTC) + timedelta(days=1)).isoformat(),
            "places": 5,
            "rubric": {"criteria": [{"key": "r", "weight": 1, "label": {"en": "R"}}]},
        },
    )
    assert call.status_code == 201, call.text
    sent: dict[str, str] = {}  # address -> the contact name as submitted

    @settings(
        max_examples=12,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
    )
    @given(name=NAME, organisation=NAME, motivation=FREE)
    def submit(name: str, organisation: str, motivation: str) -> None:
        address = f"contact.{uuid.uuid4().hex[:10]}@hostile.example"
        body = {
            "city_name": f"Town {uuid.uuid4().hex[:8]}",
            "place_kind": "city",
            "country": "LV",
            "population": 10_000,
            "organisation_name": organisation,
            "organisation_type": "municipality",
            "contacts": [{"name": name, "email": address, "language": "en", "role": "primary"}],
            "themes": ["culture_creative_industries"],
            "languages": ["lv"],
            "motivation": motivation,
            "challenges": motivation,
            "commitments": "x",
        }
        response = asyncio.run_coroutine_threadsafe(
            client.post(f"/calls/{call.json()['call_id']}/applications", json=body), loop
        ).result()
        assert response.status_code < 500, response.text
        if response.status_code >= 400:
            assert len(response.content) <= MAX_ERROR_BODY_BYTES
        else:
            sent[address] = name

    loop = asyncio.get_running_loop()
    await asyncio.to_thread(submit)
    assert sent, "hypothesis generated no accepted submission"

    def arrived() -> dict[str, bytes]:
        found = {}
        for path in maildir.glob("*.eml"):
            raw = path.read_bytes()
            for address in sent:
                if address.encode() in raw:
                    found[address] = raw
        return found

    mails: dict[str, bytes] = await wait_for(
        lambda: _ready(arrived, len(sent)), within=60, what="every receipt e-mail"
    )
    for address, raw in mails.items():
        msg = BytesParser(policy=email.policy.default).parsebytes(raw)
        assert {k.lower() for k in msg.keys()} <= ALLOWED, msg.keys()
        assert [a.addr_spec for a in msg["To"].addresses] == [address]
        assert "\n" not in str(msg["Subject"]) and "\r" not in str(msg["Subject"])
        text = msg.get_body(preferencelist=("plain",)).get_content()
        assert not any(
            line.lower().startswith(("bcc:", "cc:", "to:")) for line in text.splitlines()
        )
        assert raw.count(b"\nBcc:") == 0 and raw.count(b"\nbcc:") == 0


async def _ready(found: Any, wanted: int) -> dict[str, bytes] | None:
    mails: dict[str, bytes] = found()
    return mails if len(mails) >= wanted else None
