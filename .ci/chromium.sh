#!/usr/bin/env bash
# Install headless Chromium and its WebDriver for the web chat's browser test (tests/web/test_web_browser.py):
#
#   .ci/chromium.sh
#
# Debian's `chromium` and `chromium-driver` packages (needs root); idempotent: nothing is installed when both
# are already there. Messages go to stderr.
set -euo pipefail

log() { echo "chromium.sh: $*" >&2; }

if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
    log "$(chromium --version 2>/dev/null | head -1) and chromedriver already installed"
    exit 0
fi
if [[ "$(id -u)" -ne 0 ]]; then
    log "chromium or chromedriver missing and not root: run 'sudo apt-get install -y chromium chromium-driver'"
    exit 1
fi
log "installing chromium and chromium-driver"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
apt-get install -y -qq --no-install-recommends chromium chromium-driver >&2
log "$(chromium --version 2>/dev/null | head -1) installed"
