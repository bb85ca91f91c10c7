#!/usr/bin/env bash
# Builds the local images, from Debian's packages and the project's own files, for a
# machine that reaches package registries but no image registry:
#
#   pearls-local/debian:bookworm      debootstrap minbase + this machine's CA bundle (base.sh)
#   pearls-local/python:3.11-bookworm python:3.11-slim-bookworm's layout (python/)
#   pearls-local/kafka:4.1.1          apache/kafka's conventions, jars from Maven (kafka/)
#   pearls-local/postgres:15          postgres:15's conventions (postgres/)
#   pearls-local/mailpit:v1.33.1      Mailpit built with Go from the Go module proxy (mailpit/)
#
# Tags are those of images.env (what docker-compose.yml reads). Each image is rebuilt
# only when its inputs changed (Docker's layer cache; base.sh and the staged binaries
# keep stamps), so a second run takes seconds. Build times and sizes go to
# .cache/images/report.json (bench/results/images.md is written from it).
#
#   bash deploy/images/build.sh [base python kafka postgres mailpit]
set -euo pipefail
cd "$(dirname "$0")/../.."
here=deploy/images
work=$PWD/.cache/images
mkdir -p "$work"
# shellcheck source=deploy/images/images.env
source "$here/images.env"
BASE_IMAGE=${PEARLS_BASE_IMAGE:-pearls-local/debian:bookworm}
KAFKA_VERSION=${KAFKA_IMAGE##*:}
MAILPIT_VERSION=${MAILPIT_IMAGE##*:}
export DOCKER_BUILDKIT=0  # the engine's own builder: BuildKit would fetch its frontend image

report=$work/report.json
[[ -s $report ]] || echo '{}' >"$report"
record() { # name tag seconds
  local size
  size=$(docker image inspect -f '{{.Size}}' "$2")
  python3 - "$report" "$1" "$2" "$3" "$size" <<'PY'
import json, sys, time
path, name, tag, seconds, size = sys.argv[1:]
data = json.load(open(path))
data[name] = {"tag": tag, "build_s": round(float(seconds), 1), "size_bytes": int(size),
              "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
json.dump(data, open(path, "w"), indent=2, sort_keys=True)
PY
}

build() { # name tag context [docker build args...]
  local name=$1 tag=$2 context=$3 started=$SECONDS out
  shift 3
  out=$(docker build -q --build-arg "BASE=$BASE_IMAGE" -t "$tag" "$@" "$context" 2>&1) || {
    echo "$out" >&2
    echo "images: building $tag failed" >&2
    exit 1
  }
  record "$name" "$tag" $((SECONDS - started))
}

go_binary() { # module version output [version variable]
  local module=$1 version=$2 out=$3 ldflags="-s -w"
  [[ -n ${4:-} ]] && ldflags+=" -X $4=$version"
  [[ -x $out && $(cat "$out.version" 2>/dev/null) == "$module@$version" ]] && return
  command -v go >/dev/null 2>&1 || PATH=$PATH:/usr/local/go/bin
  command -v go >/dev/null 2>&1 || { echo "images: Go 1.24+ is needed to build $module" >&2; exit 1; }
  echo "images: building $module $version with Go (first time: a minute or two)"
  local src
  src=$(mktemp -d)
  printf 'module pearls.local/build\n\ngo 1.24\n' >"$src/go.mod"
  (cd "$src" && GOFLAGS="-mod=mod -modcacherw" go get "$module@$version" >/dev/null 2>&1 \
    && CGO_ENABLED=0 GOFLAGS="-mod=mod -modcacherw -buildvcs=false" \
       go build -trimpath -ldflags "$ldflags" -o "$out" "$module") || { rm -rf "$src"; exit 1; }
  rm -rf "$src"
  echo "$module@$version" >"$out.version"
}

want=("$@")
((${#want[@]})) || want=(base python kafka postgres mailpit)
for name in "${want[@]}"; do
  started=$SECONDS
  case $name in
    base)
      before=$(docker image inspect -f '{{.Id}}' "$BASE_IMAGE" 2>/dev/null || true)
      bash "$here/base.sh" "$BASE_IMAGE"
      # Recorded only when it was built (a skipped build says nothing of its time).
      if [[ $(docker image inspect -f '{{.Id}}' "$BASE_IMAGE") != "$before" ]]; then
        record base "$BASE_IMAGE" $((SECONDS - started))
      fi
      ;;
    python)
      build python "$PYTHON_IMAGE" "$here/python"
      ;;
    kafka)
      # The broker's jars and kafka-tools (the healthcheck's command), resolved once.
      libs=$work/kafka-$KAFKA_VERSION/libs
      if [[ $(cat "$libs/.pearls-complete" 2>/dev/null) != "$(sha256sum deploy/kafka/pom.xml)" ]]; then
        rm -rf "$libs"
        mvn -q -B -f deploy/kafka/pom.xml -Pimage dependency:copy-dependencies \
          -DincludeScope=runtime -DoutputDirectory="$libs" -Dkafka.version="$KAFKA_VERSION"
        sha256sum deploy/kafka/pom.xml >"$libs/.pearls-complete"
      fi
      context=$work/kafka-context
      rm -rf "$context" && mkdir -p "$context"
      cp -a "$here/kafka/." "$context/"
      cp -al "$libs" "$context/libs" && rm -f "$context/libs/.pearls-complete"
      build kafka "$KAFKA_IMAGE" "$context" --build-arg "KAFKA_VERSION=$KAFKA_VERSION"
      ;;
    postgres)
      build postgres "$POSTGRES_IMAGE" "$here/postgres"
      ;;
    mailpit)
      context=$work/mailpit-context
      go_binary github.com/axllent/mailpit "$MAILPIT_VERSION" "$work/mailpit-$MAILPIT_VERSION" \
        github.com/axllent/mailpit/config.Version
      rm -rf "$context" && mkdir -p "$context"
      cp "$here/mailpit/Dockerfile" "$context/"
      cp "$work/mailpit-$MAILPIT_VERSION" "$context/mailpit"
      mkdir -m 1777 "$context/tmp"
      build mailpit "$MAILPIT_IMAGE" "$context" --build-arg "MAILPIT_VERSION=$MAILPIT_VERSION"
      ;;
    *)
      echo "images: unknown image $name (base python kafka postgres mailpit)" >&2
      exit 2
      ;;
  esac
done
