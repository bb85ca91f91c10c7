"""Refusals a service's domain raises: each names the field at fault and the rule broken.

Pure Python (domains import it without pulling in a web framework). The HTTP
plumbing (``pearls_shared.http.install_refusals``) turns them into
FastAPI-style ``detail`` entries (``loc``/``msg``/``type``), so a client reads
one error shape for request validation and for business rules alike.
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
    """The input itself breaks a rule."""

    status = 422


class Conflict(DomainError):
    """The input is fine but the current state forbids it."""

    status = 409


class NotFound(DomainError):
    status = 404


class Forbidden(DomainError):
    status = 403


class Unauthorized(DomainError):
    status = 401
