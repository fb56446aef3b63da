#!/bin/sh
# Install what the portal's browser tests drive: Debian's chromium (used by Playwright's Python
# API as the system browser; Playwright never downloads one), certutil (libnss3-tools) to trust
# the appliance CA in a throw-away NSS database, and fonts for legible screenshots.
# Idempotent: nothing is updated or installed when everything is present. Needs root.
set -eu

exec sh "$(dirname "$0")/../support/apt-ensure.sh" tests/browser/setup-host.sh \
    chromium \
    libnss3-tools \
    fonts-liberation2 \
    fonts-dejavu-core
