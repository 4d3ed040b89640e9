#!/usr/bin/env bash
# The soak of the snapshot issue: one long `riptide test` at full speed under faults, with each
# node's resident memory and state sampled while it runs.
#
#   sudo bash benches/soak.sh                 # 3600 s, the README's figures
#   sudo bash benches/soak.sh 600 --nemesis pause,partition   # any length, any extra flags
#
# Every INTERVAL seconds (default 30; env INTERVAL) it appends one line per node to
# $OUT/samples.tsv (default OUT=/tmp/riptide-soak):
#
#   elapsed_s  node  pid  rss_mib  applied  first_log  snapshot_bytes  keys  sessions
#
# pid changes when the nemesis killed and restarted the node; a fresh process starts small, so
# compare samples of one pid. At the end it prints the run's verdict and, per node, the RSS at
# 5, 30 and 60 minutes (or the nearest sample). It only reads /proc and asks the nodes for their
# status from inside the run's network namespace (nsenter, as root); it stops nothing but the
# run it started.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-3600}"
shift || true
extra=("$@")
if [[ ${#extra[@]} -eq 0 ]]; then extra=(--nemesis kill,pause,partition); fi
interval="${INTERVAL:-30}"
out="${OUT:-/tmp/riptide-soak}"
nodes=3

if [[ $(id -u) -ne 0 ]]; then
  echo "soak.sh: riptide test needs root for its network namespace; run it with sudo" >&2
  exit 2
fi
cargo build --release -q -p riptide
mkdir -p "$out"
# A copy of the binary: a rebuild during the soak must not change what runs.
cp target/release/riptide "$out/riptide"
results="$out/results"
rm -rf "$results"
samples="$out/samples.tsv"
printf 'elapsed_s\tnode\tpid\trss_mib\tapplied\tfirst_log\tsnapshot_bytes\tkeys\tsessions\n' > "$samples"

echo "soak: ${secs} s, ${extra[*]}; samples every ${interval} s in $samples"
nice -n 5 "$out/riptide" test --nodes "$nodes" --time-limit "$secs" --rate 0 "${extra[@]}" \
  --no-progress --results-dir "$results" > "$out/run.out" 2>&1 &
runner=$!
start=$(date +%s)

# The node processes of this run: their command line names this run's results folder.
node_pid() {
  local want="nodes/n$1/data" p
  for p in /proc/[0-9]*; do
    if { tr '\0' ' ' < "$p/cmdline"; } 2>/dev/null | grep -q -- "$results/.*$want"; then
      basename "$p"
      return
    fi
  done
}

while kill -0 "$runner" 2>/dev/null; do
  sleep "$interval"
  now=$(( $(date +%s) - start ))
  for id in $(seq "$nodes"); do
    pid=$(node_pid "$id" || true)
    [[ -z $pid ]] && continue
    rss=$(awk '/VmRSS/ {printf "%.1f", $2/1024}' "/proc/$pid/status" 2>/dev/null || echo "")
    [[ -z $rss ]] && continue
    line=$(nsenter -t "$pid" -n "$out/riptide" client --nodes "$nodes" --timeout-ms 1000 status \
      2>/dev/null | grep "^n$id " || true)
    read -r applied first snap keys sessions < <(echo "$line" | awk '{
      for (i = 1; i <= NF; i++) {
        if ($i == "applied") a = $(i+1); if ($i == "log") { split($(i+1), r, "\\.\\.="); f = r[1] }
        if ($i == "snapshot") b = substr($(i+2), 2); if ($i == "keys") k = $(i+1)
        if ($i == "sessions") s = $(i+1)
      } print a, f, b, k, s }') || true
    printf '%s\tn%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$now" "$id" "$pid" "$rss" "${applied:-}" \
      "${first:-}" "${snap:-}" "${keys:-}" "${sessions:-}" >> "$samples"
  done
done
wait "$runner" && rc=0 || rc=$?

grep -E '^(verdict|replicas|ops|faults|run) ' "$out/run.out" || tail -20 "$out/run.out"
echo "exit code $rc"
echo "RSS MiB per node at 5 / 30 / 60 min (nearest sample at or before):"
for id in $(seq "$nodes"); do
  printf '  n%s' "$id"
  for at in 300 1800 3600; do
    awk -v n="n$id" -v at="$at" -F'\t' \
      'NR > 1 && $2 == n && $1 <= at { v = $4 " (pid " $3 ")" } END { printf "  %s", (v == "" ? "-" : v) }' \
      "$samples"
  done
  echo
done
exit "$rc"
