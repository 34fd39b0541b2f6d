#!/usr/bin/env bash
# Builds a Node.js base image from Debian's packages, for machines that cannot pull public images:
# debootstrap's minimal Debian, then Debian's nodejs and npm, a `node` user (uid 1000, as in the
# official node images), and this host's CA bundle (the registries may be reached through a TLS
# proxy that only the host trusts). Usage: build-local-base.sh IMAGE [SUITE]; SUITE defaults to
# trixie, whose nodejs is 20.19. Needs root, debootstrap and a running Docker daemon.
set -euo pipefail

image=${1:?usage: build-local-base.sh IMAGE [SUITE]}
suite=${2:-trixie}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
ca_bundle=/etc/ssl/certs/ca-certificates.crt
docker=${DOCKER:-docker}

rootfs=$(mktemp -d /var/tmp/inferline-base.XXXXXX)
trap 'rm -rf "$rootfs"' EXIT

debootstrap --variant=minbase "$suite" "$rootfs" "$mirror"
cp /etc/resolv.conf "$rootfs/etc/resolv.conf"
chroot "$rootfs" apt-get update -qq
chroot "$rootfs" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm ca-certificates
chroot "$rootfs" apt-get clean
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs/etc/resolv.conf"
chroot "$rootfs" groupadd --gid 1000 node
chroot "$rootfs" useradd --uid 1000 --gid node --create-home --shell /bin/bash node
# After ca-certificates, which writes its own bundle: the host's may hold a proxy's CA besides.
cp "$ca_bundle" "$rootfs$ca_bundle"

tar -C "$rootfs" -c . | "$docker" import \
  --change 'ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt' \
  --change 'CMD ["node"]' \
  - "$image"
echo "build-local-base: $image ($(chroot "$rootfs" node --version) on Debian $suite)"
