#!/usr/bin/env bash
# A storm of configuration changes: N unit files created, then removed, in a watched unit
# directory, by one writer. Prints how long the daemon took to record them all (from the
# storm's start), its CPU, and the store's and audit log's growth per change.
#   scripts/bench/config-storm.sh BIN [N]     (root; the files are named rvstorm-*.service)
set -euo pipefail
bin=${1:?revenant binary}; n=${2:-20000}
dir=/etc/systemd/system; port=19466
work=$(mktemp -d /var/tmp/rvstorm.XXXXXX)
trap 'pkill -INT -f "revenant run --db $work/s.db" || true; rm -f $dir/rvstorm-*.service; sleep 1; rm -rf "$work"' EXIT
"$bin" run --db "$work/s.db" --audit-log "$work/a.jsonl" --metrics "$port" >"$work/log" 2>&1 &
for _ in $(seq 100); do grep -q "seeded from /proc" "$work/log" 2>/dev/null && break; sleep 0.1; done
metric() { curl -s "127.0.0.1:$port/metrics" | awk -v m="$1" 'index($0, m) == 1 { print $2 }'; }
size() { du -cb "$work"/s.db* | tail -1 | cut -f1; }
store0=$(size); audit0=$(stat -c %s "$work/a.jsonl"); cpu0=$(metric revenant_process_cpu_seconds)
start=$(date +%s.%N)
python3 - "$n" "$dir" <<'PY'
import os, sys
n, d = int(sys.argv[1]), sys.argv[2]
for i in range(n):
    with open(f"{d}/rvstorm-{i}.service", "w") as f: f.write("[Service]\nExecStart=/bin/true\n")
for i in range(n): os.unlink(f"{d}/rvstorm-{i}.service")
PY
wrote=$(date +%s.%N)
until [ "$(metric 'revenant_config_changes_total{kind="deleted"}')" = "$n" ]; do sleep 0.2; done
done_at=$(date +%s.%N)
changes=$(curl -s "127.0.0.1:$port/metrics" | awk '/^revenant_config_changes_total/ { s += $2 } END { print s }')
cpu1=$(metric revenant_process_cpu_seconds)
pkill -INT -f "revenant run --db $work/s.db"; sleep 2
lost=$(sqlite3 "$work/s.db" "select coalesce(sum(lost), 0) from trace_gap where kind = 'config-changes-lost'")
python3 - <<PY
s, w, d = $start, $wrote, $done_at
ch = $changes
print(f"{ch} changes ({$n} files created and removed) written in {w - s:.1f} s; all recorded {d - s:.1f} s after the start "
      f"({ch / (d - s):.0f} changes/s); daemon CPU {$cpu1 - $cpu0:.1f} s ({($cpu1 - $cpu0) / ch * 1e6:.0f} us a change); "
      f"store +{($(size) - $store0) / ch:.0f} B, audit log +{($(stat -c %s "$work/a.jsonl") - $audit0) / ch:.0f} B a change; lost {$lost}")
PY
