"""The public showcase in a real browser: Debian's Chromium, headless, driven by Selenium.

The awards service runs as its own process (``pearls-awards`` under uvicorn on a
free port, as ``make run`` starts it) against a fresh database and the real
broker. Participants arrive as events on the applications and mentoring topics;
a round is opened, scored and closed through the HTTP API. Then Chromium reads
``/showcase``, follows a pearl's link to its page, and feedparser reads the
Atom feed the pages point to.

Chromium and its driver come from the distribution (``deploy/setup.sh``
installs ``chromium`` and ``chromium-driver``); Selenium is given both paths, so
Selenium Manager downloads nothing. Without them the test fails and says what
to install: it never skips.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import feedparser
import httpx
import pytest
from aiokafka import AIOKafkaProducer
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service as DriverService
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from pearls_shared.settings import KafkaSettings
from pearls_shared.testing import start_group_at_end
from pearls_shared.topics import APPLICATIONS, MENTORING

from .conftest import COORDINATOR, Participant, Service

pytestmark = pytest.mark.integration

INSTALL = (
    "install Chromium and its driver (Debian/Ubuntu: apt-get install chromium chromium-driver;"
    " deploy/setup.sh does it), or point PEARLS_CHROMIUM / PEARLS_CHROMEDRIVER at them"
)


def _executable(variable: str, default: str, *names: str) -> Path:
    """The browser or driver: from the environment, the Debian path, or PATH; else fail."""
    candidates = [os.environ.get(variable), default, *(shutil.which(n) for n in names)]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return Path(candidate)
    pytest.fail(f"{names[0]} not found (looked at ${variable}, {default}, PATH): {INSTALL}")


# -- the awards service as a process ------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _command() -> list[str]:
    """``pearls-awards`` of this environment (its bin/ need not be on PATH)."""
    script = Path(sys.executable).parent / "pearls-awards"
    return [str(script)] if script.exists() else [sys.executable, "-m", "pearls_awards"]


def _tail(path: Path, lines: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


async def _ready(process: asyncio.subprocess.Process, url: str, log: Path) -> None:
    deadline = asyncio.get_running_loop().time() + 60
    async with httpx.AsyncClient(timeout=2.0) as client:
        while True:
            if process.returncode is not None:
                raise AssertionError(f"pearls-awards exited ({process.returncode}):\n{_tail(log)}")
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(f"{url}/readyz")).status_code == 200:
                    return
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"pearls-awards not ready at {url}:\n{_tail(log)}")
            await asyncio.sleep(0.3)


async def _stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), timeout=15)
        except TimeoutError:
            process.kill()
            await process.wait()


@pytest.fixture
async def served(
    postgres_server: Any,
    kafka_settings: KafkaSettings,
    contract_topics: tuple[str, ...],
    tmp_path: Path,
) -> AsyncIterator[Service]:
    """The service's helpers (events, rounds) bound to a real ``pearls-awards`` process."""
    dsn = postgres_server.new_database("awards")
    group = f"awards-browser-{uuid.uuid4()}"
    await start_group_at_end(kafka_settings.bootstrap_servers, group, (APPLICATIONS, MENTORING))
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_settings.bootstrap_servers,
        "KAFKA_TOPIC_PARTITIONS": str(kafka_settings.topic_partitions),
        "PEARLS_AWARDS_DATABASE_URL": dsn,
        "PEARLS_AWARDS_COORDINATORS": json.dumps([{"id": "anna", "token": COORDINATOR}]),
        "PEARLS_AWARDS_CONSUMER_GROUP": group,
        "PEARLS_AWARDS_PUBLIC_BASE_URL": base,
        "PYTHONUNBUFFERED": "1",
    }
    log = tmp_path / "awards.log"
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            *_command(),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    producer = AIOKafkaProducer(bootstrap_servers=kafka_settings.bootstrap_servers)
    try:
        await _ready(process, base, log)
        await producer.start()
        async with httpx.AsyncClient(base_url=base, timeout=30.0) as client:
            # The app runs in the other process: the helpers need only its HTTP API
            # and the producer.
            yield Service(cast(Any, None), client, dsn, kafka_settings, producer)
    finally:
        await producer.stop()
        await _stop(process)


# -- the browser ------------------------------------------------------------------------------


