#!/bin/sh
# apt-ensure.sh NAME PACKAGE...: install the Debian PACKAGEs that are missing, and nothing else.
# Idempotent: nothing is updated or installed when every package is present. Needs root.
# NAME (the calling script) prefixes every message. Used by tests/*/setup-host.sh.
set -eu

name="$1"
shift

if [ "$(id -u)" -ne 0 ]; then
    echo "$name: must run as root (apt-get install)" >&2
    exit 1
fi

missing=""
for pkg in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $pkg"
    fi
done

if [ -z "$missing" ]; then
    echo "$name: all packages present"
    exit 0
fi

echo "$name: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086  # word splitting of the package list is intended
apt-get install -y -qq --no-install-recommends $missing
