#!/usr/bin/env bash
# The main job: install mmapconf and run the whole suite on this kernel, writing every report
# format under reports/latest/. The known deviations of Linux (baselines/linux.yaml, each with
# its evidence) count as known; anything else that fails fails the job. Extra arguments go to
# `mmapconf run`.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install --quiet --disable-pip-version-check -e .
sh scripts/install-cc.sh
exec mmapconf run cases/ --format all --baseline baselines/linux.yaml "$@"
