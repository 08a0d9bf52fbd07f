#!/usr/bin/env bash
# revenant against what operators would use instead (auditd's execve rule, forkstat on the proc
# connector, libbpf-tools' execsnoop: the minimal eBPF exec tracer), measured side by side in one run: every figure is a ratio or a count from this
# run, because absolute times drift on shared machines. Prints one table and writes it to
# docs/benchmarks-generated.md (DOCS=no to skip); hand-measured figures live in
# docs/benchmarks.md, which this never writes. Usage: run.sh PATH-TO-revenant (bench-store beside it)
# Sizes (env): N ROUNDS RATES RATE_SECS CPU_ROUNDS STORM_SECS KILL_N PKILL_N STORE_PROCESSES TIMELINE_INSTANCES RSS_N
set -euo pipefail
BIN=${1:?usage: run.sh PATH-TO-revenant}
BENCH_STORE=$(dirname "$BIN")/bench-store
N=${N:-20000}                     # exec-loop iterations per run (2 parallel spawners)
ROUNDS=${ROUNDS:-5}               # runs per configuration, alternating, order rotated per round
RATES=${RATES:-"100 400 1600"}    # fixed exec rates for the CPU figures
RATE_SECS=${RATE_SECS:-20}
CPU_ROUNDS=${CPU_ROUNDS:-3}       # revenant and auditd alternate at each rate: drift hits both
STORM_SECS=${STORM_SECS:-10}
KILL_N=${KILL_N:-1000}
PKILL_N=${PKILL_N:-200}
STORE_PROCESSES=${STORE_PROCESSES:-1000000}
TIMELINE_INSTANCES=${TIMELINE_INSTANCES:-10000}   # instances of one program in that store, for timeline
RSS_N=${RSS_N:-100000}
DOCS=${DOCS:-yes}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
OUT=$ROOT/build/bench
mkdir -p "$OUT"
rm -f "$OUT"/*.db* "$OUT"/*.log
cc -O2 -o "$OUT/spawner" "$HERE/spawner.c"
cc -O2 -o "$OUT/killlat" "$HERE/killlat.c"
for t in auditd auditctl forkstat execsnoop python3; do
  command -v "$t" >/dev/null || { echo "bench: $t is missing: run scripts/install-deps.sh bench" >&2; exit 2; }
done

ROWS=$OUT/rows.md
: > "$ROWS"
row() { printf '| %s | %s | %s |\n' "$1" "$2" "$3" | tee -a "$ROWS"; }
note() { echo "  $*" >&2; }
mean() { awk '{ s += $1; n++ } END { printf "%.4f", s / n }'; }
median() { sort -g | awk '{ v[NR] = $1 } END { printf "%.4f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%+.1f %%", (a / b - 1) * 100 }'; }
HZ=$(getconf CLK_TCK)
# CPU time in µs. The contenders each run in a cgroup of their own, whose cpu.stat counts
# every thread, exited ones too; /proc's clock ticks were ±10 ms, ±20 % of a 20 s window at
# 100 exec/s. Without a writable cgroup2 mount this falls back to ticks and says so.
CG2=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
CGDIR=
if [ -n "$CG2" ] && mkdir -p "$CG2/revenant-bench" 2>/dev/null && [ -r "$CG2/revenant-bench/cpu.stat" ]; then
  CGDIR=$CG2/revenant-bench
  CPU_SRC="cgroup cpu.stat"
else
  CPU_SRC="user+sys clock ticks from /proc (no writable cgroup2 mount: ±10 ms)"
  echo "bench: no writable cgroup2 mount: CPU figures use clock ticks (±10 ms)" >&2
fi
in_cg() {   # $1 cgroup name, then the command: exec keeps the PID
  local d=$CGDIR/$1; shift
  if [ -z "$CGDIR" ]; then exec "$@"; fi
  mkdir -p "$d"
  exec sh -c 'echo $$ > "$0/cgroup.procs" && exec "$@"' "$d" "$@"
}
cpu_us() {   # $1 cgroup name, $2 PID (the fallback)
  if [ -n "$CGDIR" ]; then awk '$1 == "usage_usec" { print $2 }' "$CGDIR/$1/cpu.stat"
  else awk -v hz="$HZ" '{ printf "%d\n", ($14 + $15) * 1e6 / hz }' "/proc/$2/stat"; fi
}
# A kernel thread (kauditd) cannot be moved: its own run time in ns, one thread.
kthread_us() { awk '{ printf "%d\n", $1 / 1000 }' "/proc/$1/schedstat"; }
# Run time of revenant's BPF programs (kernel.bpf_stats_enabled), in ns; `execsnoop`: its own.
bpf_ns() {
  bpftool prog show -j | python3 -c '
import json, sys
names = {"handle_fork", "handle_fork_all", "handle_exec", "handle_exit", "deny_exec", "capture_execve", "capture_execveat"}
if sys.argv[1:] == ["execsnoop"]:
    names = {"tracepoint__syscalls__sys_enter_execve", "tracepoint__syscalls__sys_exit_execve"}
print(sum(p.get("run_time_ns", 0) for p in json.load(sys.stdin) if p.get("name") in names))' "$@"
}
# execsnoop reads the syscall tracepoints through tracefs.
mountpoint -q /sys/kernel/tracing || mount -t tracefs tracefs /sys/kernel/tracing

# --- the contenders --------------------------------------------------------------------------
DAEMON=
start_revenant() {   # $1 policy file (or ""), $2 tag, then extra daemon flags
  local extra=("${@:3}")
  [ -n "$1" ] && extra+=(--policy "$1")
  (in_cg revenant "$BIN" run --db "$OUT/$2.db" --audit-log "$OUT/$2.audit.jsonl" "${extra[@]}" 2> "$OUT/$2.log") &
  DAEMON=$!
  for _ in $(seq 200); do grep -q "policy loaded\|no policy" "$OUT/$2.log" && return 0; sleep 0.05; done
  echo "bench: revenant did not start:" >&2; cat "$OUT/$2.log" >&2; exit 1
}
stop_revenant() { kill -TERM "$DAEMON"; wait "$DAEMON" || true; DAEMON=; }
AUDITD=
start_auditd() {
  auditctl -D >/dev/null
  (in_cg auditd auditd -n) &   # foreground; writes /var/log/audit/audit.log as configured by the package
  AUDITD=$!
  for _ in $(seq 100); do auditctl -s | grep -q "pid $AUDITD" && break; sleep 0.05; done
  auditctl -a always,exit -F arch=b64 -S execve -k revenant-bench >/dev/null
}
stop_auditd() {
  auditctl -D >/dev/null
  kill -TERM "$AUDITD"
  for _ in $(seq 50); do kill -0 "$AUDITD" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$AUDITD" 2>/dev/null || true
  wait "$AUDITD" || true
  AUDITD=
}
FORKSTAT=
start_forkstat() { forkstat -e fork,exec,exit > /dev/null 2>&1 & FORKSTAT=$!; sleep 0.5; }
stop_forkstat() { kill -INT "$FORKSTAT" 2>/dev/null || true; kill -TERM "$FORKSTAT" 2>/dev/null || true; wait "$FORKSTAT" || true; FORKSTAT=; }
EXECSNOOP=
start_execsnoop() {
  (in_cg execsnoop execsnoop > /dev/null 2>&1) & EXECSNOOP=$!
  for _ in $(seq 100); do bpftool prog show 2>/dev/null | grep -q sys_enter_execve && return 0; sleep 0.05; done
  echo "bench: execsnoop did not attach" >&2; exit 1
}
stop_execsnoop() { kill -INT "$EXECSNOOP" 2>/dev/null || true; wait "$EXECSNOOP" || true; EXECSNOOP=; }
cleanup() {
  local rc=$?
  if [ -n "$EXECSNOOP" ]; then kill -TERM "$EXECSNOOP" 2>/dev/null || true; fi
  if [ -n "$DAEMON" ]; then kill -TERM "$DAEMON" 2>/dev/null || true; fi
  if [ -n "$AUDITD" ]; then auditctl -D >/dev/null 2>&1 || true; kill -KILL "$AUDITD" 2>/dev/null || true; fi
  if [ -n "$FORKSTAT" ]; then kill -TERM "$FORKSTAT" 2>/dev/null || true; fi
  sysctl -qw kernel.bpf_stats_enabled=0 || true
  if [ -n "$CGDIR" ]; then sleep 0.3; rmdir "$CGDIR"/* "$CGDIR" 2>/dev/null || true; fi
  exit "$rc"
}
trap cleanup EXIT

printf 'rules:\n  - name: audit-never\n    match: { script: /opt/never/worker.py }\n    action: audit\n' > "$OUT/audit-policy.yaml"
cp "$OUT/killlat" "$OUT/never-runs"
printf 'rules:\n  - name: kill-never-exe\n    match: { exe: %s }\n    action: kill\n  - name: kill-never-script\n    match: { script: /opt/never/worker.py }\n    action: kill\n' \
  "$OUT/never-runs" > "$OUT/kill-policy.yaml"

echo "| figure | result | note |" | tee "$ROWS"
echo "|---|---|---|" | tee -a "$ROWS"

# --- 1. exec-loop slowdown ----------------------------------------------------------------------
note "1. exec loop: $N x fork+exec+wait of /bin/true, 2 spawners, $ROUNDS rounds per configuration"
configs=(none revenant-audit revenant-kill auditd forkstat execsnoop)
for c in "${configs[@]}"; do : > "$OUT/loop-$c.txt"; : > "$OUT/cost-$c.txt"; done
# BPF run time is also read during revenant's loops: its in-path cost, free of wall-time noise.
sysctl -qw kernel.bpf_stats_enabled=1
for r in $(seq "$ROUNDS"); do
  # Rotated each round: a fixed order put "none" right after auditd's and forkstat's teardown
  # every time, which biased it (revenant came out faster than nothing).
  for k in $(seq 0 $((${#configs[@]} - 1))); do
    c=${configs[$(((k + r) % ${#configs[@]}))]}
    case $c in
      revenant-audit) start_revenant "$OUT/audit-policy.yaml" loop ;;
      revenant-kill) start_revenant "$OUT/kill-policy.yaml" loop ;;
      auditd) start_auditd ;;
      forkstat) start_forkstat ;;
      execsnoop) start_execsnoop ;;
    esac
    sync; sleep 1   # the previous configuration's writeback and the daemon's start-up settle
    if [ -n "$DAEMON" ]; then b0=$(bpf_ns); c0=$(cpu_us revenant "$DAEMON"); fi
    if [ -n "$EXECSNOOP" ]; then b0=$(bpf_ns execsnoop); c0=$(cpu_us execsnoop "$EXECSNOOP"); fi
    "$OUT/spawner" loop "$N" 2 >> "$OUT/loop-$c.txt"
    if [ -n "$DAEMON" ]; then
      sleep 2.5   # the daemon drains and writes every 2 s: all of this loop's work is counted
      echo "$(($(bpf_ns) - b0)) $(($(cpu_us revenant "$DAEMON") - c0)) $(tail -1 "$OUT/loop-$c.txt")" >> "$OUT/cost-$c.txt"
    fi
    if [ -n "$EXECSNOOP" ]; then
      sleep 0.5
      echo "$(($(bpf_ns execsnoop) - b0)) $(($(cpu_us execsnoop "$EXECSNOOP") - c0)) $(tail -1 "$OUT/loop-$c.txt")" >> "$OUT/cost-$c.txt"
    fi
    case $c in
      revenant-*) stop_revenant ;;
      auditd) stop_auditd ;;
      forkstat) stop_forkstat ;;
      execsnoop) stop_execsnoop ;;
    esac
  done
done
base=$(median < "$OUT/loop-none.txt")
spread() { sort -g "$1" | awk -v b="$base" '{ v[NR] = $1 } END { printf "runs %+.1f to %+.1f %%", (v[1] / b - 1) * 100, (v[NR] / b - 1) * 100 }'; }
row "exec loop, nothing attached" "$(awk -v n="$N" -v t="$base" 'BEGIN { printf "%.0f exec/s", n / t }')" "median of $ROUNDS runs, $N execs each; $(spread "$OUT/loop-none.txt")"
for c in revenant-audit revenant-kill auditd forkstat execsnoop; do
  row "exec loop slowdown, $c" "$(pct "$(median < "$OUT/loop-$c.txt")" "$base")" "median vs nothing attached, same run; $(spread "$OUT/loop-$c.txt")"
done
# From CPU accounting: the BPF programs run inside each exec (one spawner's time per exec is
# 2T/N); the daemon takes its CPU time from the 2 CPUs the 2 spawners use.
for c in revenant-audit revenant-kill execsnoop; do
  row "exec loop cost from CPU accounting, $c" "$(awk -v n="$N" -v base="$base" '
    { b += $1; d += $2 / 1e6; t += $3; k++ }
    END { inpath = b / k / n / 1e9 / (2 * base / n) * 100; daemon = d / (2 * t) * 100
          printf "+%.2f %% (BPF in the exec path %.2f %%, userspace %.2f %%)", inpath + daemon, inpath, daemon }' "$OUT/cost-$c.txt")" \
    "BPF $(awk -v n="$N" '{ b += $1; k++ } END { printf "%.2f", b / k / n / 1e3 }' "$OUT/cost-$c.txt") µs per exec (bpf_stats) over a loop exec of $(awk -v n="$N" -v b="$base" 'BEGIN { printf "%.0f", 2 * b / n * 1e6 }') µs; daemon CPU over the loops"
done
sysctl -qw kernel.bpf_stats_enabled=0
rm -f /var/log/audit/audit.log.*

# --- 2. agent CPU at fixed exec rates ------------------------------------------------------------
note "2. agent CPU at fixed exec rates ($RATES /s, ${CPU_ROUNDS} x ${RATE_SECS}s each, revenant and auditd alternating)"
sysctl -qw kernel.bpf_stats_enabled=1
KAUDITD=$(pgrep -x kauditd | head -1 || true)
# The median round of FILE (by its first column, the total; the upper middle for an even
# count), so the parts shown add up to the total shown; then the totals' range.
median_round() { sort -g -k1,1 "$1" | awk '{ l[NR] = $0; t[NR] = $1 } END { print l[int(NR / 2) + 1], t[1], t[NR] }'; }
for rate in $RATES; do
  : > "$OUT/cpu-rv.txt"; : > "$OUT/cpu-ad.txt"; : > "$OUT/cpu-es.txt"; total=0
  for round in $(seq "$CPU_ROUNDS"); do
    start_revenant "$OUT/audit-policy.yaml" rate
    c0=$(cpu_us revenant "$DAEMON"); b0=$(bpf_ns)
    n=$("$OUT/spawner" rate "$rate" "$RATE_SECS")
    sleep 2.5   # the daemon drains and writes every 2 s: all of this window's work is counted
    c1=$(cpu_us revenant "$DAEMON"); b1=$(bpf_ns)
    stop_revenant
    total=$((total + n))
    # total, daemon, BPF: % of one core
    awk -v c=$((c1 - c0)) -v b=$((b1 - b0)) -v s="$RATE_SECS" \
      'BEGIN { printf "%.4f %.4f %.4f\n", (c / 1e6 + b / 1e9) / s * 100, c / 1e6 / s * 100, b / 1e9 / s * 100 }' >> "$OUT/cpu-rv.txt"

    start_auditd
    a0=$(cpu_us auditd "$AUDITD"); k0=$([ -n "$KAUDITD" ] && kthread_us "$KAUDITD" || echo 0)
    n=$("$OUT/spawner" rate "$rate" "$RATE_SECS")
    sleep 0.5
    a1=$(cpu_us auditd "$AUDITD"); k1=$([ -n "$KAUDITD" ] && kthread_us "$KAUDITD" || echo 0)
    stop_auditd
    awk -v a=$((a1 - a0)) -v k=$((k1 - k0)) -v s="$RATE_SECS" \
      'BEGIN { printf "%.4f %.4f %.4f\n", (a + k) / 1e6 / s * 100, a / 1e6 / s * 100, k / 1e6 / s * 100 }' >> "$OUT/cpu-ad.txt"

    start_execsnoop
    e0=$(cpu_us execsnoop "$EXECSNOOP"); b0=$(bpf_ns execsnoop)
    n=$("$OUT/spawner" rate "$rate" "$RATE_SECS")
    sleep 0.5
    e1=$(cpu_us execsnoop "$EXECSNOOP"); b1=$(bpf_ns execsnoop)
    stop_execsnoop
    awk -v c=$((e1 - e0)) -v b=$((b1 - b0)) -v s="$RATE_SECS" \
      'BEGIN { printf "%.4f %.4f %.4f\n", (c / 1e6 + b / 1e9) / s * 100, c / 1e6 / s * 100, b / 1e9 / s * 100 }' >> "$OUT/cpu-es.txt"
  done
  read -r rv rv_d rv_b rv_lo rv_hi < <(median_round "$OUT/cpu-rv.txt")
  read -r ad ad_a ad_k ad_lo ad_hi < <(median_round "$OUT/cpu-ad.txt")
  read -r es es_u es_b es_lo es_hi < <(median_round "$OUT/cpu-es.txt")
  row "CPU of one core at $rate exec/s, revenant" "$(printf '%.2f %% (%.2f–%.2f) (daemon %.2f + BPF %.2f)' "$rv" "$rv_lo" "$rv_hi" "$rv_d" "$rv_b")" \
    "median round (range) of $CPU_ROUNDS runs of ${RATE_SECS}s, $total execs; daemon from $CPU_SRC, BPF run time from bpf_stats"
  row "CPU of one core at $rate exec/s, auditd" "$(printf '%.2f %% (%.2f–%.2f) (auditd %.2f + kauditd %.2f)' "$ad" "$ad_lo" "$ad_hi" "$ad_a" "$ad_k")" \
    "median round (range) of $CPU_ROUNDS runs, alternating with revenant's; the audit cost inside each execve is not in this figure"
  row "CPU of one core at $rate exec/s, execsnoop" "$(printf '%.2f %% (%.2f–%.2f) (execsnoop %.2f + BPF %.2f)' "$es" "$es_lo" "$es_hi" "$es_u" "$es_b")" \
    "median round (range) of $CPU_ROUNDS runs, alternating with revenant's; execsnoop prints each exec (to /dev/null), keeps no lineage, enforces nothing"
  row "CPU at $rate exec/s, revenant / execsnoop" "$(awk -v r="$rv" -v e="$es" 'BEGIN { if (e > 0) printf "%.2f", r / e; else printf "n/a" }')" "ratio of the median rounds"
  row "CPU at $rate exec/s, revenant / auditd" "$(awk -v r="$rv" -v a="$ad" 'BEGIN { if (a > 0) printf "%.2f", r / a; else printf "n/a (auditd used no measurable CPU)" }')" "ratio of the median rounds"
done
sysctl -qw kernel.bpf_stats_enabled=0
rm -f /var/log/audit/audit.log.*

# --- 3. loss under a storm -----------------------------------------------------------------------
note "3. storm: 4 spawners flat out for ${STORM_SECS}s"
marker="storm-$$-$RANDOM"
start_revenant "" storm
made=$("$OUT/spawner" storm "$STORM_SECS" 4 "$marker")
sleep 1
stop_revenant
lost=$(sed -n 's/.*stopped.*lost=\([0-9]*\).*/\1/p' "$OUT/storm.log" | tail -1)
# Read back through revenant's own export: rows and leaf batches alike, as an operator would.
stored=$("$BIN" export --db "$OUT/storm.db" --format jsonl --match "$marker" 2>/dev/null | python3 -c '
import json, sys
print(sum(1 for l in sys.stdin if json.loads(l)["exe"] == "/bin/true"))')
row "storm: execs made / events lost / execs in the store" "$made / ${lost:-?} / $stored" "$(awk -v n="$made" -v s="$STORM_SECS" 'BEGIN { printf "%.0f exec/s", n / s }'); lost = ring-buffer-full counter"

# --- 4. kill latency and what the victim did -------------------------------------------------------
note "4. kill latency: kill-at-exec, userspace reaction, pkill loop"
cp "$OUT/killlat" "$OUT/killlat-victim"
printf 'rules:\n  - name: bench-victim\n    match: { exe: %s }\n    action: kill\n' "$OUT/killlat-victim" > "$OUT/victim-policy.yaml"
for mode in kernel userspace pkill; do
  rm -f "$OUT/victim.marker"
  n=$KILL_N
  case $mode in
    kernel) start_revenant "$OUT/victim-policy.yaml" kill-kernel ;;
    userspace) start_revenant "$OUT/victim-policy.yaml" kill-userspace --bench-userspace-kill ;;
    pkill) n=$PKILL_N
           bash -c "while :; do pkill -KILL -x killlat-victim; sleep 0.1; done" & LOOP=$! ;;
  esac
  read -r tried killed p50 p99 bytes < <("$OUT/killlat" "$n" "$OUT/killlat-victim" "$OUT/victim.marker")
  case $mode in pkill) kill "$LOOP"; wait "$LOOP" 2>/dev/null || true ;; *) stop_revenant ;; esac
  label=$mode; [ "$mode" = pkill ] && label="pkill loop (pkill -KILL every 0.1 s)"
  row "kill latency, $label" "p50 $p50 ms, p99 $p99 ms" "$killed of $tried killed; victim wrote $bytes bytes in all (one per 100 µs while alive)"
