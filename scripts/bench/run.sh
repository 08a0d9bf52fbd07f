#!/usr/bin/env bash
# Benchmarks, printed as a table. Usage: run.sh PATH-TO-revenant [iterations] [rounds]
# Figures are ratios measured in the same run: absolute times drift on shared machines.
set -euo pipefail
BIN=${1:?usage: run.sh PATH-TO-revenant [iterations] [rounds]}
N=${2:-10000}
ROUNDS=${3:-5}
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=$(cd "$HERE/../.." && pwd)/build/bench
mkdir -p "$OUT"
cc -O2 -o "$OUT/execloop" "$HERE/execloop.c"

mean() { awk '{ s += $1; n++ } END { printf "%.4f", s / n }'; }

echo "== exec loop: fork+exec+wait of /bin/true, $N iterations x $ROUNDS rounds, alternating =="
: > "$OUT/none.txt"; : > "$OUT/traced.txt"; : > "$OUT/stats.txt"
for r in $(seq "$ROUNDS"); do
  "$OUT/execloop" "$N" >> "$OUT/none.txt"
  "$BIN" trace --stats > "$OUT/stats.$r.json" &
  tracer=$!
  sleep 1.5   # load + attach + /proc seed
  "$OUT/execloop" "$N" >> "$OUT/traced.txt"
  sleep 0.2
  kill -INT "$tracer"; wait "$tracer" || true
  cat "$OUT/stats.$r.json" >> "$OUT/stats.txt"
done
none=$(mean < "$OUT/none.txt")
traced=$(mean < "$OUT/traced.txt")
lost=$(python3 -c 'import json,sys; print(sum(json.loads(l)["ringbuf_full"] for l in open(sys.argv[1]) if l.strip()))' "$OUT/stats.txt")
read_=$(python3 -c 'import json,sys; print(sum(json.loads(l)["events_read"] for l in open(sys.argv[1]) if l.strip()))' "$OUT/stats.txt")
printf '%-34s %10s\n' "mean wall, nothing attached (s)" "$none"
printf '%-34s %10s\n' "mean wall, revenant attached (s)" "$traced"
printf '%-34s %10s\n' "slowdown" "$(awk -v a="$traced" -v b="$none" 'BEGIN { printf "%+.2f %%", (a / b - 1) * 100 }')"
printf '%-34s %10s\n' "events read by revenant" "$read_"
printf '%-34s %10s\n' "events lost (ring buffer full)" "$lost"
printf '%-34s %10s\n' "exec rate of this machine (exec/s)" "$(awk -v n="$N" -v t="$none" 'BEGIN { printf "%.0f", n / t }')"

echo
echo "== store: ingest and who-spawned on a synthetic store (${STORE_PROCESSES:=1000000} processes, chains of depth 6) =="
"$BIN" bench-store --db "$OUT/bench.db" --processes "$STORE_PROCESSES" | tee "$OUT/store.txt" | grep -v '^leaf-pid'
leaf=$(awk '/^leaf-pid/ { print $2 }' "$OUT/store.txt")
: > "$OUT/cli.txt"
for i in $(seq 21); do
  t0=$(date +%s%N)
  "$BIN" who-spawned "$leaf" --db "$OUT/bench.db" --json > /dev/null
  echo "$(( ($(date +%s%N) - t0) / 1000000 ))" >> "$OUT/cli.txt"
done
printf '%-34s %10s\n' "who-spawned CLI wall, p50 (ms)" "$(sort -n "$OUT/cli.txt" | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')"

echo
echo "== kill latency: fork → parent sees SIGKILL (${KILL_N:=1000} attempts each), marker bytes written by the victim =="
cc -O2 -o "$OUT/killlat" "$HERE/killlat.c"
printf 'rules:\n  - name: bench-victim\n    match: { exe: %s }\n    action: kill\n' "$OUT/killlat-victim" > "$OUT/kill-policy.yaml"
cp "$OUT/killlat" "$OUT/killlat-victim"
for mode in kernel userspace; do
  rm -f "$OUT/victim.marker" "$OUT/kill-$mode.db"*
  extra=""; [ "$mode" = userspace ] && extra="--bench-userspace-kill"
  "$BIN" run --db "$OUT/kill-$mode.db" --policy "$OUT/kill-policy.yaml" $extra 2> "$OUT/kill-$mode.log" &
  daemon=$!
  for i in $(seq 100); do grep -q "policy loaded" "$OUT/kill-$mode.log" && break; sleep 0.1; done
  if ! kill -0 "$daemon" 2>/dev/null; then echo "$mode: daemon did not start:"; cat "$OUT/kill-$mode.log"; continue; fi
  read -r n killed p50 p99 bytes < <("$OUT/killlat" "$KILL_N" "$OUT/killlat-victim" "$OUT/victim.marker")
  kill -TERM "$daemon"; wait "$daemon" || true
  printf '%-10s attempts %5s  killed %5s  p50 %7s ms  p99 %7s ms  marker bytes written %s\n' "$mode" "$n" "$killed" "$p50" "$p99" "$bytes"
done
