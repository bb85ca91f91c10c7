"""Value types of the notifications domain."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Category(StrEnum):
    """Essential mail always goes out; the others follow the recipient's preference."""

    ESSENTIAL = "essential"  # decisions, deadlines, tasks
    PROGRESS = "progress"  # progress chatter: milestones reached, plans completed
    SESSIONS = "sessions"  # co-learning session invitations


OPTIONAL_CATEGORIES: tuple[Category, ...] = (Category.PROGRESS, Category.SESSIONS)


class Mode(StrEnum):
    """How a recipient wants a non-essential category."""

    IMMEDIATE = "immediate"
    DIGEST = "digest"
    OFF = "off"


@dataclass(frozen=True, slots=True)
class Recipient:
    email: str  # always lower case
    name: str
    language: str

    @classmethod
    def of(cls, email: str, name: str, language: str) -> Recipient:
        return cls(email=email.strip().lower(), name=name, language=language)


@dataclass(frozen=True, slots=True)
class Mail:
    """One e-mail to write: the unit of "exactly once"."""

    recipient: Recipient
    template: str
    category: Category
    context: dict[str, Any] = field(default_factory=dict)
