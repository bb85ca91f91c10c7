#!/usr/bin/env bash
# A Docker engine and the Compose plugin for the container tests (make test) and for
# operators trying Pearls in containers on this machine.
#
#   bash deploy/docker.sh install   docker.io from Debian when no engine is installed,
#                                   and the Compose v2+ CLI plugin (see below)
#   bash deploy/docker.sh start     start dockerd when no engine answers (as root); an
#                                   engine that already answers is used and left alone
#   bash deploy/docker.sh stop      stop the dockerd that `start` started, and nothing else
#   bash deploy/docker.sh run CMD…  start, build the local images, run CMD, stop
#
# The Compose plugin: `docker compose` when it already works; otherwise Compose v5,
# built with the machine's Go from the Go module proxy (github.com/docker/compose/v5,
# a few minutes the first time, cached in .cache/bin) and linked into
# ~/.docker/cli-plugins. The engine started here binds published ports without an
# address of their own to 127.0.0.1 (--ip), keeps its log in .cache/run/dockerd.log
# and its pid in .cache/run/dockerd.pid: that file is how `stop` knows it is ours.
set -euo pipefail
cd "$(dirname "$0")/.."
COMPOSE_VERSION=v5.6.0
RUN=$PWD/.cache/run
BIN=$PWD/.cache/bin
PIDFILE=$RUN/dockerd.pid

say() { echo "docker: $*" >&2; }
answers() { timeout 10 docker info >/dev/null 2>&1; }
as_root_apt() { # packages...
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    say "installing $* with apt-get"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
  else
    say "missing $*: install Docker (engine and CLI) and run again"
    exit 1
  fi
}

install_engine() {
  if ! command -v docker >/dev/null 2>&1 || { ! answers && ! command -v dockerd >/dev/null 2>&1; }; then
    as_root_apt docker.io
  fi
}

install_compose() {
  if docker compose version >/dev/null 2>&1; then
    return
  fi
  local plugin=$BIN/docker-compose
  if [[ ! -x $plugin || $(cat "$plugin.version" 2>/dev/null) != "$COMPOSE_VERSION" ]]; then
    command -v go >/dev/null 2>&1 || PATH=$PATH:/usr/local/go/bin
    if ! command -v go >/dev/null 2>&1; then
      say "Go is needed to build the Compose plugin; falling back to Debian's docker-compose"
      as_root_apt docker-compose
      return
    fi
    say "building the Compose plugin $COMPOSE_VERSION with Go (first time: a few minutes)"
    local src started=$SECONDS
    src=$(mktemp -d)
    printf 'module pearls.local/compose\n\ngo 1.24\n' >"$src/go.mod"
    mkdir -p "$BIN"
    # `go install` refuses the module (its go.mod has replace directives): build it in a
    # module of our own instead.
    (cd "$src" && GOFLAGS="-mod=mod -modcacherw" go get "github.com/docker/compose/v5/cmd@$COMPOSE_VERSION" \
      && CGO_ENABLED=0 GOFLAGS="-mod=mod -modcacherw -buildvcs=false" go build -trimpath \
        -ldflags "-s -w -X github.com/docker/compose/v5/internal.Version=$COMPOSE_VERSION" \
        -o "$plugin" github.com/docker/compose/v5/cmd) >"$src/build.log" 2>&1 \
      || { tail -20 "$src/build.log" >&2; rm -rf "$src"; say "building the Compose plugin failed"; exit 1; }
    rm -rf "$src"
    echo "$COMPOSE_VERSION" >"$plugin.version"
    say "Compose plugin built in $((SECONDS - started)) s"
  fi
  mkdir -p "$HOME/.docker/cli-plugins"
  ln -sf "$plugin" "$HOME/.docker/cli-plugins/docker-compose"
}

start() {
  if answers; then
    return  # someone's engine: use it, never stop it
  fi
  install_engine
  if [[ $(id -u) != 0 ]]; then
    say "no Docker engine answers, and starting dockerd needs root: start it (e.g." \
      "\`sudo systemctl start docker\`) or run as root"
    exit 1
  fi
  mkdir -p "$RUN"
  say "starting dockerd (log in $RUN/dockerd.log)"
  # setsid: the engine outlives this script; `stop` ends it.
  setsid dockerd --ip=127.0.0.1 --pidfile "$PIDFILE" >"$RUN/dockerd.log" 2>&1 </dev/null &
  for _ in $(seq 60); do
    answers && return
    sleep 0.5
  done
  tail -20 "$RUN/dockerd.log" >&2
  say "dockerd did not answer within 30 s"
  exit 1
}

stop() {
  [[ -s $PIDFILE ]] || return 0
  local pid
  pid=$(cat "$PIDFILE")
  if kill -0 "$pid" 2>/dev/null && grep -q dockerd "/proc/$pid/cmdline" 2>/dev/null; then
    say "stopping the dockerd started for this run"
    kill -TERM "$pid"
    for _ in $(seq 60); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.5
    done
  fi
  rm -f "$PIDFILE"
}

# Containers a test run left behind (a run cut short): the test projects of
# tests/containers and testcontainers' own, never anything else.
leftovers() {
  local ids
  ids=$( {
    docker ps -aq --filter label=org.testcontainers=true
    docker ps -a --format '{{.ID}} {{.Label "com.docker.compose.project"}}' \
      | awk '$2 ~ /^pearls-(e2e|faults)-[0-9a-f]+$/ {print $1}'
  } 2>/dev/null | sort -u)
  # shellcheck disable=SC2086  # one id per word
  [[ -z $ids ]] || docker rm -f -v $ids >/dev/null 2>&1 || true
  local kind
  for kind in network volume; do
    ids=$(docker "$kind" ls --format '{{.Name}}' 2>/dev/null \
      | grep -E '^pearls-(e2e|faults)-[0-9a-f]+_' || true)
    # shellcheck disable=SC2086
    [[ -z $ids ]] || docker "$kind" rm $ids >/dev/null 2>&1 || true
  done
}

case ${1:-} in
  install) install_engine; install_compose ;;
  start) start; install_compose ;;
  stop) stop ;;
  run)
    shift
    owned=0
    answers || owned=1
    start
    # However CMD ends: the test containers removed, and the engine stopped if it is ours.
    if ((owned)); then trap 'leftovers; stop' EXIT; else trap leftovers EXIT; fi
    install_compose
    bash deploy/images/build.sh
    "$@"
    ;;
  *) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
