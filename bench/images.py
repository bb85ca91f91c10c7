"""Image sizes and build times: the local images (deploy/images) and the four service
images (deploy/Dockerfile on the local Python image), written to
bench/results/images.{json,md}.

    uv run python bench/images.py          # sizes, and a build of every image without
                                           # Docker's cache (a cold build, about 5 min)
    uv run python bench/images.py --warm   # the same with the cache (what a rebuild costs)

A cold run builds the base image (debootstrap) again too; a warm one reports the time
deploy/images/build.sh recorded when it last built it (.cache/images/report.json). Sizes are what
`docker image inspect` reports (uncompressed, every layer), beside what the runtime
stage adds above its base, so that the service's own share stands out.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
REPORT = ROOT / ".cache" / "images" / "report.json"
SERVICES = ("applications", "mentoring", "awards", "notifications")
MB = 1_000_000


def images_env() -> dict[str, str]:
    found = {}
    for line in (ROOT / "deploy" / "images" / "images.env").read_text().splitlines():
        name, sep, value = line.partition("=")
        if sep and not line.startswith("#"):
            found[name] = value
    return found


def size(tag: str) -> int:
    out = subprocess.run(
        ["docker", "image", "inspect", "-f", "{{.Size}}", tag],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(out.stdout)


def timed_build(args: list[str], cold: bool) -> float:
    started = time.monotonic()
    subprocess.run(
        ["docker", "build", "-q", *(["--no-cache"] if cold else []), *args],
        cwd=ROOT,
        env={**os.environ, "DOCKER_BUILDKIT": "0"},
        capture_output=True,
        text=True,
        check=True,
    )
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--warm", action="store_true", help="build with Docker's cache")
    args = parser.parse_args()
    cold = not args.warm
    rebuild = {"PEARLS_REBUILD_BASE": "1"} if cold else {}
    subprocess.run(
        ["bash", "deploy/images/build.sh"], cwd=ROOT, env={**os.environ, **rebuild}, check=True
    )
    env = images_env()
    recorded = json.loads(REPORT.read_text()) if REPORT.exists() else {}
    base = recorded.get("base", {}).get("tag", "pearls-local/debian:bookworm")
    rows = [
        {
            "image": base,
            "what": "Debian 12 minbase (debootstrap) + this machine's CA bundle",
            "size_mb": size(base) / MB,
            "build_s": recorded.get("base", {}).get("build_s"),
            "build": "cold" if cold else "recorded by build.sh",
        }
    ]
    # The contexts build.sh uses (it stages the Kafka jars and the Mailpit binary).
    local = (
        ("PYTHON_IMAGE", "deploy/images/python", "Python 3.11 (Debian)", ""),
        ("KAFKA_IMAGE", ".cache/images/kafka-context", "Kafka, Debian's JRE 17", "KAFKA_VERSION"),
        ("POSTGRES_IMAGE", "deploy/images/postgres", "PostgreSQL 15 (Debian)", ""),
        ("MAILPIT_IMAGE", ".cache/images/mailpit-context", "Mailpit, static", "MAILPIT_VERSION"),
    )
    for var, context, what, version in local:
        tag = env[var]
        extra = ["--build-arg", f"{version}={tag.rpartition(':')[2]}"] if version else []
        seconds = timed_build(["--build-arg", f"BASE={base}", *extra, "-t", tag, context], cold)
        rows.append(
            {
                "image": tag,
                "what": what,
                "size_mb": size(tag) / MB,
                "build_s": seconds,
                "build": "cold" if cold else "warm",
            }
        )
    python = env["PYTHON_IMAGE"]
    for service in SERVICES:
        tag = f"pearls-{service}:local"
        seconds = timed_build(
            [
                "-f", "deploy/Dockerfile",
                "--build-arg", f"SERVICE={service}",
                "--build-arg", f"PYTHON_IMAGE={python}",
                "-t", tag, ".",
            ],
            cold,
        )  # fmt: skip
        rows.append(
            {
                "image": tag,
                "what": f"the {service} service on {python}",
                "size_mb": size(tag) / MB,
                "own_mb": (size(tag) - size(python)) / MB,
                "build_s": seconds,
                "build": "cold" if cold else "warm",
            }
        )
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    (RESULTS / "images.json").write_text(
        json.dumps({"at": stamp, "rows": rows}, indent=2) + "\n", encoding="utf-8"
    )
    lines = [
        f"# Image sizes and build times ({stamp}, {os.cpu_count()} cores)",
        "",
        "| image | what | size (MB) | above its base (MB) | build (s) |",
        "|---|---|---:|---:|---:|",
    ]
    for r in rows:
        own = f"{r['own_mb']:.0f}" if "own_mb" in r else ""
        took = f"{r['build_s']:.0f} ({r['build']})" if r["build_s"] is not None else "-"
        lines.append(f"| `{r['image']}` | {r['what']} | {r['size_mb']:.0f} | {own} | {took} |")
    (RESULTS / "images.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
