"""``pearls``: one command line for operators."""

from __future__ import annotations

import typer

app = typer.Typer(help="Operate a Pearls deployment.", no_args_is_help=True)


@app.callback()
def _root() -> None:
    """Operate a Pearls deployment."""


def main() -> None:
    app()
