"""Templates: complete in every shipped language, same placeholders, fallback, escaping."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from jinja2 import meta, nodes

from pearls_notifications.adapters.templates import PARTS, TEMPLATE_DIR, Templates
from pearls_notifications.domain.model import Recipient
from pearls_notifications.domain.routing import WHO_HEARS_WHAT, Known, mails_for, templates
from pearls_shared.events.samples import sample

TEMPLATES = Templates()
KNOWN = Known(coordinators=Recipient.of("c@pearls.example", "Coordinators", "en"))


def placeholders(path: Path) -> set[str]:
    """Top-level variables plus every dotted attribute path the template reads."""
    env = TEMPLATES.env
    tree = env.parse(path.read_text())
    found = set(meta.find_undeclared_variables(tree))

    def dotted(node: nodes.Node) -> str | None:
        if isinstance(node, nodes.Name):
            return node.name
        if isinstance(node, nodes.Getattr):
            base = dotted(node.node)
            return f"{base}.{node.attr}" if base else None
        if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
            base = dotted(node.node)
            return f"{base}.{node.arg.value}" if base else None
        return None

    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        path_ = dotted(node)
        if path_:
            found.add(path_)
    return found


def test_english_and_german_are_shipped() -> None:
    assert {"en", "de"} <= set(TEMPLATES.languages)


@pytest.mark.parametrize("language", Templates().languages)
def test_every_template_exists_in_every_shipped_language(language: str) -> None:
    missing = [
        f"{language}/{name}.{part}"
        for name in templates()
        for part in PARTS
        if not (TEMPLATE_DIR / language / f"{name}.{part}").is_file()
    ]
    assert not missing


@pytest.mark.parametrize("name", templates())
@pytest.mark.parametrize("part", PARTS)
def test_placeholders_are_the_same_in_every_language(name: str, part: str) -> None:
    english = placeholders(TEMPLATE_DIR / "en" / f"{name}.{part}")
    for language in TEMPLATES.languages:
        assert placeholders(TEMPLATE_DIR / language / f"{name}.{part}") == english, language


def context_for(event_type: str) -> list[tuple[str, dict[str, Any]]]:
    return [
        (
            mail.template,
            {
                "event": mail.context,
                "recipient": {"name": mail.recipient.name, "email": mail.recipient.email},
                "unsubscribe_url": "https://pearls.example/unsubscribe?x=1",
            },
        )
        for mail in mails_for(sample(event_type), KNOWN)
    ]


@pytest.mark.parametrize("event_type", sorted(WHO_HEARS_WHAT))
def test_every_template_renders_the_sample_in_every_language(event_type: str) -> None:
    for template, context in context_for(event_type):
        for language in TEMPLATES.languages:
            rendered = TEMPLATES.render(template, language, context)
            assert rendered.language == language
            assert rendered.subject and "\n" not in rendered.subject
            assert context["recipient"]["name"] in rendered.text
            assert "{{" not in rendered.text and "{%" not in rendered.html


def test_a_language_without_templates_falls_back_to_english() -> None:
    [(template, context), *_] = context_for("pearls.application.accepted")
    rendered = TEMPLATES.render(template, "lv", context)
    assert rendered.language == "en"
    assert rendered.subject == "Welcome to BSR Cultural Pearls, Kuldīga!"
    assert TEMPLATES.render(template, "de", context).subject.startswith("Willkommen")


def test_html_is_autoescaped_and_text_is_not() -> None:
    [(template, context), *_] = context_for("pearls.application.rejected")
    context["event"] = {**context["event"], "reason": "<script>alert(1)</script> & more"}
    rendered = TEMPLATES.render(template, "en", context)
    assert "<script>" not in rendered.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in rendered.html
    assert "<script>alert(1)</script> & more" in rendered.text


def test_localized_texts_use_the_recipients_language_or_english() -> None:
    [(template, context), *_] = context_for("pearls.award.granted")
    context["event"] = {**context["event"], "citation": {"en": "For courage.", "de": "Für Mut."}}
    assert "Für Mut." in TEMPLATES.render(template, "de", context).text
    assert "For courage." in TEMPLATES.render(template, "en", context).text


def test_non_essential_mail_carries_the_unsubscribe_link_essential_mail_does_not() -> None:
    [(template, context), *_] = context_for("pearls.plan.milestone_reached")
    rendered = TEMPLATES.render(template, "en", context)
    assert context["unsubscribe_url"] in rendered.text
    assert 'href="https://pearls.example/unsubscribe?x=1"' in rendered.html
    essential = TEMPLATES.render(template, "en", {**context, "unsubscribe_url": None})
    assert "unsubscribe" not in essential.text.lower()


def test_coordinators_read_why_no_mentor_fits_in_their_language() -> None:
    [(template, context)] = context_for("pearls.mentor.unmatched")
    reasons = ["no_shared_language", "all_full", "a_reason_added_later"]
    context["event"] = {**context["event"], "reasons": reasons}
    english = TEMPLATES.render(template, "en", context)
    assert english.subject == "No mentor found for Kuldīga (LV)"
    assert (
        "Why: no mentor with free places shares a working language; every mentor who would fit"
        " has no free place; a_reason_added_later." in english.text
    )
    assert (
        context["event"]["summary"] in english.text and context["event"]["summary"] in english.html
    )
    german = TEMPLATES.render(template, "de", context)
    assert "niemand mit freien Plätzen teilt eine Arbeitssprache; alle passenden" in german.text
    assert "a_reason_added_later" in german.html


def test_times_keep_the_offset_they_were_given_in() -> None:
    when = Templates().env.filters["when"]
    assert when("2026-12-23T14:00:00+02:00") == "2026-12-23 14:00 UTC+02:00"
    assert when("2026-12-23T12:00:00Z") == "2026-12-23 12:00 UTC"
    assert when("2026-03-29T10:30:00-03:30") == "2026-03-29 10:30 UTC-03:30"
