"""The public showcase: slugs, HTML pages (escaped, well-formed, accessible) and the Atom feed."""

from __future__ import annotations

import dataclasses
import itertools
import re
import uuid
from calendar import timegm
from datetime import UTC, datetime, timedelta, timezone
from html.parser import HTMLParser
from typing import Any

import feedparser
import pytest

from pearls_awards.adapters.showcase import EMPTY_UPDATED, Showcase, entry_id, etag
from pearls_awards.domain.showcase import (
    COUNTRY_NAMES,
    THEME_LABELS,
    Pearl,
    country_name,
    make_slug,
    theme_label,
)
from pearls_shared.events.awards import AwardGranted
from pearls_shared.events.common import BSR_COUNTRIES, DEFAULT_THEMES
from pearls_shared.events.samples import sample

BASE = "http://127.0.0.1:8003"
ROUND_2026 = uuid.UUID("00000000-0000-4000-8000-000000002026")
CEST = timezone(timedelta(hours=2))
ROUND_2025 = uuid.UUID("00000000-0000-4000-8000-000000002025")


def pearl(
    city: str = "Kuldīga",
    country: str = "LV",
    year: int = 2026,
    rank: int = 1,
    *,
    slug: str | None = None,
    additional_award: bool = False,
    citation: dict[str, str] | None = None,
    themes: tuple[str, ...] = ("culture_creative_industries", "leisure_youth_social"),
    achievements: tuple[str, ...] = (
        "Six empty shop fronts in the old town reopened as studios for young artists.",
        "A volunteer-run riverside festival drew 4,000 visitors in its first year.",
    ),
    granted_at: datetime | None = None,
) -> Pearl:
    return Pearl(
        participant_id=uuid.uuid5(uuid.NAMESPACE_URL, f"participant:{city}"),
        slug=slug or make_slug(year, city),
        city_name=city,
        country=country,
        year=year,
        round_id=ROUND_2026 if year == 2026 else ROUND_2025,
        round_title=f"BSR Cultural Pearls Award {year}",
        rank=rank,
        additional_award=additional_award,
        citation=citation
        or {
            "en": f"{city} turned empty old-town spaces into a living stage for its young people.",
            "lv": "Kuldīga pārvērta tukšās vecpilsētas telpas par dzīvu skatuvi saviem jauniešiem.",
            "de": "Kuldīga machte leere Räume der Altstadt zur lebendigen Bühne seiner Jugend.",
        },
        themes=themes,
        achievements=achievements,
        granted_at=granted_at or datetime(year, 11, 5, 10, 0, tzinfo=UTC),
    )


@pytest.fixture
def showcase() -> Showcase:
    return Showcase(BASE)


@pytest.fixture
def pearls() -> list[Pearl]:
    return [
        pearl("Ystad", "SE", 2025, 2),
        pearl("Kuldīga", "LV", 2026, 1),
        pearl("Jelenia Góra", "PL", 2026, 3, additional_award=True, themes=("urban_water",)),
        pearl("Viljandi", "EE", 2026, 2),
        pearl("Husum", "DE", 2025, 1),
    ]


# -- a small well-formedness checker on html.parser ---------------------------

VOID = {
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
    "track", "wbr",
}  # fmt: skip


