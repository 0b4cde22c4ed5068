#!/bin/sh
# Installs what the tests need from Debian: real container builds (buildah, busybox-static,
# docker-registry, git), diagrams (graphviz) and the status page in a browser (chromium).
# Idempotent and quiet; never fails the run: without these packages the real-build tests skip
# themselves, so this prints why and exits 0.
set -u

# fonts-liberation: chromium only recommends it, and the status-page screenshots need text to render.
PACKAGES="buildah busybox-static docker-registry git graphviz chromium fonts-liberation"

missing=""
for pkg in $PACKAGES; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
    missing="$missing $pkg"
  fi
done

if [ -z "$missing" ]; then
  echo "ci-install: $PACKAGES already installed"
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "ci-install: apt-get is not available; missing:$missing; real-build tests will be skipped"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
  else
    echo "ci-install: not root and no passwordless sudo; missing:$missing; real-build tests will be skipped"
    exit 0
  fi
else
  SUDO=""
fi

export DEBIAN_FRONTEND=noninteractive
# Only now is the package index worth refreshing. Recommends (crun, fuse-overlayfs, netavark, nftables)
# are not needed for chroot isolation.
if ! $SUDO apt-get update -qq >/dev/null 2>&1; then
  echo "ci-install: apt-get update failed; trying the install with the existing package index"
fi
# shellcheck disable=SC2086 # the package list is meant to split into words
if $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null 2>&1; then
  echo "ci-install: installed$missing"
else
  echo "ci-install: apt-get install failed for:$missing; real-build tests will be skipped"
fi
exit 0