done

# --- 5. who-spawned on a large store, daemon memory -------------------------------------------------
note "5. store of $STORE_PROCESSES processes; daemon RSS after $RSS_N processes"
"$BENCH_STORE" --db "$OUT/bench.db" --processes "$STORE_PROCESSES" --timeline-instances "$TIMELINE_INSTANCES" > "$OUT/store.txt"
leaf=$(awk '/^leaf-pid/ { print $2 }' "$OUT/store.txt")
ingest=$(sed -n 's/.*= \([0-9]*\) processes\/s.*/\1 processes\/s ingested/p' "$OUT/store.txt")
p50=$(sed -n 's/.*in-process): \(p50 [0-9.]* ms  p99 [0-9.]* ms\).*/\1/p' "$OUT/store.txt")
cli=$("$OUT/spawner" time 21 "$BIN" who-spawned "$leaf" --db "$OUT/bench.db" --json)
answer=$(sed -n 's/^who-spawned answer (in-process, lineage + respawner): \(p50 [0-9.]* ms\)/\1/p' "$OUT/store.txt")
row "who-spawned, $STORE_PROCESSES-process store" "CLI p50 $cli ms" "in-process: lookup + ancestry $p50, whole answer $answer; $ingest"
# CLI p50 of 11 runs of a command, from fork to reaped, text output to /dev/null.
cli_p50() { "$OUT/spawner" time 11 "$@"; }
tl=$(sed -n 's/^timeline query (in-process, --match, \([0-9]*\) instances shown): \(p50 [0-9]* ms\)/\2 in-process, \1 instances/p' "$OUT/store.txt")
tlpid=$(sed -n 's/^timeline query (in-process, by PID): \(p50 [0-9]* ms\)/\1 in-process/p' "$OUT/store.txt")
row "timeline of one program by PID, same store" "CLI p50 $(cli_p50 "$BIN" timeline 4300001 --db "$OUT/bench.db") ms" "$tlpid (text output, one loop shell)"
row "timeline of one program, --match, same store" "CLI p50 $(cli_p50 "$BIN" timeline --match timeline_worker.py --db "$OUT/bench.db") ms" \
  "$tl; --match searches the distinct command lines"
