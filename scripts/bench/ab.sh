#!/usr/bin/env bash
# Two builds of revenant compared on the same work: both daemons trace the same exec loop at
# once, each in a cgroup of its own, so the VM's drift (±15 % between runs here) hits both.
# Prints, per round, each daemon's CPU per process and its BPF programs' run time per exec,
# then B/A as a geometric mean. The daemon started first pays more (its programs run first
# on cold cache lines: ~30 % in BPF run time), so the order alternates: use an even ROUNDS.
# Usage: ab.sh PATH-TO-revenant-A PATH-TO-revenant-B     Env: N (execs per round), ROUNDS,
# RATE (execs/s for N seconds instead of a loop as fast as 2 spawners go), POLICY (a policy
# file instead of one audit rule by script that matches nothing).
set -euo pipefail
A=${1:?usage: ab.sh REVENANT-A REVENANT-B}
B=${2:?usage: ab.sh REVENANT-A REVENANT-B}
N=${N:-20000}
ROUNDS=${ROUNDS:-6}
RATE=${RATE:-}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
OUT=$ROOT/build/bench-ab
mkdir -p "$OUT"
cc -O2 -o "$OUT/spawner" "$HERE/spawner.c"
CG2=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
if [ -z "$CG2" ] || ! mkdir -p "$CG2/revenant-ab" 2>/dev/null; then
  echo "ab: needs a writable cgroup2 mount (per-daemon CPU time, exited threads included)" >&2; exit 2
fi
CG=$CG2/revenant-ab
if [ -n "${POLICY:-}" ]; then
  cp "$POLICY" "$OUT/audit.yaml"
else
  printf 'rules:\n  - name: audit-never\n    match: { script: /opt/never/worker.py }\n    action: audit\n' > "$OUT/audit.yaml"
fi
PA= PB=
cleanup() {
  local rc=$?
  for p in $PA $PB; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  sysctl -qw kernel.bpf_stats_enabled=0 || true
  sleep 0.3; rmdir "$CG"/* "$CG" 2>/dev/null || true
  exit "$rc"
}
trap cleanup EXIT
sysctl -qw kernel.bpf_stats_enabled=1

# The BPF programs a daemon holds, by the prog ids in its descriptors' fdinfo.
bpf_ns() {
  local ids
  ids=$(for f in /proc/"$1"/fdinfo/*; do awk '/^prog_id:/ { print $2 }' "$f" 2>/dev/null; done | sort -u | tr '\n' ' ')
  bpftool prog show -j | python3 -c '
import json, sys
ids = {int(x) for x in sys.argv[1].split()}
print(sum(p.get("run_time_ns", 0) for p in json.load(sys.stdin) if p["id"] in ids))' "$ids"
}
cpu_us() { awk '$1 == "usage_usec" { print $2 }' "$CG/$1/cpu.stat"; }
STARTED=
start() {   # $1 binary, $2 name; sets STARTED to the daemon's PID
  mkdir -p "$CG/$2"; rm -f "$OUT/$2".db* "$OUT/$2.jsonl"
  sh -c 'echo $$ > "$0/cgroup.procs" && exec "$@"' "$CG/$2" "$1" run --db "$OUT/$2.db" --audit-log "$OUT/$2.jsonl" \
    --policy "$OUT/audit.yaml" > /dev/null 2> "$OUT/$2.log" &
  STARTED=$!
  for _ in $(seq 200); do grep -q "policy loaded" "$OUT/$2.log" && return 0; sleep 0.05; done
  echo "ab: $1 did not start:" >&2; cat "$OUT/$2.log" >&2; exit 1
}

: > "$OUT/rounds.txt"
for r in $(seq "$ROUNDS"); do
  if [ $((r % 2)) = 1 ]; then
    start "$A" a; PA=$STARTED; start "$B" b; PB=$STARTED
  else
    start "$B" b; PB=$STARTED; start "$A" a; PA=$STARTED
  fi
  sync; sleep 1
  ba0=$(bpf_ns "$PA"); bb0=$(bpf_ns "$PB"); ca0=$(cpu_us a); cb0=$(cpu_us b)
  if [ -n "$RATE" ]; then n=$("$OUT/spawner" rate "$RATE" "$N"); else "$OUT/spawner" loop "$N" 2 > /dev/null; n=$N; fi
  sleep 2.5   # each daemon drains and writes every 2 s: all of this round's work is counted
  ba1=$(bpf_ns "$PA"); bb1=$(bpf_ns "$PB"); ca1=$(cpu_us a); cb1=$(cpu_us b)
  kill -TERM "$PA" "$PB"; wait "$PA" "$PB" || true; PA= PB=
  awk -v r="$r" -v n="$n" -v ba=$((ba1 - ba0)) -v bb=$((bb1 - bb0)) -v ca=$((ca1 - ca0)) -v cb=$((cb1 - cb0)) 'BEGIN {
    printf "round %d (%s started first): A daemon %.2f µs/process, BPF %.2f µs/exec | B daemon %.2f, BPF %.2f | B/A daemon %.3f, BPF %.3f\n",
      r, r % 2 ? "A" : "B", ca / n, ba / n / 1e3, cb / n, bb / n / 1e3, cb / ca, bb / ba }' | tee -a "$OUT/rounds.txt"
done
awk -F'B/A daemon ' '{ split($2, v, ", BPF "); d += log(v[1]); b += log(v[2]); k++ }
  END { printf "B/A over %d rounds (geometric mean): daemon %.3f, BPF %.3f\n", k, exp(d / k), exp(b / k) }' "$OUT/rounds.txt"
