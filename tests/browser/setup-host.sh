#!/bin/sh
# Install what the portal's browser tests drive: Debian's chromium (used by Playwright's Python
# API as the system browser; Playwright never downloads one), certutil (libnss3-tools) to trust
# the appliance CA in a throw-away NSS database, and fonts for legible screenshots.
# Idempotent: nothing is updated or installed when everything is present. Needs root.
set -eu

PACKAGES="
chromium
libnss3-tools
fonts-liberation2
fonts-dejavu-core
"

if [ "$(id -u)" -ne 0 ]; then
    echo "tests/browser/setup-host.sh: must run as root (apt-get install)" >&2
    exit 1
fi

missing=""
for pkg in $PACKAGES; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $pkg"
    fi
done

if [ -z "$missing" ]; then
    echo "tests/browser/setup-host.sh: all packages present"
    exit 0
fi

echo "tests/browser/setup-host.sh: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086  # word splitting of the package list is intended
apt-get install -y -qq --no-install-recommends $missing
