#!/bin/sh
# Install the Debian packages the deployment test tiers need on a Debian 12 host (CI or a
# developer machine). Idempotent: packages already present are left alone and nothing is
# updated when everything is installed. Needs root.
set -eu

exec sh "$(dirname "$0")/../support/apt-ensure.sh" setup-host.sh \
    systemd-container \
    mmdebstrap \
    qemu-system-x86 \
    qemu-utils \
    openssh-client \
    iproute2 \
    e2fsprogs \
    openssl
