"""Errors the CLI turns into one line on stderr and a documented exit code."""

from __future__ import annotations

# Exit codes scripts can rely on (also in deploy/ops/README.md).
OK = 0
PROBLEM = 1  # the command ran and found something wrong (check failed, nothing matched …)
UNREACHABLE = 2  # broker or database unreachable, invalid settings, bad usage


class OpsError(Exception):
    """A failure with the message to print and the exit code to end with."""

    def __init__(self, message: str, code: int = PROBLEM) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class Unreachable(OpsError):
    def __init__(self, message: str) -> None:
        super().__init__(message, UNREACHABLE)
