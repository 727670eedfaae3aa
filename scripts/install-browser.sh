#!/bin/sh
# Install Debian's Chromium and ChromeDriver for the HTML report's browser test
# (tests/reporting/test_reporting_browser.py drives /usr/bin/chromium headless over DevTools).
# Idempotent: does nothing when both packages are already installed.
set -eu

PKGS="chromium chromium-driver"

missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
if [ -z "$missing" ]; then
    echo "install-browser: all present"
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    SUDO=sudo
else
    SUDO=
fi
echo "install-browser: installing$missing"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing
