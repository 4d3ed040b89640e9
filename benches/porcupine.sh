#!/usr/bin/env bash
# Porcupine and riptide on Porcupine's own test set, alternated in the same minutes on the same
# machine, so that the ratio is honest on a shared machine (issue 14: "at least 20x faster than
# Porcupine on the same machine").
#
#   bash benches/porcupine.sh PORCUPINE [PAIRS]
#
# PORCUPINE is a Porcupine checkout (a work tree, or a git directory such as the one
# `git clone --bare` or the tool library's fetch makes); commit 55508eb is the one the set was
# taken from. PAIRS (default 11) is how many times each side runs, alternating. Each run is
# parse + check of every file one at a time, one warm-up round and 5 timed rounds, the median
# round total: `riptide check --bench` on the riptide side, benches/porcupine/riptide_set_test.go
# (Porcupine's own parsers and models from its test suite) on the Go side. Every verdict is
# compared with expected.tsv on both sides. Needs Go (`apt-get install golang-go`; Porcupine has
# no dependencies, so nothing is downloaded).
set -euo pipefail
cd "$(dirname "$0")/.."
src="${1:?usage: bash benches/porcupine.sh PORCUPINE_CHECKOUT [PAIRS]}"
pairs="${2:-11}"
set_dir="$(cd ../shared/histories/porcupine && pwd)"
command -v go > /dev/null || { echo "error: go is not installed: apt-get install golang-go" >&2; exit 1; }

work="$(mktemp -d /tmp/riptide-porcupine.XXXXXX)"
trap 'rm -rf "$work"' EXIT
if [[ -f $src/porcupine_test.go ]]; then
  cp -a "$src"/. "$work"/
elif git --git-dir "$src" rev-parse -q --verify HEAD > /dev/null 2>&1; then
  git --git-dir "$src" archive HEAD | tar -x -C "$work"
else
  echo "error: $src is neither a Porcupine work tree (no porcupine_test.go) nor a git directory" >&2
  exit 1
fi
if ! grep -q 'func parseKvLog' "$work/porcupine_test.go"; then
  echo "error: $src has no parseKvLog in porcupine_test.go; use Porcupine at commit 55508eb" >&2
  exit 1
fi
cp benches/porcupine/riptide_set_test.go "$work/"
(cd "$work" && GOFLAGS=-mod=mod GOPROXY=off go test -c -o porcupine.test .)
cargo build --release -q -p riptide
riptide=target/release/riptide

echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores; $(go version)"
go_all=() go_check=() rt=()
for i in $(seq "$pairs"); do
  line=$(cd "$work" && RIPTIDE_SET="$set_dir" ROUNDS=5 ./porcupine.test -test.run '^TestRiptideSetTiming$' | grep '^porcupine:')
  go_all+=("$(echo "$line" | sed -E 's/.*parse\+check median ([0-9.]+) ms.*/\1/')")
  go_check+=("$(echo "$line" | sed -E 's/.*check only median ([0-9.]+) ms.*/\1/')")
  out=$("$riptide" check --bench "$set_dir")
  if ! grep -q 'total' <<< "$out"; then echo "error: riptide check --bench failed:" >&2; echo "$out" >&2; exit 1; fi
  rt+=("$(awk '/total/ {print $2}' <<< "$out")")
  printf 'pair %2d: porcupine %8.3f ms (check only %8.3f)   riptide %7.3f ms\n' \
    "$i" "${go_all[-1]}" "${go_check[-1]}" "${rt[-1]}"
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
g=$(median "${go_all[@]}"); c=$(median "${go_check[@]}"); r=$(median "${rt[@]}")
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
printf 'medians of %d: porcupine %.1f ms (check only %.1f ms), riptide %.1f ms (parse included)\n' "$pairs" "$g" "$c" "$r"
printf 'riptide is %.1fx faster than Porcupine parse+check, %.1fx than Porcupine check only   target: >= 20x   %s\n' \
  "$(echo "$g / $r" | bc -l)" "$(echo "$c / $r" | bc -l)" \
  "$(if [[ $(echo "$c / $r >= 20" | bc) == 1 ]]; then echo PASS; else echo MISS; fi)"
