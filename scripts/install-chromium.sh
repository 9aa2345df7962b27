#!/usr/bin/env bash
# Installs Debian's Chromium (headless browser for the HTML report test). Idempotent.
# Usage: scripts/install-chromium.sh            (prints the browser path)
# As root it uses apt-get; as an ordinary user, sudo when it needs no password; otherwise it says in
# one line what to install and exits 0 (the browser test is then skipped, except under CI=true).
set -euo pipefail
BROWSER=${CHROMIUM:-$(command -v chromium || echo /usr/bin/chromium)}
if [ -x "$BROWSER" ]; then echo "$BROWSER"; exit 0; fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
  else
    echo "chromium not found and no root: install Debian's chromium (apt-get install chromium) or set CHROMIUM=/path/to/chromium; the report's browser test is skipped until then" >&2
    exit 0
  fi
fi
echo "installing Debian's chromium (apt-get)..." >&2
export DEBIAN_FRONTEND=noninteractive
if ! $SUDO apt-get install -y --no-install-recommends chromium >&2; then
  $SUDO apt-get update >&2
  $SUDO apt-get install -y --no-install-recommends chromium >&2
fi
"$BROWSER" --version >&2
echo "$BROWSER"
