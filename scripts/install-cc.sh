#!/bin/sh
# The C compiler the native executor is built with (runner/engine/native/executor.c), then the
# build itself, cached by source hash (python -m runner.engine.native.build). Idempotent.
set -eu
cd "$(dirname "$0")/.."
command -v cc >/dev/null 2>&1 || sh scripts/apt-install.sh install-cc gcc libc6-dev
python3 -m runner.engine.native.build >/dev/null && echo "install-cc: native executor built"
