"""Each service's OpenAPI document, built from its FastAPI app, for docs/openapi/.

The app is built exactly as ``main`` builds it (``create_app(Settings)``) but
from the settings' defaults, never from the environment, and nothing is
started: no database, no broker. The output is JSON with sorted keys, so the
files change only when a route or a model does.

The shared library never imports a service's code (import-linter's contract);
this tool is the one place that loads the services, by name at run time
(``pearls_<service>.bootstrap.create_app`` and ``pearls_<service>.config.Settings``),
the same convention every service follows.
"""

from __future__ import annotations

import functools
import importlib
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, cast

from pydantic_settings import BaseSettings

from pearls_shared.events.registry import EVENT_TYPES
from pearls_shared.settings import HttpSettings, KafkaSettings


def services() -> list[str]:
    """The Pearls services, in the contract's order (every service produces events)."""
    return list(dict.fromkeys(model.producer for model in EVENT_TYPES.values()))


def service_settings_class(service: str) -> type[BaseSettings]:
    """The service's settings class, ``pearls_<service>.config.Settings``."""
    module = importlib.import_module(f"pearls_{service}.config")
    return cast(type[BaseSettings], module.Settings)


def openapi_document(service: str) -> dict[str, Any]:
    """The OpenAPI document of one service's HTTP API, without starting anything."""
    module = importlib.import_module(f"pearls_{service}.bootstrap")
    create_app = cast(Callable[..., Any], module.create_app)
    settings = service_settings_class(service).model_construct()  # defaults, not the environment
    app = create_app(
        settings, kafka=KafkaSettings.model_construct(), limits=HttpSettings.model_construct()
    )
    return cast(dict[str, Any], app.openapi())


def render_openapi(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


@functools.cache
def rendered_openapi(service: str) -> str:
    """The service's document as written to disk (built once per process: apps are code)."""
    return render_openapi(openapi_document(service))


def openapi_files(directory: Path, names: Iterable[str] | None = None) -> dict[Path, str]:
    """``<directory>/<service>.json`` for every service, rendered."""
    return {
        directory / f"{service}.json": rendered_openapi(service)
        for service in (services() if names is None else names)
    }
