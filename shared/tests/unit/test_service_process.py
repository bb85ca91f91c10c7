"""What ``serve`` does to the service process before it serves: the garbage collector."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from pearls_shared.cli import GC_THRESHOLDS

# Run in a process of its own: freezing the collector here would change the test run.
_SERVE = textwrap.dedent(
    """
    import argparse, gc, json, uvicorn
    from fastapi import FastAPI
    from pearls_shared import cli
    from pearls_shared.settings import ServiceSettings

    def run(app, **options):  # instead of serving: what the server would start with
        print(json.dumps({"threshold": gc.get_threshold(), "frozen": gc.get_freeze_count(),
                          "app": type(app).__name__, "port": options["port"]}))

    uvicorn.run = run
    print(json.dumps({"default": gc.get_threshold()}))
    cli.serve("example", ServiceSettings(http_port=8123, log_json=False), lambda s: FastAPI(),
              argparse.Namespace(host=None, port=None))
    """
)


def test_serve_freezes_what_is_loaded_and_collects_the_young_generation_less_often() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _SERVE], capture_output=True, text=True, check=True, timeout=60
    )
    before, serving = (json.loads(line) for line in done.stdout.splitlines()[-2:])
    assert tuple(before["default"]) != GC_THRESHOLDS  # the point is the change
    assert tuple(serving["threshold"]) == GC_THRESHOLDS
    # The modules, the settings and the app: everything loaded is out of the scans.
    assert serving["frozen"] > 10_000
    assert serving["app"] == "FastAPI" and serving["port"] == 8123
