"""The ``pearls-applications`` command documents itself."""

from __future__ import annotations

import pytest

from pearls_applications.__main__ import main


def test_help_names_the_settings(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert "--port" in out and "PEARLS_APPLICATIONS_" in out
