#!/usr/bin/env bash
# The self-tests, with everything they need installed first: the package with its test extras,
# a C compiler and the native executor's build, Chromium for the HTML report's browser test,
# qemu and one pinned kernel for the boot tests.
# Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install --quiet --disable-pip-version-check -e '.[test]'
sh scripts/install-cc.sh
sh scripts/install-browser.sh
sh scripts/vm-ci-setup.sh
exec python3 -m pytest tests -n 2 "$@"