@pytest.fixture
def browser() -> Iterator[webdriver.Chrome]:
    chromium = _executable("PEARLS_CHROMIUM", "/usr/bin/chromium", "chromium", "chromium-browser")
    driver_path = _executable("PEARLS_CHROMEDRIVER", "/usr/bin/chromedriver", "chromedriver")
    options = Options()
    options.binary_location = str(chromium)
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,900"):
        options.add_argument(argument)
    driver = webdriver.Chrome(
        service=DriverService(executable_path=str(driver_path)), options=options
    )
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


# -- the story ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Town:
    city: str
    country: str
    country_name: str
    contact: str
    citation: str
    scores: tuple[int, int]  # impact, community (0-10) from both jurors


TOWNS = (
    Town(
        "Kuldīga",
        "LV",
        "Latvia",
        "Inese Kalniņa",
        "Kuldīga gave its young people a festival of their own.",
        (10, 9),
    ),
    Town(
        "Cēsis",
        "LV",
        "Latvia",
        "Līga Ozola",
        "Cēsis turned an old brewery into a makerspace for young makers.",
        (9, 9),
    ),
    Town(
        "Viljandi",
        "EE",
        "Estonia",
        "Mart Tamm",
        "Viljandi opened its folk music to everyone who lives there.",
        (9, 8),
    ),
)


async def _awarded(service: Service) -> tuple[dict[str, Participant], dict[str, Any]]:
    """Three eligible participants, a round, two jurors' scores, the round closed.

    Weighted (impact x2): Kuldīga 96.67, Cēsis 90.00, Viljandi 86.67. Two awards, at most
    one per country: Kuldīga and Viljandi; Cēsis, 3.33 above Viljandi, gets the
    additional award (margin 5).
    """
    towns: dict[str, Participant] = {}
    for town in TOWNS:
        contact = {
            "name": town.contact,
            "email": f"{town.contact.split()[0].lower()}.{service.tag}@contact.example",
            "language": "en",
            "role": "primary",
        }
        towns[town.city] = service.participant(town.city, town.country, contacts=[contact])
        await service.eligible(towns[town.city], reached=2)
    round_ = await service.open_round(awards_count=2, tight_margin=5.0)
    assert round_["nominated"] == len(TOWNS), round_
    path = f"/rounds/{round_['round_id']}"
    for juror in round_["juror_tokens"]:
        for town in TOWNS:
            impact, community = town.scores
            r = await service.client.put(
                f"{path}/nominees/{towns[town.city].id}/scores",
                json={"scores": {"impact": impact, "community": community}},
                headers={"Authorization": f"Bearer {juror['token']}"},
            )
            assert r.status_code == 200, r.text
    closed = await service.client.post(
        f"{path}/close",
        json={
            "citations": {
                str(towns[t.city].id): {"en": t.citation, "lv": f"{t.city}: citāts latviski."}
                for t in TOWNS
            }
        },
        headers=service.coordinator,
    )
    assert closed.status_code == 200, closed.text
    result: dict[str, Any] = closed.json()
    return towns, result


def _personal(service: Service, towns: dict[str, Participant]) -> set[str]:
    """Everything personal the service knows about these people: none of it may be public."""
    found: set[str] = set()
    for p in towns.values():
        for c in p.accepted.contacts:
            found |= {c.name, str(c.email)}
    found |= {"Kadri Tamm", "Anna Berg", "Lars Holm"}  # the mentor and the jurors
    found |= {j["email"] for j in service.round_body()["jurors"]}
    return found


