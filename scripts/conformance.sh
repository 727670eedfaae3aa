#!/usr/bin/env bash
# The main job: install mmapconf and run the whole suite on this kernel, writing the reports
# under reports/latest/. Extra arguments go to `mmapconf run`.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install --quiet --disable-pip-version-check -e .
exec mmapconf run cases/ "$@"
