#!/bin/sh
# apt-install.sh NAME PKG...: install the Debian packages among PKG that are missing; NAME
# prefixes the messages. Idempotent. Where nothing can be installed (no apt-get, not root and
# no sudo) it says what is missing and exits 0: the tests that need those packages then skip
# with their reason.
set -eu
name=$1
shift
missing=""
for p in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
if [ -z "$missing" ]; then
    echo "$name: all present"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "$name: no apt-get here; install by hand:$missing" >&2
    exit 0
fi
if [ "$(id -u)" = 0 ]; then
    SUDO=
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
else
    echo "$name: not root and no sudo; install by hand:$missing" >&2
    exit 0
fi
echo "$name: installing$missing"
$SUDO apt-get update -qq
# --no-install-recommends: qemu's and chromium's recommends pull in stacks we never use.
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
