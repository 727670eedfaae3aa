#!/usr/bin/env bash
# The self-tests, with everything they need installed first: the package with its test extras,
# and Chromium for the HTML report's browser test. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install --quiet --disable-pip-version-check -e '.[test]'
bash scripts/install-browser.sh
exec python3 -m pytest tests -n 2 "$@"
