#!/bin/sh
# Debian's Chromium and ChromeDriver for the HTML report's browser test
# (tests/reporting/test_reporting_browser.py drives /usr/bin/chromium headless over DevTools).
exec sh "$(dirname "$0")/apt-install.sh" install-browser chromium chromium-driver
