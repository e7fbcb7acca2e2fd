#!/bin/sh
# apt-get install PACKAGES in this (throw-away) stage, then copy every file the install created
# or changed into STAGED, so the final stage takes them with one COPY and never holds the build's
# CA bundle in any layer.
#   stage-runtime-packages.sh STAGED PACKAGE...
set -eu
staged=$1
shift
marker=/tmp/ymir-stage-marker
touch "$marker"
sleep 1  # ctime granularity: everything the install touches is strictly newer than the marker
apt-get update
DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@"
apt-get clean
rm -rf /var/lib/apt/lists/* /var/log/apt /var/log/dpkg.log /var/cache/debconf/*-old
mkdir -p "$staged"
# ctime, not mtime: dpkg gives extracted files the package's mtimes
find / -xdev \( -path /proc -o -path /sys -o -path /dev -o -path /tmp -o -path /build-inputs \
  -o -path /opt/ymir-build -o -path "$staged" -o -path /etc/apt/apt.conf.d/99ymir-build-ca \
  -o -path /etc/hostname -o -path /etc/hosts -o -path /etc/resolv.conf \) -prune \
  -o -cnewer "$marker" -print | sed -e 's|^/||' -e '/^$/d' > /tmp/ymir-staged.list
tar -C / --no-recursion -cf - -T /tmp/ymir-staged.list | tar -C "$staged" -xpf -
echo "staged $(wc -l < /tmp/ymir-staged.list) paths installed by: $*"
