"""Coordinators' tokens rotate through PEARLS_AWARDS_COORDINATORS_FILE without a restart."""

from __future__ import annotations

import json
import os

from pearls_awards.bootstrap import coordinator_tokens
from pearls_awards.config import Settings
from pearls_awards.service_layer.auth import Authenticator, Principal


def write(path, entries):
    tmp = path.with_suffix(".tmp")
    tmp.write_text(entries if isinstance(entries, str) else json.dumps(entries))
    os.replace(tmp, path)


async def test_a_coordinator_added_to_the_file_is_accepted_and_a_removed_one_refused(tmp_path):
    path = tmp_path / "coordinators.json"
    write(path, [{"id": "anna", "token": "anna-token-0123456789"}])
    settings = Settings(
        coordinators=[{"id": "env", "token": "env-token-0123456789"}], coordinators_file=path
    )
    # Coordinators are recognised from the book alone; the pool is for other roles.
    files = coordinator_tokens(settings)
    auth = Authenticator(None, files.book)  # type: ignore[arg-type]
    assert await auth.identify("anna-token-0123456789") == Principal("coordinator", "anna")
    write(path, [{"id": "birgit", "token": "birgit-token-0123456789"}])
    assert await auth.identify("birgit-token-0123456789") == Principal("coordinator", "birgit")
    assert await auth.identify("env-token-0123456789") == Principal("coordinator", "env")
    write(path, '[{"id": "birgit"')  # malformed: the last good tokens stay
    assert await auth.identify("birgit-token-0123456789") == Principal("coordinator", "birgit")
    write(path, [])  # removed: refused (a token no coordinator holds)
    assert files.book.identify("birgit-token-0123456789") is None
    assert files.book.identify("env-token-0123456789") == Principal("coordinator", "env")
