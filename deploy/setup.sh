#!/usr/bin/env bash
# Installs what Pearls needs on a fresh machine: uv and the Python packages
# (locked), then Apache Kafka's broker jars from Maven Central. Java 17+,
# Maven, a Python with the CVE-2024-6923 fix, the PostgreSQL server binaries and Chromium with its WebDriver (the
# showcase's browser test) must be on the machine; on Debian or Ubuntu as root,
# missing ones are installed with apt-get.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v java >/dev/null 2>&1 || need_apt+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || need_apt+=(maven)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 \
  || need_apt+=(postgresql)
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need_apt+=(chromium-driver)
# The project runs on an interpreter with the CVE-2024-6923 fix (deploy/python.sh).
bash deploy/python.sh >/dev/null 2>&1 || need_apt+=(python3)
if ((${#need_apt[@]})); then
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing ${need_apt[*]} with apt-get"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}"
  else
    echo "setup: missing ${need_apt[*]}: install Java 17+, Maven, PostgreSQL server binaries," >&2
    echo "       Chromium and its driver (chromedriver)" >&2
    echo "       (or set KAFKA_BOOTSTRAP_SERVERS and PEARLS_TEST_POSTGRES_DSN, or run Docker)" >&2
    exit 1
  fi
fi

if ! command -v uv >/dev/null 2>&1 && [[ ! -x "$HOME/.local/bin/uv" ]]; then
  echo "setup: installing uv"
  python3 -m pip install --quiet --user 'uv>=0.9,<1' 2>/dev/null \
    || python3 -m pip install --quiet --user --break-system-packages 'uv>=0.9,<1'
fi
UV=$(command -v uv 2>/dev/null || echo "$HOME/.local/bin/uv")
PYTHON=$(bash deploy/python.sh) || {
  echo "setup: no Python 3.11+ with the CVE-2024-6923 fix (3.11.10+, 3.12.5+ or a patched" >&2
  echo "       distribution build); install one or point PEARLS_PYTHON at it" >&2
  exit 1
}
"$UV" sync --locked --quiet --python "$PYTHON"
"$UV" run --locked pearls-infra fetch >/dev/null  # prints where the jars are; errors go to stderr
# helm, kubeconform and the Kubernetes schemas for the deployment checks (tests/deploy).
# Without them `make run` still works; the deployment checks then fail and say why.
bash deploy/tools.sh || echo "setup: the deployment checks' tools are missing (deploy/tools.sh" \
  "failed); tests/deploy will fail until it succeeds" >&2
# The official AsyncAPI parser validates docs/asyncapi.json in `make test` (deploy/asyncapi);
# installed again only when its lock file changed (a copy in node_modules marks the install).
if ! command -v npm >/dev/null 2>&1 && [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1; then
  echo "setup: installing nodejs npm with apt-get"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm
fi
if command -v npm >/dev/null 2>&1; then
  lock=deploy/asyncapi/package-lock.json stamp=deploy/asyncapi/node_modules/.pearls-installed-lock
  if ! cmp -s "$lock" "$stamp"; then
    npm ci --prefix deploy/asyncapi --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null
    cp "$lock" "$stamp"
  fi
else
  echo "setup: npm not found: install Node.js 18+ and npm (the AsyncAPI validation needs them)" >&2
fi
