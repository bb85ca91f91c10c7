"""What every benchmark shares: throwaway infrastructure, percentiles, the machine's load."""

from __future__ import annotations

import contextlib
import os
import platform
import tempfile
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from pearls_localinfra.kafka import KafkaCluster
from pearls_localinfra.pgserver import PostgresServer
from pearls_localinfra.postgres import PostgresCluster


@contextlib.contextmanager
def infrastructure() -> Iterator[tuple[str, PostgresServer]]:
    """Kafka and PostgreSQL: KAFKA_BOOTSTRAP_SERVERS and PEARLS_TEST_POSTGRES_DSN if set,
    else throwaway ones from the local launchers (pearls-infra), as the services get."""
    with contextlib.ExitStack() as stack:
        bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
        if not bootstrap:
            kafka = KafkaCluster(nodes=1, workdir=tempfile.mkdtemp(prefix="bench-kafka-"))
            kafka.start()
            stack.callback(kafka.stop)
            bootstrap = kafka.bootstrap_servers
        dsn = os.environ.get("PEARLS_TEST_POSTGRES_DSN")
        if not dsn:
            cluster = PostgresCluster(tempfile.mkdtemp(prefix="bench-pg-"))
            cluster.start()
            stack.callback(cluster.stop)
            dsn = cluster.superuser_dsn
        server = PostgresServer(dsn, source="bench")
        stack.callback(server.close)
        yield bootstrap, server


def percentile(values: Sequence[float], p: float) -> float | None:
    """The p-th percentile (0-100), nearest rank; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def latency_summary(seconds: Sequence[float]) -> dict[str, Any]:
    """p50/p95/p99/max in milliseconds."""
    out: dict[str, Any] = {"count": len(seconds)}
    for name, p in (("p50_ms", 50), ("p95_ms", 95), ("p99_ms", 99), ("max_ms", 100)):
        v = percentile(seconds, p)
        out[name] = None if v is None else round(v * 1000, 2)
    return out


def machine() -> dict[str, Any]:
    """Where and when: CPU count, load averages, the time (UTC)."""
    load = os.getloadavg()
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "loadavg_1_5_15": [round(x, 2) for x in load],
    }


class Stopwatch:
    def __init__(self) -> None:
        self.started = time.perf_counter()

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started
