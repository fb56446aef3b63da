#!/bin/bash
# Build the Debian 12 test host images from Debian packages only, cached by a hash of this
# script: a rootfs directory for systemd-nspawn and a qcow2 disk + kernel + initrd for QEMU.
#
#   tests/deploy/build-image.sh            # prints the image directory on stdout
#
# Environment:
#   SEMAFORE_TEST_CACHE   cache root (default: $XDG_CACHE_HOME/semafore-test, else
#                         /var/cache/semafore-test); never inside the repository
#   SEMAFORE_TEST_MIRROR  Debian mirror (default: http://deb.debian.org/debian)
#
# The image holds every Debian package the roles need, so nothing is fetched inside a test host
# (the hosts have no network). A throw-away SSH key for the "ansible" admin user is generated
# per image and stored beside it; it grants access to test hosts only.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
cache_root="${SEMAFORE_TEST_CACHE:-${XDG_CACHE_HOME:+$XDG_CACHE_HOME/semafore-test}}"
cache_root="${cache_root:-/var/cache/semafore-test}"
mirror="${SEMAFORE_TEST_MIRROR:-http://deb.debian.org/debian}"
security_mirror="${SEMAFORE_TEST_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"
key="$(sha256sum "$here/build-image.sh" | cut -c1-16)"
out="$cache_root/image-$key"

if [ -f "$out/.complete" ]; then
    echo "$out"
    exit 0
fi

# Packages the appliance roles install (roles/semafore_base defaults: semafore_base_packages)
# plus what a managed host needs (SSH, Python for Ansible, sudo) and the VM's kernel.
packages=(
    linux-image-amd64 initramfs-tools systemd-sysv udev dbus openssh-server
    python3 python3-apt python3-venv sudo iproute2 ca-certificates
    nftables systemd-timesyncd openssl sqlite3 acl
)

work="$(mktemp -d "$cache_root.build.XXXXXX" 2>/dev/null || { mkdir -p "$cache_root"; mktemp -d "$cache_root/build.XXXXXX"; })"
trap 'rm -rf "$work"' EXIT
mkdir -p "$cache_root"

ssh-keygen -q -t ed25519 -N '' -C semafore-test -f "$work/id_ed25519"

include="$(IFS=,; echo "${packages[*]}")"
# shellcheck disable=SC2016  # hooks are expanded by mmdebstrap's shell, $1 is the rootfs
mmdebstrap --variant=minbase --include="$include" \
    --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --essential-hook='mkdir -p "$1/etc/initramfs-tools"; printf "MODULES=list\n" > "$1/etc/initramfs-tools/conf.d/semafore-test.conf" 2>/dev/null || { mkdir -p "$1/etc/initramfs-tools/conf.d"; printf "MODULES=list\n" > "$1/etc/initramfs-tools/conf.d/semafore-test.conf"; }; printf "virtio_pci\nvirtio_blk\nvirtio_net\next4\n" > "$1/etc/initramfs-tools/modules"' \
    --customize-hook='echo semafore-test > "$1/etc/hostname"' \
    --customize-hook='printf "127.0.0.1 localhost\n127.0.1.1 semafore-test\n::1 localhost\n" > "$1/etc/hosts"' \
    --customize-hook='chroot "$1" useradd --create-home --shell /bin/bash --groups sudo ansible' \
    --customize-hook='echo "ansible ALL=(ALL) NOPASSWD:ALL" > "$1/etc/sudoers.d/ansible"; chmod 0440 "$1/etc/sudoers.d/ansible"' \
    --customize-hook="install -d -m 0700 -o 1000 -g 1000 \"\$1/home/ansible/.ssh\"; install -m 0600 -o 1000 -g 1000 '$work/id_ed25519.pub' \"\$1/home/ansible/.ssh/authorized_keys\"" \
    --customize-hook='printf "PasswordAuthentication no\nUseDNS no\n" > "$1/etc/ssh/sshd_config.d/semafore-test.conf"' \
    --customize-hook='for u in apt-daily.timer apt-daily-upgrade.timer fstrim.timer e2scrub_reap.service e2scrub_all.timer man-db.timer; do ln -sf /dev/null "$1/etc/systemd/system/$u"; done' \
    --customize-hook='rm -f "$1"/etc/ssh/ssh_host_*; chroot "$1" ssh-keygen -A' \
    --customize-hook='printf "[Match]\nName=en* eth*\n\n[Network]\nDHCP=yes\n" > "$1/etc/systemd/network/80-dhcp.network"; chroot "$1" systemctl enable systemd-networkd.service' \
    --customize-hook='printf "/dev/vda / ext4 defaults,errors=remount-ro 0 1\n" > "$1/etc/fstab"' \
    --customize-hook='chroot "$1" systemctl enable serial-getty@ttyS0.service || true' \
    --customize-hook='rm -f "$1/etc/machine-id"; touch "$1/etc/machine-id"' \
    bookworm "$work/rootfs" \
    "deb $mirror bookworm main" \
    "deb $mirror bookworm-updates main" \
    "deb $security_mirror bookworm-security main"

# Direct kernel boot for QEMU: kernel and initrd copied out of the rootfs.
cp "$(readlink -f "$work/rootfs/vmlinuz")" "$work/vmlinuz"
cp "$(readlink -f "$work/rootfs/initrd.img")" "$work/initrd.img"

# VM disk: an ext4 image made straight from the rootfs (no loop device), then qcow2.
truncate -s 4G "$work/disk.raw"
mkfs.ext4 -q -L root -d "$work/rootfs" "$work/disk.raw"
qemu-img convert -O qcow2 "$work/disk.raw" "$work/disk.qcow2"
rm -f "$work/disk.raw"

touch "$work/.complete"
rm -rf "$out"
mv "$work" "$out"
trap - EXIT
echo "$out"