def _visit(driver: webdriver.Chrome, base: str) -> dict[str, Any]:
    """The index, a click on Cēsis's link, then every other pearl: what the browser saw."""
    wait = WebDriverWait(driver, 20)
    driver.get(f"{base}/showcase")
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "ul.pearls")))
    links = driver.find_elements(By.CSS_SELECTOR, "ul.pearls h3 a")
    listed = [(a.text, a.get_attribute("href")) for a in links]
    feed = driver.find_element(
        By.CSS_SELECTOR, 'link[rel="alternate"][type="application/atom+xml"]'
    ).get_attribute("href")
    pages = {"index": (driver.page_source, driver.find_element(By.TAG_NAME, "body").text)}

    cesis = next(a for a in links if a.text.startswith("Cēsis"))
    cesis.click()
    wait.until(ec.url_contains("/showcase/"))
    wait.until(ec.presence_of_element_located((By.TAG_NAME, "h1")))
    opened = {
        "url": driver.current_url,
        "title": driver.title,
        "h1": driver.find_element(By.TAG_NAME, "h1").text,
        "citation": driver.find_element(By.CSS_SELECTOR, 'blockquote[lang="en"]').text,
        "other_citations": [
            q.get_attribute("lang")
            for q in driver.find_elements(By.CSS_SELECTOR, "ul.translations blockquote")
        ],
        "facts": driver.find_element(By.CSS_SELECTOR, "dl.facts").text,
        "achievements": [
            li.text for li in driver.find_elements(By.CSS_SELECTOR, "ul.achievements li")
        ],
    }
    pages["cesis"] = (driver.page_source, driver.find_element(By.TAG_NAME, "body").text)
    for text, href in listed:
        if href and href != opened["url"]:
            driver.get(href)
            wait.until(ec.presence_of_element_located((By.TAG_NAME, "h1")))
            pages[text] = (driver.page_source, driver.find_element(By.TAG_NAME, "body").text)
    return {"listed": listed, "feed": feed, "opened": opened, "pages": pages}


async def test_the_pearls_are_listed_each_has_its_page_and_the_feed_is_valid(
    browser: webdriver.Chrome, served: Service
) -> None:
    # The browser first: without Chromium the test fails before starting anything.
    towns, result = await _awarded(served)
    assert [(w["rank"], w["additional_award"]) for w in result["winners"]] == [
        (1, False),
        (2, True),
        (3, False),
    ], result
    base = str(served.client.base_url).rstrip("/")
    year = datetime.now(UTC).year
    slugs = {"Kuldīga": f"{year}-kuldiga", "Cēsis": f"{year}-cesis", "Viljandi": f"{year}-viljandi"}

    seen = await asyncio.to_thread(_visit, browser, base)

    # The index lists every pearl, linking to its page under the public address.
    listed = {text.split(",")[0]: (text, href) for text, href in seen["listed"]}
    assert listed.keys() == {t.city for t in TOWNS}, seen["listed"]
    for town in TOWNS:
        text, href = listed[town.city]
        assert text.startswith(f"{town.city}, {town.country_name}")
        assert href == f"{base}/showcase/{slugs[town.city]}"

    # Clicking a pearl opens its page: the citation and what its action plan achieved.
    opened = seen["opened"]
    assert opened["url"] == f"{base}/showcase/{slugs['Cēsis']}"
    assert opened["h1"] == "Cēsis, Latvia"
    assert opened["title"] == f"Cēsis (Latvia): BSR Cultural Pearl {year}"
    assert opened["citation"] == TOWNS[1].citation
    assert opened["other_citations"] == ["lv"]
    assert "Additional award of the jury" in opened["facts"]
    # The milestones reached, as mentoring reported them (title: evidence), in the plan's order.
    assert opened["achievements"] == [
        "Milestone 1: Done with 40 volunteers (1).",
        "Milestone 2: Done with 40 volunteers (2).",
    ]

    # No personal data anywhere: neither contacts (names, e-mails) nor mentor nor jurors.
    personal = _personal(served, towns)
    assert len(seen["pages"]) == 1 + len(TOWNS)
    for name, (source, text) in seen["pages"].items():
        leaked = sorted(p for p in personal if p in source or p in text)
        assert not leaked, f"{name} shows personal data: {leaked}"
        assert "@" not in text, f"{name} shows an e-mail address: {text}"

    # The feed the pages point to: valid Atom, one entry per pearl, linking to its page.
    assert seen["feed"] == f"{base}/showcase/feed.atom"
    response = await served.client.get("/showcase/feed.atom")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/atom+xml")
    feed = feedparser.parse(response.content)
    assert not feed.bozo, feed.get("bozo_exception")
    assert feed.version == "atom10"
    assert len(feed.entries) == len(TOWNS)
    links = sorted(e.link for e in feed.entries)
    assert links == sorted(f"{base}/showcase/{s}" for s in slugs.values())
    assert {e.summary for e in feed.entries} == {t.citation for t in TOWNS}
    assert len({e.id for e in feed.entries}) == len(TOWNS)
    for entry in feed.entries:
        leaked = sorted(p for p in personal if p in json.dumps(entry, default=str))
        assert not leaked, f"feed entry {entry.link} shows personal data: {leaked}"
