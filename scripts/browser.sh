#!/usr/bin/env bash
# Makes sure a Chromium for the browser tests is installed (Debian's `chromium` package), and
# prints its path. playwright-core drives it through `executablePath`; no browser is downloaded.
#   bash scripts/browser.sh ensure   # install if missing (apt-get; needs root or sudo)
#   bash scripts/browser.sh path     # print the path, or fail
set -euo pipefail

find_chromium() {
  local c
  for c in "${CHROMIUM_PATH:-}" chromium chromium-browser google-chrome-stable; do
    [ -n "$c" ] || continue
    if command -v "$c" >/dev/null 2>&1; then command -v "$c"; return 0; fi
  done
  return 1
}

case "${1:-ensure}" in
  path)
    find_chromium || { echo "no Chromium found: run \`bash scripts/browser.sh ensure\` (Debian: apt-get install chromium)" >&2; exit 1; }
    ;;
  ensure)
    if path=$(find_chromium); then echo "$path"; exit 0; fi
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then
      command -v sudo >/dev/null 2>&1 || { echo "Chromium is missing and installing it needs root: apt-get install chromium" >&2; exit 1; }
      sudo="sudo -n"
    fi
    command -v apt-get >/dev/null 2>&1 || { echo "Chromium is missing and this is not a Debian-like system: install Chromium and set CHROMIUM_PATH" >&2; exit 1; }
    echo "[browser] installing Debian's chromium package" >&2
    $sudo apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends chromium >&2
    find_chromium
    ;;
  *)
    echo "usage: $0 ensure|path" >&2
    exit 2
    ;;
esac
