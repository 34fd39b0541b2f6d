#!/usr/bin/env bash
# Installs promtool (Debian's `prometheus` package) when it is missing: the tests check both
# processes' /metrics with `promtool check metrics` and deploy/prometheus with `promtool check
# rules`, `promtool test rules` and `promtool check config`. Idempotent: does nothing when
# promtool is on the PATH. Installing the package starts no Prometheus here (no init system runs
# it in this container); nothing else of it is used.
set -euo pipefail

if command -v promtool >/dev/null 2>&1; then
  echo "install-promtool: $(promtool --version 2>&1 | head -n 1)"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "install-promtool: promtool missing and not root (no sudo): install Debian's prometheus package" >&2
    exit 1
  fi
fi

export DEBIAN_FRONTEND=noninteractive
# Refresh the package lists only when apt does not know the package yet (a fresh image).
if ! apt-cache show prometheus >/dev/null 2>&1; then
  $SUDO apt-get update -qq
fi
$SUDO apt-get install -y -qq --no-install-recommends prometheus

if ! command -v promtool >/dev/null 2>&1; then
  echo "install-promtool: prometheus installed but promtool is not on the PATH" >&2
  exit 1
fi
echo "install-promtool: installed $(promtool --version 2>&1 | head -n 1)"
