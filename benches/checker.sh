#!/usr/bin/env bash
# Reruns every number in checker/README.md ("Benchmarks"): release builds, median of 5.
#
#   bash benches/checker.sh            # all three
#   bash benches/checker.sh porcupine  # just one: porcupine | million | blowup
#
# Needs ../shared/histories/porcupine beside the checkout, /usr/bin/time, and ~250 MB in /tmp.
set -euo pipefail
cd "$(dirname "$0")/.."
what="${1:-all}"
runs=5

echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
cargo build --release -q -p riptide -p riptide-checker --example gen_history
riptide=target/release/riptide

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

if [[ $what == all || $what == porcupine ]]; then
  echo "== Porcupine's histories, parse + check one file at a time, median of 5 rounds"
  "$riptide" check --bench ../shared/histories/porcupine
fi

if [[ $what == all || $what == million ]]; then
  echo "== 1,000,000 ops, 1,000 keys, 10 clients per key, 1% info (seed 1), median of $runs"
  hist=/tmp/riptide-h1m.jsonl
  target/release/examples/gen_history --ops 1000000 --keys 1000 --clients 10 --info 0.01 \
    --seed 1 > "$hist"
  walls=(); rss=()
  for _ in $(seq "$runs"); do
    /usr/bin/time -f '%e %M' -o /tmp/riptide-time.txt "$riptide" check "$hist" > /tmp/riptide-h1m.out
    read -r wall kb < /tmp/riptide-time.txt
    walls+=("$wall"); rss+=("$kb")
  done
  grep -E 'keys:|VALID|INVALID|UNKNOWN' /tmp/riptide-h1m.out
  echo "wall seconds: ${walls[*]}  -> median $(printf '%s\n' "${walls[@]}" | median)"
  echo "peak RSS MiB: $(printf '%s\n' "${rss[@]}" | awk '{printf "%d ", $1/1024}') -> median $(printf '%s\n' "${rss[@]}" | median | awk '{printf "%d", $1/1024}')"
  rm -f "$hist"
fi

if [[ $what == all || $what == blowup ]]; then
  echo "== a history built to blow up, --time-limit 0.2"
  start=$(date +%s.%N)
  code=0; "$riptide" check checker/tests/data/blowup.jsonl --time-limit 0.2 > /dev/null || code=$?
  echo "exit $code after $(echo "$(date +%s.%N) - $start" | bc) s"
fi
