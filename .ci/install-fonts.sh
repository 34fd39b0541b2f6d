#!/usr/bin/env bash
# Installs the fonts that the OCR tests render text with (DejaVu Sans, found through fontconfig by
# libvips/Pango inside sharp), from Debian's packages, when they are missing. Idempotent: does
# nothing when `fc-list` already shows a DejaVu font.
set -euo pipefail

has_dejavu() {
  command -v fc-list >/dev/null 2>&1 && fc-list 2>/dev/null | grep -qi "dejavu"
}

if has_dejavu; then
  echo "install-fonts: DejaVu fonts present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "install-fonts: DejaVu fonts missing and not root (no sudo): install fontconfig and fonts-dejavu-core" >&2
    exit 1
  fi
fi

export DEBIAN_FRONTEND=noninteractive
packages=(fontconfig fonts-dejavu-core)
# Refresh the package lists only when apt does not know the packages yet (a fresh image).
if ! apt-cache show "${packages[@]}" >/dev/null 2>&1; then
  $SUDO apt-get update -qq
fi
$SUDO apt-get install -y -qq --no-install-recommends "${packages[@]}"
fc-cache -f >/dev/null 2>&1 || true

if ! has_dejavu; then
  echo "install-fonts: fonts-dejavu-core installed but fc-list shows no DejaVu font" >&2
  exit 1
fi
echo "install-fonts: installed ${packages[*]}"
