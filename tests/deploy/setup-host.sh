#!/bin/sh
# Install the Debian packages the deployment test tiers need on a Debian 12 host (CI or a
# developer machine). Idempotent: packages already present are left alone and nothing is
# updated when everything is installed. Needs root.
set -eu

PACKAGES="
systemd-container
mmdebstrap
qemu-system-x86
qemu-utils
openssh-client
iproute2
e2fsprogs
openssl
"

if [ "$(id -u)" -ne 0 ]; then
    echo "setup-host.sh: must run as root (apt-get install)" >&2
    exit 1
fi

missing=""
for pkg in $PACKAGES; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $pkg"
    fi
done

if [ -z "$missing" ]; then
    echo "setup-host.sh: all packages present"
    exit 0
fi

echo "setup-host.sh: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086  # word splitting of the package list is intended
apt-get install -y -qq --no-install-recommends $missing
