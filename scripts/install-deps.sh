#!/usr/bin/env bash
# Installs, from Debian's packages, what revenant's build and tests need.
# Idempotent: does nothing when every package is already installed.
set -euo pipefail

PACKAGES=(
  libbpf-dev libelf-dev zlib1g-dev bpftool   # BPF build: headers, skeleton generator
  libsqlite3-dev                              # the store
  cron supervisor                             # real respawn mechanisms for end-to-end tests
  hyperfine auditd forkstat                   # benchmarks: what operators would use instead
  qemu-system-x86 busybox-static cpio         # deny tier test: Debian kernel with BPF LSM under qemu
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing packages: ${missing[*]}; run as root: sudo $0" >&2
  exit 1
fi

# Debian starts services on install when it can (auditd would audit every test); revenant's
# tests and benchmarks start their own.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod 0755 /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
