#!/usr/bin/env bash
# The local base image, pearls-local/debian:bookworm: Debian 12 minbase from Debian's
# own packages (debootstrap), for machines that reach Debian's archive but no image
# registry. What the official debian:bookworm-slim gives, plus one thing it lacks: the
# build machine's own CA bundle, so that a build step behind a TLS-inspecting proxy
# (pip, uv) trusts what this machine trusts.
#
#   bash deploy/images/base.sh TAG
#
# Skipped when TAG exists with the same inputs (this script and the CA bundle), unless
# PEARLS_REBUILD_BASE=1.
set -euo pipefail
tag=${1:?usage: base.sh TAG}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
security=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
ca_bundle=${PEARLS_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}

inputs=$(cat "$0" "$ca_bundle" | sha256sum | cut -c1-16)
if [[ ${PEARLS_REBUILD_BASE:-0} != 1 && $(docker image inspect -f '{{index .Config.Labels "pearls.inputs"}}' "$tag" 2>/dev/null) == "$inputs" ]]; then
  exit 0
fi
if ! command -v debootstrap >/dev/null 2>&1; then
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "images: installing debootstrap with apt-get"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
  else
    echo "images: debootstrap is needed to build $tag (apt-get install debootstrap)" >&2
    exit 1
  fi
fi
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
echo "images: $tag from Debian bookworm (debootstrap, about a minute)"
debootstrap --variant=minbase --include=ca-certificates bookworm "$root" "$mirror" >"$root.log" 2>&1 \
  || { tail -30 "$root.log" >&2; rm -f "$root.log"; exit 1; }
rm -f "$root.log"
# Security and point-release updates, as the official images carry them.
rm -f "$root/etc/apt/sources.list"
cat >"$root/etc/apt/sources.list.d/debian.sources" <<SOURCES
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
# As in the official slim images: no documentation or translations, no recommends,
# no apt caches left behind by later layers.
cat >"$root/etc/dpkg/dpkg.cfg.d/pearls-slim" <<'DPKG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
DPKG
cat >"$root/etc/apt/apt.conf.d/pearls-slim" <<'APT'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Languages "none";
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/*.bin || true"; };
APT
chroot "$root" apt-get update -qq
chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get -qq -y upgrade >/dev/null
install -m 0644 "$ca_bundle" "$root/usr/local/share/ca-certificates/pearls-build-host.crt"
chroot "$root" update-ca-certificates >/dev/null 2>&1
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/* "$root"/usr/share/doc/* \
  "$root"/usr/share/man/* "$root"/usr/share/locale/* "$root"/var/log/*.log "$root"/tmp/*
tar --numeric-owner -C "$root" -c . | docker import \
  --change 'ENV LANG=C.UTF-8 PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["bash"]' \
  --change "LABEL pearls.inputs=$inputs org.opencontainers.image.title=pearls-local-debian" \
  - "$tag" >/dev/null
echo "images: $tag built"