for fmt in ocsf jsonl csv; do
  # Read as a log shipper reads a pipe, a chunk at a time: a reader holding the whole output
  # was the bound.
  exp=$(python3 -c '
import resource, subprocess, sys, time
t = time.time()
p = subprocess.Popen([sys.argv[1], "export", "--db", sys.argv[2], "--format", sys.argv[3]], stdout=subprocess.PIPE, bufsize=0)
n = 0
while chunk := p.stdout.read(1 << 20):
    n += chunk.count(b"\n")
p.wait()
s = time.time() - t
print("%d records in %.1f s = %.0f records/s, max RSS %.0f MiB" % (n, s, n / s, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024))' "$BIN" "$OUT/bench.db" "$fmt")
  row "export --format $fmt of that store" "$exp" "streamed through one cursor"
done
# Processes that fork and exit without exec all enter the daemon's table (an exec'd
# short-lived leaf goes to the store without it): the table's bound, not the leaves', is measured.
start_revenant "$OUT/audit-policy.yaml" rss
rss0=$(awk '/VmRSS/ { print $2 }' "/proc/$DAEMON/status")
"$OUT/spawner" forks "$RSS_N" 2 > /dev/null
sleep 2.5   # one drain and write after the loop
rss1=$(awk '/VmRSS/ { print $2 }' "/proc/$DAEMON/status"); hwm=$(awk '/VmHWM/ { print $2 }' "/proc/$DAEMON/status")
stop_revenant
row "daemon RSS after $RSS_N processes" "$((rss1 / 1024)) MiB (peak $((hwm / 1024)) MiB)" "at start $((rss0 / 1024)) MiB; forks without exec, which all enter the table: it keeps every live process and 50,000 exited"

if [ "$DOCS" = yes ]; then
  mkdir -p "$ROOT/docs"
  {
    echo "# Benchmarks: the generated table"
    echo
    echo "Written by \`make bench\` (scripts/bench/run.sh) and by nothing else: each run replaces this file."
    echo "Figures measured by hand, with their commands, are in [benchmarks.md](benchmarks.md)."
    echo
    echo "Measured by \`make bench\` (scripts/bench/run.sh) on $(date -u +%Y-%m-%d), one run, side by side."
    echo "Kernel $(uname -r); $(nproc) CPUs ($(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)); $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo) RAM; revenant $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')."
    echo
    cat "$ROWS"
    echo
    echo "Configurations: revenant-audit = the daemon with an audit rule (matches nothing here);"
    echo "revenant-kill = kill rules by exe and by script (argv hashing on every exec) that match nothing;"
    echo "auditd = \`auditd -n\` with \`-a always,exit -F arch=b64 -S execve\`; forkstat = \`forkstat -e fork,exec,exit\`"
    echo "(proc connector) writing to /dev/null; execsnoop = libbpf-tools' \`execsnoop\` (syscall tracepoints, perf buffer)"
    echo "writing to /dev/null. CPU figures are percent of one core over the window."
  } > "$ROOT/docs/benchmarks-generated.md"
  note "written to docs/benchmarks-generated.md"
fi
