#!/bin/sh
# The C compiler the native executor is built with (runner/engine/native/executor.c), with the
# static C library (`mmapconf repro` writes C that builds with `cc -O2 -static FILE` alone;
# tests/repro compiles one per catalogue item), then the executor's build, cached by source hash
# (python -m runner.engine.native.build). Idempotent.
set -eu
cd "$(dirname "$0")/.."
if ! command -v cc >/dev/null 2>&1 || [ ! -e "$(cc -print-file-name=libc.a)" ]; then
    sh scripts/apt-install.sh install-cc gcc libc6-dev
fi
python3 -m runner.engine.native.build >/dev/null && echo "install-cc: native executor built"
