#!/usr/bin/env bash
# Reruns every number in checker/README.md ("Benchmarks"), each next to its target (issue 14,
# point 4): release builds, median of several runs, peak memory as /usr/bin/time's max RSS.
#
#   bash benches/checker.sh              # everything (about 5 minutes on a quiet 2-core machine)
#   bash benches/checker.sh porcupine    # just one: porcupine | million | ten-million | hot | blowup
#   PORCUPINE=/path/to/porcupine bash benches/checker.sh porcupine   # Porcupine run beside it
#
# Needs ../shared/histories/porcupine beside the checkout, /usr/bin/time, and ~2.2 GB in /tmp
# (the 10M-op history; deleted at the end).
set -euo pipefail
cd "$(dirname "$0")/.."
what="${1:-all}"
runs=5
big_runs=3
# Porcupine's own benchmarks on an earlier machine, check only: used only when no Porcupine
# checkout is given in PORCUPINE (then benches/porcupine.sh runs both, alternated, on this one).
porcupine_go_ms=482

echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
cargo build --release -q -p riptide -p riptide-checker --example gen_history
riptide=target/release/riptide
gen=target/release/examples/gen_history

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
# verdict LABEL BOOL: PASS or MISS.
verdict() { if [[ $2 == 1 ]]; then echo "PASS"; else echo "MISS"; fi; }

# timed N FILE ARGS...: runs `riptide check FILE ARGS` N times; sets $wall (median s), $mib
# (median peak RSS MiB), $walls, $mibs and $out (the last report).
timed() {
  local n=$1; shift
  local ws=() ks=()
  for _ in $(seq "$n"); do
    /usr/bin/time -f '%e %M' -o /tmp/riptide-time.txt "$riptide" check "$@" > /tmp/riptide-check.out || true
    read -r w k < /tmp/riptide-time.txt
    ws+=("$w"); ks+=("$k")
  done
  walls="${ws[*]}"
  mibs="$(printf '%s\n' "${ks[@]}" | awk '{printf "%d ", $1/1024}')"
  wall=$(printf '%s\n' "${ws[@]}" | median)
  mib=$(printf '%s\n' "${ks[@]}" | median | awk '{printf "%d", $1/1024}')
  out=$(cat /tmp/riptide-check.out)
}

if [[ $what == all || $what == porcupine ]]; then
  echo "== Porcupine's histories, parse + check one file at a time, median of 5 rounds"
  if [[ -n ${PORCUPINE:-} ]]; then
    bash benches/porcupine.sh "$PORCUPINE" "${PAIRS:-11}" | tail -2
  else
    echo "(no PORCUPINE checkout given: comparing with Porcupine's ${porcupine_go_ms} ms from an earlier machine;"
    echo " PORCUPINE=/path/to/porcupine bash benches/checker.sh porcupine runs both here, alternated)"
    "$riptide" check --bench ../shared/histories/porcupine | tee /tmp/riptide-bench.out | tail -4
    ms=$(awk '/total/ {print $2}' /tmp/riptide-bench.out)
    x=$(echo "$porcupine_go_ms / $ms" | bc -l)
    printf 'figure: Porcupine set %.1f ms, %.1fx faster than Porcupine (%d ms)   target: >= 20x   %s\n' \
      "$ms" "$x" "$porcupine_go_ms" "$(verdict x "$(echo "$x >= 20" | bc)")"
  fi
fi

if [[ $what == all || $what == million ]]; then
  echo "== 1,000,000 ops, 1,000 keys, 10 clients per key, 1% info (seed 1), median of $runs"
  hist=/tmp/riptide-h1m.jsonl
  "$gen" --ops 1000000 --keys 1000 --clients 10 --info 0.01 --seed 1 > "$hist"
  timed "$runs" "$hist"
  echo "$out" | grep -E 'keys:|VALID|INVALID|UNKNOWN'
  echo "figure: 1M ops ${wall} s (runs: $walls), peak ${mib} MiB (runs: $mibs)   (no target)"
  rm -f "$hist"
fi

if [[ $what == all || $what == ten-million ]]; then
  echo "== 10,000,000 ops, 1,000 keys, 10 clients per key, 1% info (seed 1), median of $big_runs"
  hist=/tmp/riptide-h10m.jsonl
  "$gen" --ops 10000000 --keys 1000 --clients 10 --info 0.01 --seed 1 > "$hist"
  timed "$big_runs" "$hist"
  echo "$out" | grep -E 'keys:|VALID|INVALID|UNKNOWN'
  ok=$(echo "$wall <= 10 && $mib <= 2048" | bc)
  echo "figure: 10M ops ${wall} s (runs: $walls), peak ${mib} MiB (runs: $mibs)   target: <= 10 s and <= 2048 MiB   $(verdict x "$ok")"
  rm -f "$hist"
fi

if [[ $what == all || $what == hot ]]; then
  for shape in "30 200000" "50 100000"; do
    read -r clients ops <<< "$shape"
    echo "== one key, $clients clients, $ops ops, 1% info (seed 1), --time-limit 60 --memory-budget 2048, median of $big_runs"
    hist=/tmp/riptide-hot.jsonl
    "$gen" --ops "$ops" --keys 1 --clients "$clients" --info 0.01 --seed 1 > "$hist"
    timed "$big_runs" "$hist" --time-limit 60 --memory-budget 2048
    echo "$out" | grep -E 'keys:|VALID|INVALID|UNKNOWN'
    decided=$(echo "$out" | grep -cE '^(VALID|INVALID)' || true)
    ok=$(echo "$decided == 1 && $wall <= 60 && $mib <= 2048" | bc)
    echo "figure: $clients clients ${wall} s (runs: $walls), peak ${mib} MiB (runs: $mibs)   target: decided in <= 60 s and <= 2048 MiB   $(verdict x "$ok")"
    rm -f "$hist"
  done
fi

if [[ $what == all || $what == blowup ]]; then
  echo "== a history built to blow up, --time-limit 0.2"
  start=$(date +%s.%N)
  code=0; "$riptide" check checker/tests/data/blowup.jsonl --time-limit 0.2 > /dev/null || code=$?
  echo "exit $code after $(echo "$(date +%s.%N) - $start" | bc) s"
fi
rm -f /tmp/riptide-time.txt /tmp/riptide-check.out /tmp/riptide-bench.out
