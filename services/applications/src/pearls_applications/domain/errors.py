"""Refusals raised by the domain: each names the field at fault and the rule broken.

The HTTP layer turns them into FastAPI-style ``detail`` entries
(``loc``/``msg``/``type``), so a client reads one error shape for pydantic's
checks and for the business rules alike.
"""

from __future__ import annotations


class DomainError(Exception):
    """A command broke a rule. ``status`` is the HTTP status it maps to."""

    status = 422

    def __init__(self, loc: tuple[str | int, ...], rule: str, message: str) -> None:
        super().__init__(message)
        self.loc = loc
        self.rule = rule
        self.message = message

    def detail(self) -> list[dict[str, object]]:
        return [{"loc": list(self.loc), "msg": self.message, "type": self.rule}]


class Invalid(DomainError):
    """The input itself breaks a rule of the call (eligibility, themes, rubric)."""

    status = 422


class Conflict(DomainError):
    """The input is fine but the state forbids it (window closed, places taken …)."""

    status = 409


class NotFound(DomainError):
    status = 404


class Forbidden(DomainError):
    status = 403
