"""The demo, played through the applications service's public HTTP API."""

from __future__ import annotations

from collections.abc import Callable, Sequence


async def play(
    base_url: str,
    *,
    coordinator_token: str,
    reviewer_tokens: Sequence[str],
    say: Callable[[str], None],
) -> None:
    raise NotImplementedError("written once the applications API is in place")
