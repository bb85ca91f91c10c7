"""The public showcase rendered: HTML pages and an Atom feed of the Baltic Sea cultural pearls.

A pure adapter: pearls in, bytes and text out; no database, no routes. The
service serves

- ``<base>/showcase``            the index (``Showcase.index_html``),
- ``<base>/showcase/<slug>``     one page per pearl (``Showcase.pearl_html``),
- ``<base>/showcase/feed.atom``  the Atom 1.0 feed (``Showcase.atom``),
- ``<base>/showcase.json``       the same as JSON (only linked from here),

each with a strong ``etag`` of its body. The pages need no JavaScript and load
nothing else: the little CSS they have is inline. Templates ship with the
package and are never supplied by users; everything a pearl says is escaped.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urlsplit

from feedgen.feed import FeedGenerator
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from pearls_awards.domain.showcase import Pearl, language_name, theme_label

TITLE = "BSR Cultural Pearls"
FEED_TITLE = "BSR Cultural Pearls: the showcase"
FEED_SUBTITLE = (
    "Smaller cities and regions of the Baltic Sea Region that received the BSR Cultural "
    "Pearls Award, and what their action plans for culture and social resilience achieved."
)
# Atom ids are permanent: they name the award, not where it is published.
_ID_NAMESPACE = uuid.UUID("6e34fc99-741f-4389-9209-546b64f01767")
FEED_ID = f"urn:uuid:{uuid.uuid5(_ID_NAMESPACE, 'showcase')}"
EMPTY_UPDATED = datetime(1970, 1, 1, tzinfo=UTC)  # the feed's <updated> with no pearls yet

# Characters neither XML 1.0 nor HTML allow in text (C0 controls but tab, LF
# and CR; DEL and C1 controls; surrogates; the two non-characters).
_UNPRINTABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
_MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip


def etag(body: bytes) -> str:
    """A strong ETag of a response body: the same bytes, the same tag."""
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def entry_id(pearl: Pearl) -> str:
    """The Atom id of a pearl's entry: one per award (participant and round)."""
    name = f"award:{pearl.participant_id}:{pearl.round_id}"
    return f"urn:uuid:{uuid.uuid5(_ID_NAMESPACE, name)}"


def entry_title(pearl: Pearl) -> str:
    return f"{pearl.city_name} ({pearl.country_name}) — BSR Cultural Pearl {pearl.year}"


def _clean(value: Any) -> Any:
    # Jinja's finalize: every {{ }} passes here before it is escaped.
    if isinstance(value, str) and not isinstance(value, Markup):
        return _UNPRINTABLE.sub("", value)
    return value


def _long_date(value: date) -> str:
    return f"{value.day} {_MONTHS[value.month - 1]} {value.year}"


def _ordered(pearls: Iterable[Pearl]) -> list[Pearl]:
    """Newest year first, then by rank (the additional award after equal ranks)."""
    ordered = sorted(
        pearls,
        key=lambda p: (-p.year, p.rank, p.additional_award, p.city_name.casefold(), p.slug),
    )
    seen: set[str] = set()
    for pearl in ordered:
        if pearl.slug in seen:
            raise ValueError(f"two pearls share the slug {pearl.slug!r}")
        seen.add(pearl.slug)
    return ordered


class Showcase:
    """Renders the showcase for a service published at ``base_url`` (absolute)."""

    def __init__(self, base_url: str) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"the showcase needs an absolute http(s) base URL, not {base_url!r}")
        if parts.query or parts.fragment:
            raise ValueError(f"a base URL has no query or fragment: {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.index_url = f"{self.base_url}/showcase"
        self.feed_url = f"{self.base_url}/showcase/feed.atom"
        self.json_url = f"{self.base_url}/showcase.json"
        self._env = Environment(
            loader=PackageLoader("pearls_awards", "templates"),
            autoescape=select_autoescape(enabled_extensions=("html",), default=False),
            undefined=StrictUndefined,
            finalize=_clean,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )
        self._env.globals.update(
            urls={"index": self.index_url, "feed": self.feed_url, "json": self.json_url},
            pearl_url=self.pearl_url,
            language_name=language_name,
            theme_label=theme_label,
            long_date=_long_date,
            title=TITLE,
        )

    def pearl_url(self, pearl: Pearl) -> str:
        return f"{self.index_url}/{pearl.slug}"

    # -- HTML ---------------------------------------------------------------

    def index_html(self, pearls: Sequence[Pearl]) -> str:
        """Every pearl, newest year first, then by rank; an empty showcase says so."""
        years = [
            (year, list(group))
            for year, group in itertools.groupby(_ordered(pearls), key=lambda p: p.year)
        ]
        return self._env.get_template("index.html").render(years=years)

    def pearl_html(self, pearl: Pearl) -> str:
        """One pearl: citation (English first), themes, round, and what its plan achieved."""
        return self._env.get_template("pearl.html").render(pearl=pearl)

    # -- Atom -----------------------------------------------------------------

    def atom(self, pearls: Sequence[Pearl]) -> bytes:
        """The Atom 1.0 feed, newest award first; valid even with no pearls."""
        ordered = sorted(
            _ordered(pearls), key=lambda p: (-p.granted_at.timestamp(), p.rank, p.slug)
        )
        fg = FeedGenerator()
        fg.id(FEED_ID)
        fg.title(FEED_TITLE)
        fg.subtitle(FEED_SUBTITLE)
        fg.language("en")
        fg.author(name=TITLE)
        fg.generator("Pearls awards")
        fg.link(href=self.feed_url, rel="self", type="application/atom+xml")
        fg.link(href=self.index_url, rel="alternate", type="text/html")
        fg.updated(max((p.granted_at for p in ordered), default=EMPTY_UPDATED))
        for pearl in ordered:
            entry = fg.add_entry(order="append")
            entry.id(entry_id(pearl))
            entry.title(_clean(entry_title(pearl)))
            # feedgen 1.0 writes an entry's link without rel and type; Atom's
            # default rel is "alternate", which is what this link is.
            entry.link(href=self.pearl_url(pearl), rel="alternate", type="text/html")
            entry.published(pearl.granted_at)
            entry.updated(pearl.granted_at)
            entry.summary(_clean(pearl.citation_in("en")))
            entry.content(self._entry_html(pearl), type="html")
            for theme in pearl.themes:
                entry.category(term=_clean(theme), label=_clean(theme_label(theme)))
        body: bytes = fg.atom_str(pretty=True)
        return body

    def _entry_html(self, pearl: Pearl) -> str:
        """The entry's content: the citation (English, then the others) and the achievements."""
        html = Markup('<blockquote lang="en"><p>{}</p></blockquote>').format(
            _clean(pearl.citation_in("en"))
        )
        for lang, text in pearl.other_citations():
            html += Markup('<p>In {}:</p><blockquote lang="{}"><p>{}</p></blockquote>').format(
                language_name(lang), lang, _clean(text)
            )
        if pearl.achievements:
            items = Markup("").join(
                Markup("<li>{}</li>").format(_clean(a)) for a in pearl.achievements
            )
            html += Markup("<p>What the action plan achieved:</p><ul>{}</ul>").format(items)
        if pearl.themes:
            labels = ", ".join(theme_label(t) for t in pearl.themes)
            html += Markup("<p>Themes: {}.</p>").format(_clean(labels))
        html += Markup('<p><a href="{}">{}</a></p>').format(
            self.pearl_url(pearl), _clean(f"{pearl.city_name} in the showcase")
        )
        return str(html)
