#!/bin/sh
# A C compiler and the static C library: `mmapconf repro` writes C files that build with
# `cc -O2 -static FILE` alone, and tests/repro compiles one per catalogue item. Idempotent.
exec sh "$(dirname "$0")/apt-install.sh" install-static-libc gcc libc6-dev
