"""Small value types shared by the event models of all four producers.

They are deliberately loose where the product is configurable (countries and
themes are set per call, so they are checked for shape, not membership) and
strict where every consumer depends on them (languages drive e-mail templates).
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from datetime import date
from typing import TYPE_CHECKING, Annotated, Literal, TypeVar, get_args

import pydantic
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

# ISO 639-1 codes of the BSR languages plus English, the fallback. Norwegian
# appears as the macro-language "no" and as both written standards (nb, nn).
LanguageCode = Literal[
    "da", "de", "en", "et", "fi", "is", "lt", "lv", "nb", "nn", "no", "pl", "sv"
]  # fmt: skip
LANGUAGES: tuple[str, ...] = get_args(LanguageCode)
FALLBACK_LANGUAGE: LanguageCode = "en"

# The default eligible countries of a call (ISO 3166-1 alpha-2); a call may
# configure others, so the schema only checks the code's shape.
BSR_COUNTRIES: tuple[str, ...] = ("DK", "EE", "FI", "DE", "IS", "LV", "LT", "NO", "PL", "SE")

# The Twin City Lab's areas, offered by default; a call may offer other slugs.
DEFAULT_THEMES: tuple[str, ...] = (
    "ecology_health",
    "innovation_economy",
    "leisure_youth_social",
    "city_administration_development",
    "culture_creative_industries",
    "digital_participation",
)

CountryCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]
ThemeSlug = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)]
Slug = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]


_T = TypeVar("_T")


@functools.lru_cache(maxsize=8192)
def _valid_email(address: str) -> str:
    return pydantic.validate_email(address)[1]


if TYPE_CHECKING:  # as pydantic's own: a str to type checkers
    EmailStr = str
else:

    class EmailStr(pydantic.EmailStr):
        """pydantic's ``EmailStr`` (the same checks, normalisation and JSON schema), with each
        address's result remembered: validating one costs ~0.3 ms (IDNA checks of every domain
        character) and the same few addresses come back in event after event. Only successes
        are cached; an invalid address raises every time."""

        @classmethod
        def _validate(cls, input_value: str, /) -> str:
            return _valid_email(input_value)


def _unique(items: Sequence[_T]) -> Sequence[_T]:
    if len(set(items)) != len(items):
        raise ValueError("items must be unique")
    return items


def _has_fallback(text: dict[LanguageCode, str]) -> dict[LanguageCode, str]:
    # Notifications and the showcase fall back to English, so it must exist.
    if FALLBACK_LANGUAGE not in text:
        raise ValueError(f"a text in {FALLBACK_LANGUAGE!r} is required as the fallback")
    return text


LocalizedText = Annotated[
    dict[LanguageCode, Annotated[str, StringConstraints(min_length=1, max_length=4000)]],
    Field(json_schema_extra={"required": [FALLBACK_LANGUAGE]}),
    AfterValidator(_has_fallback),
]
Themes = Annotated[
    tuple[ThemeSlug, ...],
    Field(min_length=1, json_schema_extra={"uniqueItems": True}),
    AfterValidator(_unique),
]
Languages = Annotated[
    tuple[LanguageCode, ...],
    Field(min_length=1, json_schema_extra={"uniqueItems": True}),
    AfterValidator(_unique),
]
Countries = Annotated[
    tuple[CountryCode, ...],
    Field(min_length=1, json_schema_extra={"uniqueItems": True}),
    AfterValidator(_unique),
]


class Value(BaseModel):
    """Base of nested value objects: immutable, tolerant of fields added later."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class ContactPerson(Value):
    """A person to write to on behalf of an applicant city or region."""

    name: Name = Field(description="Full name of the contact person.")
    email: EmailStr = Field(description="E-mail address (domain normalised to lower case).")
    language: LanguageCode = Field(
        description="Preferred language for e-mail (ISO 639-1); 'en' is the fallback."
    )
    role: Literal["primary", "backup"] = Field(
        description="'primary' is addressed first; backups are copied, since staff change often."
    )


def _one_primary(contacts: tuple[ContactPerson, ...]) -> tuple[ContactPerson, ...]:
    if sum(c.role == "primary" for c in contacts) != 1:
        raise ValueError("exactly one contact must have role 'primary'")
    if len({c.email for c in contacts}) != len(contacts):
        raise ValueError("contact e-mail addresses must be unique")
    return contacts


Contacts = Annotated[
    tuple[ContactPerson, ...],
    Field(min_length=1),
    AfterValidator(_one_primary),
]


class MentorRef(Value):
    """Who a mentor is and how to reach them, copied so consumers need no lookup."""

    mentor_id: uuid.UUID = Field(description="Id of the mentor (pearls.mentor.registered).")
    name: Name = Field(description="Display name of the mentor (person or pearl city).")
    email: EmailStr = Field(description="E-mail address of the mentor.")
    language: LanguageCode = Field(description="Preferred language for e-mail to the mentor.")


class PersonRef(Value):
    """A coordinator-appointed person (juror) with how to reach them."""

    person_id: uuid.UUID = Field(description="Id of the person in the producing service.")
    name: Name = Field(description="Full name.")
    email: EmailStr = Field(description="E-mail address.")
    language: LanguageCode = Field(description="Preferred language for e-mail.")


class Milestone(Value):
    """A milestone of an action plan."""

    milestone_id: uuid.UUID = Field(description="Id of the milestone, stable across revisions.")
    title: Name = Field(description="Short title, in the plan's language.")
    due_date: date = Field(description="Date by which the milestone is due (ISO 8601).")