class Checker(HTMLParser):
    """Every element closed, in order; void elements never closed; headings and landmarks noted."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.doctype: str | None = None
        self.started: list[tuple[str, dict[str, str | None]]] = []
        self.headings: list[int] = []
        self.ids: list[str] = []

    def handle_decl(self, decl: str) -> None:
        self.doctype = decl

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.started.append((tag, dict(attrs)))
        if m := re.fullmatch(r"h([1-6])", tag):
            self.headings.append(int(m.group(1)))
        if (id_ := dict(attrs).get("id")) is not None:
            self.ids.append(id_)
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.errors.append(f"self-closing <{tag}/> in HTML")
        self.started.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            self.errors.append(f"</{tag}> closes a void element")
        elif not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> while {self.stack[-1:]} is open")
        else:
            self.stack.pop()

    def tags(self, name: str) -> list[dict[str, str | None]]:
        return [attrs for tag, attrs in self.started if tag == name]


def check(html: str) -> Checker:
    checker = Checker()
    checker.feed(html)
    checker.close()
    assert checker.errors == []
    assert checker.stack == [], f"unclosed: {checker.stack}"
    assert checker.doctype is not None and checker.doctype.lower() == "doctype html"
    assert html.startswith("<!doctype html>")
    assert [a.get("lang") for a in checker.tags("html")] == ["en"]
    assert [a.get("charset") for a in checker.tags("meta") if "charset" in a] == ["utf-8"]
    assert any(a.get("name") == "viewport" for a in checker.tags("meta"))
    assert len(checker.tags("title")) == 1
    for landmark in ("header", "main", "footer"):
        assert len(checker.tags(landmark)) == 1, landmark
    assert checker.headings.count(1) == 1 and checker.headings[0] == 1
    assert all(b <= a + 1 for a, b in itertools.pairwise(checker.headings)), checker.headings
    assert len(checker.ids) == len(set(checker.ids))
    assert "<script" not in html.lower()
    assert not any(k.startswith("on") for _, attrs in checker.started for k in attrs)
    feeds = [
        a
        for a in checker.tags("link")
        if a.get("rel") == "alternate" and a.get("type") == "application/atom+xml"
    ]
    assert [a["href"] for a in feeds] == [f"{BASE}/showcase/feed.atom"]
    # No external assets: the only stylesheet is inline, nothing is loaded.
    assert not [a for a in checker.tags("link") if a.get("rel") == "stylesheet"]
    assert not checker.tags("img") and not checker.tags("iframe")
    return checker


def links(html: str) -> list[tuple[str, str]]:
    """(href, text) of every <a> in the page."""

    class Links(HTMLParser):
        def __init__(self) -> None:
            super().__init__(convert_charrefs=True)
            self.found: list[tuple[str, str]] = []
            self.href: str | None = None
            self.text = ""

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            if tag == "a":
                self.href, self.text = dict(attrs).get("href"), ""

        def handle_data(self, data: str) -> None:
            if self.href is not None:
                self.text += data

        def handle_endtag(self, tag: str) -> None:
            if tag == "a" and self.href is not None:
                self.found.append((self.href, " ".join(self.text.split())))
                self.href = None

    parser = Links()
    parser.feed(html)
    return parser.found


def lang_texts(html: str) -> dict[str, str]:
    """The text of each element carrying a lang attribute (below <html>), by language."""

    class Langs(HTMLParser):
        def __init__(self) -> None:
            super().__init__(convert_charrefs=True)
            self.depth = 0
            self.lang: str | None = None
            self.found: dict[str, str] = {}

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            if self.lang is not None:
                self.depth += tag not in VOID
            elif tag != "html" and (lang := dict(attrs).get("lang")):
                self.lang, self.depth = lang, 1

        def handle_data(self, data: str) -> None:
            if self.lang is not None:
                self.found[self.lang] = self.found.get(self.lang, "") + data

        def handle_endtag(self, tag: str) -> None:
            if self.lang is not None:
                self.depth -= 1
                if self.depth == 0:
                    self.found[self.lang] = self.found[self.lang].strip()
                    self.lang = None

    parser = Langs()
    parser.feed(html)
    return parser.found


# -- slugs, labels, the Pearl --------------------------------------------------


@pytest.mark.parametrize(
    ("city", "slug"),
    [
        ("Kuldīga", "2026-kuldiga"),
        ("Jelenia Góra", "2026-jelenia-gora"),
        ("Ystad", "2026-ystad"),
        ("Łódź", "2026-lodz"),
        ("Ærøskøbing", "2026-aeroskobing"),
        ("Hafnarfjörður", "2026-hafnarfjordur"),
        ("Gießen", "2026-giessen"),
        ("Võru", "2026-voru"),
        ("Šiauliai", "2026-siauliai"),
        ("  Sankt Peter-Ording / Eiderstedt ", "2026-sankt-peter-ording-eiderstedt"),
        ("Kuressaare\u2019s old town", "2026-kuressaares-old-town"),
        ("Москва", "2026-pearl"),
    ],
)
def test_make_slug_folds_diacritics(city: str, slug: str) -> None:
    assert make_slug(2026, city) == slug


def test_make_slug_avoids_collisions() -> None:
    assert make_slug(2026, "Kuldīga", {"2026-kuldiga"}) == "2026-kuldiga-2"
    assert make_slug(2026, "Kuldīga", ["2026-kuldiga", "2026-kuldiga-2"]) == "2026-kuldiga-3"
    assert make_slug(2027, "Kuldīga", {"2026-kuldiga"}) == "2027-kuldiga"
    taken: set[str] = set()
    for _ in range(4):
        taken.add(make_slug(2026, "Ystad", taken))
    assert taken == {"2026-ystad", "2026-ystad-2", "2026-ystad-3", "2026-ystad-4"}


def test_labels_cover_the_defaults_and_prettify_the_rest() -> None:
    assert set(THEME_LABELS) == set(DEFAULT_THEMES)
    assert set(COUNTRY_NAMES) == set(BSR_COUNTRIES)
    assert theme_label("leisure_youth_social") == "Leisure, youth and social"
    assert theme_label("urban_water") == "Urban water"
    assert country_name("LV") == "Latvia"
    assert country_name("XK") == "XK"


def test_a_pearl_carries_no_personal_data() -> None:
    fields = {f.name for f in dataclasses.fields(Pearl)}
    assert fields == {
        "participant_id", "slug", "city_name", "country", "year", "round_id", "round_title",
        "rank", "additional_award", "citation", "themes", "achievements", "granted_at",
    }  # fmt: skip


def test_a_pearl_refuses_what_it_cannot_publish() -> None:
    with pytest.raises(ValueError, match="'en'"):
        pearl(citation={"lv": "Tikai latviski."})
    with pytest.raises(ValueError, match="aware"):
        pearl(granted_at=datetime(2026, 11, 5, 10, 0))
    with pytest.raises(ValueError, match="slug"):
        pearl(slug="../admin")
    with pytest.raises(ValueError, match="language"):
        pearl(citation={"en": "Fine.", 'lv" onmouseover="x': "Nē."})


# -- HTML ------------------------------------------------------------------------


def test_the_index_lists_every_pearl_newest_year_first_then_by_rank(
    showcase: Showcase, pearls: list[Pearl]
) -> None:
    html = showcase.index_html(pearls)
    check(html)
    prefix = f"{BASE}/showcase/"
    pages = [(h, t) for h, t in links(html) if h.startswith(prefix) and h != f"{prefix}feed.atom"]
    assert [h.removeprefix(prefix) for h, _ in pages] == [
        "2026-kuldiga",
        "2026-viljandi",
        "2026-jelenia-gora",
        "2025-husum",
        "2025-ystad",
    ]
    by_slug = {p.slug: p for p in pearls}
    for href, text in pages:
        p = by_slug[href.rsplit("/", 1)[1]]
        assert href == showcase.pearl_url(p)
        # Descriptive link text: city, country and year.
        assert text == f"{p.city_name}, {p.country_name}: BSR Cultural Pearl {p.year}"
    for name in ("Latvia", "Estonia", "Poland", "Sweden", "Germany"):
        assert name in html
    assert "Rank 1" in html and "Rank 2" in html and "Additional award" in html
    assert "Culture and creative industries" in html and "Leisure, youth and social" in html
    assert "Urban water" in html and "urban_water" not in html
    assert html.index("Pearls of 2026") < html.index("Pearls of 2025")
    assert f'href="{BASE}/showcase.json"' in html


def test_an_empty_showcase_says_so(showcase: Showcase) -> None:
    html = showcase.index_html([])
    check(html)
    assert "No pearls have been awarded yet" in html
    assert "<ul" not in html


def test_a_pearl_page_has_the_citation_in_every_language_themes_and_achievements(
    showcase: Showcase,
) -> None:
    p = pearl(themes=("culture_creative_industries", "digital_participation"))
    html = showcase.pearl_html(p)
    checker = check(html)
    assert lang_texts(html) == p.citation
    quotes = [a.get("lang") or "" for a in checker.tags("blockquote")]
    assert quotes[0] == "en" and sorted(quotes[1:]) == ["de", "lv"]
    assert "In Latvian:" in html and "In German:" in html
    assert "What the action plan achieved" in html
    for achievement in p.achievements:
        assert f"<li>{achievement}</li>" in html
    assert "<li>Culture and creative industries</li>" in html
    assert "<li>Digital participation</li>" in html
    assert "BSR Cultural Pearls Award 2026" in html  # the round
    assert "Rank 1" in html and "Latvia" in html
    assert '<time datetime="2026-11-05">5 November 2026</time>' in html
    assert (f"{BASE}/showcase", "Back to all Baltic Sea cultural pearls") in links(html)
    assert any(h == f"{BASE}/showcase/feed.atom" for h, _ in links(html))


def test_an_additional_award_is_named_so(showcase: Showcase) -> None:
    html = showcase.pearl_html(pearl(rank=4, additional_award=True))
    check(html)
    assert "Additional award" in html and "Rank 4" not in html


def test_everything_a_pearl_says_is_escaped(showcase: Showcase) -> None:
    evil = pearl(
        city='<script>alert("city")</script>',
        slug="2026-evil",
        citation={"en": "<script>alert(1)</script> & <b>bold</b>", "lv": "</blockquote><script>"},
        themes=("x<script>y",),
        achievements=('<img src=x onerror="alert(2)">',),
    )
    for html in (showcase.index_html([evil]), showcase.pearl_html(evil)):
        check(html)
        assert "<script" not in html and "<b>" not in html and "<img" not in html
        assert "&lt;script&gt;" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in (
        showcase.pearl_html(evil)
    )
    parsed = feedparser.parse(showcase.atom([evil]))
    assert not parsed.bozo
    entry = parsed.entries[0]
    assert entry.title == '<script>alert("city")</script> (Latvia) — BSR Cultural Pearl 2026'
    assert "<script" not in entry.content[0].value and "<img" not in entry.content[0].value


def test_control_characters_are_left_out(showcase: Showcase) -> None:
    odd = pearl(city="Kul\x0bdīga\x00", slug="2026-kuldiga", achievements=("Bell\x07 rang.",))
    for html in (showcase.index_html([odd]), showcase.pearl_html(odd)):
        check(html)
        assert "Kuldīga" in html and "\x0b" not in html and "\x00" not in html
    parsed = feedparser.parse(showcase.atom([odd]))
    assert not parsed.bozo and parsed.entries[0].title.startswith("Kuldīga (Latvia)")


def test_two_pearls_with_one_slug_are_refused(showcase: Showcase) -> None:
    twins = [pearl("Ystad", "SE"), pearl("Ystad", "SE", rank=2)]
    with pytest.raises(ValueError, match="2026-ystad"):
        showcase.index_html(twins)
    with pytest.raises(ValueError, match="2026-ystad"):
        showcase.atom(twins)


def test_the_base_url_must_be_absolute() -> None:
    assert Showcase(BASE + "/").feed_url == f"{BASE}/showcase/feed.atom"
    assert Showcase("https://pearls.example/awards").index_url == (
        "https://pearls.example/awards/showcase"
    )
    for bad in ("", "/showcase", "127.0.0.1:8003", "ftp://x", "http://x/?q=1"):
        with pytest.raises(ValueError):
            Showcase(bad)


def test_no_personal_data_reaches_the_public(showcase: Showcase) -> None:
    granted = sample("pearls.award.granted")
    assert isinstance(granted, AwardGranted)
    p = Pearl(
        participant_id=granted.participant_id,
        slug=make_slug(granted.granted_at.year, granted.city_name),
        city_name=granted.city_name,
        country=granted.country,
        year=granted.granted_at.year,
        round_id=granted.round_id,
        round_title="BSR Cultural Pearls Award 2026",
        rank=granted.rank,
        additional_award=granted.additional_award,
        citation=dict(granted.citation),
        themes=granted.themes,
        achievements=granted.achievements,
        granted_at=granted.granted_at,
    )
    out = showcase.index_html([p]) + showcase.pearl_html(p) + showcase.atom([p]).decode()
    assert granted.contacts
    for contact in granted.contacts:
        assert contact.name not in out
        assert str(contact.email) not in out
    assert str(granted.score) not in out


# -- Atom ------------------------------------------------------------------------


def test_the_atom_feed_is_valid_with_one_entry_per_pearl(
    showcase: Showcase, pearls: list[Pearl]
) -> None:
    body = showcase.atom(pearls)
    assert body.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    parsed: Any = feedparser.parse(body)
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert parsed.version == "atom10"
    feed = parsed.feed
    assert feed.id.startswith("urn:uuid:")
    assert feed.title == "BSR Cultural Pearls: the showcase"
    assert timegm(feed.updated_parsed) == datetime(2026, 11, 5, 10, 0, tzinfo=UTC).timestamp()
    rels = {(link.rel, link.href, link.type) for link in feed.links}
    assert rels == {
        ("self", f"{BASE}/showcase/feed.atom", "application/atom+xml"),
        ("alternate", f"{BASE}/showcase", "text/html"),
    }
    assert len(parsed.entries) == len(pearls)
    assert len({e.id for e in parsed.entries}) == len(pearls)
    by_link = {e.link: e for e in parsed.entries}
    for p in pearls:
        entry = by_link[showcase.pearl_url(p)]
        assert entry.id == entry_id(p)
        assert entry.title == f"{p.city_name} ({p.country_name}) — BSR Cultural Pearl {p.year}"
        assert timegm(entry.updated_parsed) == int(p.granted_at.timestamp())
        assert timegm(entry.published_parsed) == int(p.granted_at.timestamp())
        assert entry.summary == p.citation["en"]
        content = entry.content[0].value
        assert p.citation["en"] in content
        assert all(a in content for a in p.achievements)
        assert [t.term for t in entry.tags] == list(p.themes)
    # Newest award first, then by rank.
    assert [e.title.split(" (")[0] for e in parsed.entries] == [
        "Kuldīga", "Viljandi", "Jelenia Góra", "Husum", "Ystad"
    ]  # fmt: skip


def test_feed_entries_run_newest_first(showcase: Showcase) -> None:
    t = datetime(2026, 11, 5, 10, 0, tzinfo=UTC)
    first = pearl("Kuldīga", rank=1, granted_at=t)
    # Decided a day later (the additional award), given in Central European Summer Time.
    later = pearl("Viljandi", "EE", rank=2, granted_at=(t + timedelta(days=1)).astimezone(CEST))
    last_year = pearl("Husum", "DE", 2025, granted_at=t - timedelta(days=365))
    parsed = feedparser.parse(showcase.atom([last_year, first, later]))
    assert [e.link for e in parsed.entries] == [
        showcase.pearl_url(later),
        showcase.pearl_url(first),
        showcase.pearl_url(last_year),
    ]
    assert timegm(parsed.feed.updated_parsed) == (t + timedelta(days=1)).timestamp()
    assert "2026-11-06T12:00:00+02:00" in showcase.atom([later]).decode()


def test_an_empty_feed_is_still_valid(showcase: Showcase) -> None:
    parsed: Any = feedparser.parse(showcase.atom([]))
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert parsed.version == "atom10"
    assert parsed.entries == []
    assert timegm(parsed.feed.updated_parsed) == int(EMPTY_UPDATED.timestamp()) == 0
    assert any(link.rel == "self" for link in parsed.feed.links)


def test_entry_ids_name_the_award_not_the_host(pearls: list[Pearl]) -> None:
    p = pearls[0]
    assert entry_id(p) == entry_id(dataclasses.replace(p, slug="2025-ystad-2", rank=9))
    assert entry_id(p) != entry_id(dataclasses.replace(p, round_id=uuid.uuid4()))
    assert re.fullmatch(r"urn:uuid:[0-9a-f-]{36}", entry_id(p))
    a = feedparser.parse(Showcase(BASE).atom(pearls))
    b = feedparser.parse(Showcase("https://pearls.example").atom(pearls))
    assert [e.id for e in a.entries] == [e.id for e in b.entries]
    assert a.feed.id == b.feed.id


# -- ETag ------------------------------------------------------------------------


def test_etag_is_strong_stable_and_follows_the_content(
    showcase: Showcase, pearls: list[Pearl]
) -> None:
    body = showcase.atom(pearls)
    assert showcase.atom(list(reversed(pearls))) == body  # rendering is deterministic
    tag = etag(body)
    assert re.fullmatch(r'"[0-9a-f]{32}"', tag)
    assert etag(body) == tag
    assert etag(showcase.atom(pearls[:-1])) != tag
    page = showcase.index_html(pearls).encode()
    assert etag(showcase.index_html(pearls).encode()) == etag(page)
    assert etag(showcase.index_html(pearls[1:]).encode()) != etag(page)
    assert etag(b"") == '"e3b0c44298fc1c149afbf4c8996fb924"'


def test_the_checker_notices_broken_markup() -> None:
    for broken in (
        "<!doctype html><html lang='en'><body><main><p>open</main></body></html>",
        "<!doctype html><html lang='en'><body><br></br></body></html>",
        "<!doctype html><html lang='en'><body><div></body></html>",
    ):
        with pytest.raises(AssertionError):
            check(broken)
