#!/usr/bin/env bash
# Installs the tools that check the deployment files (tests/deploy), pinned, into
# .cache/bin, and the Kubernetes JSON schemas into .cache/k8s-schemas:
#   helm         helm.sh/helm/v3, built with the machine's Go from the Go module proxy
#   kubeconform  github.com/yannh/kubeconform, the same way
#   schemas      the standalone-strict JSON schemas of Kubernetes, as bundled by the
#                PyPI package kubernetes-validate (kubeconform would download them
#                from GitHub, which is not reachable from every machine)
# Idempotent: a tool already at its pinned version is left alone.
# On a cold Go cache the two builds take about 3.5 minutes on 2 cores (helm most of
# it); afterwards the script only checks the version stamps.
set -euo pipefail
cd "$(dirname "$0")/.."

HELM_VERSION=v3.21.4
KUBECONFORM_VERSION=v0.7.0
KUBERNETES_VALIDATE_VERSION=1.37.0
# The Kubernetes version whose schemas the charts are checked against.
KUBERNETES_SCHEMA_VERSION=1.33.0

BIN=$PWD/.cache/bin
SCHEMAS=$PWD/.cache/k8s-schemas
mkdir -p "$BIN"

stamp() { cat "$BIN/.$1.version" 2>/dev/null || true; }

go_tool() { # name module version
  local name=$1 module=$2 version=$3
  if [[ -x $BIN/$name && $(stamp "$name") == "$version" ]]; then
    return
  fi
  if ! command -v go >/dev/null 2>&1 && [[ -x /usr/local/go/bin/go ]]; then
    PATH=$PATH:/usr/local/go/bin
  fi
  if ! command -v go >/dev/null 2>&1; then
    echo "tools: Go is needed to build $name (install golang, 1.24 or newer)" >&2
    exit 1
  fi
  echo "tools: building $name $version with $(go version | cut -d' ' -f3) (first time: minutes)"
  local started=$SECONDS
  GOBIN=$BIN GOFLAGS="-modcacherw -buildvcs=false" CGO_ENABLED=0 go install "$module@$version"
  echo "$version" >"$BIN/.$name.version"
  echo "tools: $name $version built in $((SECONDS - started)) s"
}

go_tool helm helm.sh/helm/v3/cmd/helm "$HELM_VERSION"
go_tool kubeconform github.com/yannh/kubeconform/cmd/kubeconform "$KUBECONFORM_VERSION"

want="kubernetes-validate $KUBERNETES_VALIDATE_VERSION v$KUBERNETES_SCHEMA_VERSION"
if [[ $(cat "$SCHEMAS/.version" 2>/dev/null || true) != "$want" ]]; then
  echo "tools: Kubernetes v$KUBERNETES_SCHEMA_VERSION JSON schemas from $want"
  UV=$(command -v uv 2>/dev/null || echo "$HOME/.local/bin/uv")
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  "$UV" pip install --quiet --no-deps --target "$tmp" \
    --python "$(bash deploy/python.sh)" "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION"
  src=$tmp/kubernetes_validate/kubernetes-json-schema/v$KUBERNETES_SCHEMA_VERSION-local-strict
  if [[ ! -d $src ]]; then
    echo "tools: $src is missing from kubernetes-validate $KUBERNETES_VALIDATE_VERSION" >&2
    exit 1
  fi
  # Each schema has an https $id and refers to the shared definitions as
  # "/api/_definitions.json#..."; kubeconform loads only local files here, so drop
  # the $id and make the references relative to the schema's own file.
  rm -rf "$SCHEMAS"
  dest=$SCHEMAS/v$KUBERNETES_SCHEMA_VERSION-standalone-strict
  mkdir -p "$dest"
  "$(bash deploy/python.sh)" - "$src" "$dest" <<'PY'
import json, pathlib, sys
src, dest = map(pathlib.Path, sys.argv[1:])
for path in sorted(src.glob("*.json")):
    text = path.read_text().replace('"/api/_definitions.json#', '"_definitions.json#')
    schema = json.loads(text)
    schema.pop("$id", None)
    (dest / path.name).write_text(json.dumps(schema))
PY
  echo "$want" >"$SCHEMAS/.version"
fi
# Quiet when nothing was installed: `make run` starts with this script's output.
if ((SECONDS > 2)); then
  echo "tools: helm $HELM_VERSION, kubeconform $KUBECONFORM_VERSION, Kubernetes schemas" \
    "v$KUBERNETES_SCHEMA_VERSION in .cache"
fi
