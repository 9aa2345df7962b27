#!/usr/bin/env bash
# Installs Debian's Chromium (headless browser for the HTML report test). Idempotent.
# Usage: scripts/install-chromium.sh            (prints the browser path)
set -euo pipefail
BROWSER=${CHROMIUM:-/usr/bin/chromium}
if [ -x "$BROWSER" ]; then echo "$BROWSER"; exit 0; fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "installing Debian's chromium (apt-get)..." >&2
export DEBIAN_FRONTEND=noninteractive
if ! $SUDO apt-get install -y --no-install-recommends chromium >&2; then
  $SUDO apt-get update >&2
  $SUDO apt-get install -y --no-install-recommends chromium >&2
fi
"$BROWSER" --version >&2
echo "$BROWSER"
