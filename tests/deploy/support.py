"""What the deployment checks share: the repository's paths, the pinned tools, the
environment variables the services know, and the services' settings classes."""

from __future__ import annotations

import importlib
import importlib.util
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from pydantic_settings import BaseSettings

from pearls_shared.privacy import ErasureSettings
from pearls_shared.settings import DeliverySettings, HttpSettings, KafkaSettings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
CHART = ROOT / "deploy" / "helm" / "pearls"
PRODUCTION_VALUES = CHART / "ci" / "production-values.yaml"
BIN = ROOT / ".cache" / "bin"
K8S_SCHEMAS = ROOT / ".cache" / "k8s-schemas"
KUBERNETES_VERSION = "1.33.0"
SERVICES = ("applications", "mentoring", "awards", "notifications")
# Variables every service reads, whatever its prefix (pearls_shared.settings).
COMMON_SETTINGS: tuple[type[BaseSettings], ...] = (
    KafkaSettings,
    DeliverySettings,
    HttpSettings,
    ErasureSettings,
)


def settings_class(service: str) -> type[BaseSettings]:
    cls: type[BaseSettings] = importlib.import_module(f"pearls_{service}.config").Settings
    return cls


def env_names(cls: type[BaseSettings]) -> set[str]:
    """The environment variables a pydantic-settings class reads (prefix + field name)."""
    prefix = cls.model_config.get("env_prefix", "") or ""
    names = set()
    for name, field in cls.model_fields.items():
        alias = field.validation_alias
        names.add(alias.upper() if isinstance(alias, str) else (prefix + name).upper())
    return names


def known_env(service: str) -> set[str]:
    """Every variable the service's settings (its own and the shared ones) know."""
    names = env_names(settings_class(service))
    for cls in COMMON_SETTINGS:
        names |= env_names(cls)
    return names


def unknown_env(service: str, names: set[str]) -> set[str]:
    return names - known_env(service)


@contextmanager
def environment(values: Mapping[str, str]) -> Iterator[None]:
    """The process environment with every Pearls and Kafka variable replaced by ``values``."""
    saved = dict(os.environ)
    try:
        for name in list(os.environ):
            if name.startswith(("PEARLS_", "KAFKA_")):
                del os.environ[name]
        os.environ.update(values)
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def load_settings(service: str, values: Mapping[str, str]) -> list[Any]:
    """The service's settings and the shared ones as the service would load them from
    ``values``; raises pydantic's ValidationError on a value they refuse."""
    with environment(values):
        return [settings_class(service)(), *(cls() for cls in COMMON_SETTINGS)]


def tool(name: str) -> Path:
    """A pinned tool from .cache/bin (deploy/tools.sh); fails, never skips, without it."""
    path = BIN / name
    if not os.access(path, os.X_OK):
        pytest.fail(
            f"{path} is missing: run `bash deploy/tools.sh` (make setup does) to install"
            f" helm, kubeconform and the Kubernetes schemas",
            pytrace=False,
        )
    return path


def check_jsonschema() -> list[str]:
    """check-jsonschema (a dev dependency) of this interpreter; fails without it."""
    if importlib.util.find_spec("check_jsonschema") is None:
        pytest.fail("check-jsonschema is missing: `uv sync` installs it (dev group)")
    return [sys.executable, "-m", "check_jsonschema"]


def run(
    args: Sequence[str | Path], *, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], input=stdin, capture_output=True, text=True, cwd=ROOT, check=False
    )
