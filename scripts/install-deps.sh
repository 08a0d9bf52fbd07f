#!/usr/bin/env bash
# Installs, from Debian's packages, what one tier of revenant's work needs:
#   build  compile the BPF objects and the Swift package (make build, make check)
#   test   build + the real respawn mechanisms and the deny-tier kernel (make test)
#   bench  build + the tools revenant is measured against (make bench)
# Idempotent: does nothing when every package of the tier is already installed.
set -euo pipefail

tier=${1:-build}
BUILD=(libbpf-dev libelf-dev zlib1g-dev bpftool libsqlite3-dev)
TEST=(cron supervisor podman runc ansible-core # real respawn mechanisms and what writes their config
      tmux screen gunicorn                     # supervisors and sessions no configuration file names
      qemu-system-x86 busybox-static cpio      # deny tier: Debian's kernel with BPF LSM under qemu
      prometheus rsyslog                       # the engines metrics and the audit stream plug into
      chromium fonts-dejavu-core)              # renders the timeline picture
# From PyPI (test tier): an OCSF validator that is not ours (the OCSF schemas as JSON Schema,
# checked by jsonschema).
PIP_TEST=("ocsf-json-schema==1.2.0" "jsonschema>=4.18")
BENCH=(hyperfine auditd forkstat libbpf-tools) # what operators would use instead (execsnoop)

case "$tier" in
  build) PACKAGES=("${BUILD[@]}") ;;
  test)  PACKAGES=("${BUILD[@]}" "${TEST[@]}") ;;
  bench) PACKAGES=("${BUILD[@]}" "${BENCH[@]}") ;;
  *) echo "install-deps: unknown tier '$tier' (expected build, test or bench)" >&2; exit 2 ;;
esac

if [ "$tier" = test ] && ! python3 -c 'import ocsf_json_schema, jsonschema' 2>/dev/null; then
  echo "install-deps: installing from PyPI: ${PIP_TEST[*]}"
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore "${PIP_TEST[@]}"
fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing packages for '$tier': ${missing[*]}; run as root: sudo $0 $tier" >&2
  exit 1
fi

# Services packaged with the test and bench tools (cron, auditd…) must not start on install:
# the tests and benchmarks start their own. Only while apt runs, and only if no policy exists.
if [ "$tier" != build ] && [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod 0755 /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi

echo "install-deps: installing for '$tier': ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
