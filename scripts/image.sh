#!/usr/bin/env bash
# Builds the container image (packaging/Containerfile) with podman, pulling
# nothing: a static binary and the host's CA bundle on an empty base.
#
#   scripts/image.sh [IMAGE]    default localhost/sentinel-go:latest
#
# IMAGE_SOURCE sets the org.opencontainers.image.source label (default: the
# git remote "origin", without credentials). Fails when the image is over
# MAX_IMAGE_MB (25).
set -euo pipefail
cd "$(dirname "$0")/.."
IMAGE=${1:-localhost/sentinel-go:latest}
MAX_IMAGE_MB=${MAX_IMAGE_MB:-25}
CA_BUNDLE=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}

command -v podman >/dev/null || { echo "image: podman is not installed (Debian: apt-get install podman runc)" >&2; exit 1; }
[ -s "$CA_BUNDLE" ] || { echo "image: no CA bundle at $CA_BUNDLE (Debian: apt-get install ca-certificates; or set CA_BUNDLE)" >&2; exit 1; }

ctx=bin/image
rm -rf "$ctx"; mkdir -p "$ctx"
# Static (no cgo, no libc in the image), time zones embedded (TZ works
# without /usr/share/zoneinfo), paths and symbols stripped.
CGO_ENABLED=0 go build -trimpath -tags timetzdata -ldflags='-s -w' -o "$ctx/sentinel" ./cmd/sentinel
cp "$CA_BUNDLE" "$ctx/ca-certificates.crt"
cp packaging/Containerfile "$ctx/Containerfile"

revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
version=$(git describe --tags --always --dirty 2>/dev/null || echo unknown)
source=${IMAGE_SOURCE:-$(git remote get-url origin 2>/dev/null | sed -E 's#//[^/@]*@#//#' || true)}
# --format docker keeps the HEALTHCHECK (the OCI image config has no field
# for it); both runtimes and every registry take this format.
# --no-cache: the layer cache would keep the labels of an earlier build
# (their build args are not part of its key); the build only copies files.
# --layers=false: no intermediate images left behind.
previous=$(podman image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)
podman build --quiet --pull=never --no-cache --layers=false --format docker \
  --build-arg VERSION="$version" --build-arg REVISION="$revision" \
  --build-arg CREATED="$(date -u +%Y-%m-%dT%H:%M:%SZ)" --build-arg SOURCE="${source:-unknown}" \
  -t "$IMAGE" -f "$ctx/Containerfile" "$ctx" >/dev/null

# The previous build of IMAGE, untagged now (kept if a container uses it).
if [ -n "$previous" ] && [ "$previous" != "$(podman image inspect --format '{{.Id}}' "$IMAGE")" ]; then
  podman rmi "$previous" >/dev/null 2>&1 || true
fi
bytes=$(podman image inspect --format '{{.Size}}' "$IMAGE")
mb=$(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1e6 }')
echo "image: built $IMAGE ($version, $mb MB)"
if [ "$bytes" -gt $((MAX_IMAGE_MB * 1000000)) ]; then
  echo "image: $IMAGE is $mb MB, over the $MAX_IMAGE_MB MB limit" >&2
  exit 1
fi
