#!/usr/bin/env bash
# Prints one line per history file and key: FILE KEY VERDICT (plus the whole-file verdict and exit
# code), every key checked (--all-keys), so that two builds can be compared:
#
#   bash checker/scripts/verdicts.sh ./riptide-old > /tmp/before.txt
#   bash checker/scripts/verdicts.sh target/release/riptide > /tmp/after.txt
#   diff /tmp/before.txt /tmp/after.txt && echo same
#
# DIR defaults to ../shared/histories (every file under it that riptide reads).
set -uo pipefail
bin=${1:?usage: verdicts.sh RIPTIDE_BINARY [DIR] [--time-limit S]}
dir=${2:-../shared/histories}
limit=${3:-120}
find "$dir" -type f \( -name '*.log' -o -name '*.txt' -o -name '*.edn' -o -name '*.jsonl' \) \
  ! -name 'README*' ! -name 'LICENSE*' | sort | while read -r f; do
  code=0
  json=$("$bin" check --all-keys --json --time-limit "$limit" "$f" 2>/dev/null) || code=$?
  if [[ -z $json ]]; then echo "$f - exit $code (no report)"; continue; fi
  echo "$json" | python3 -c '
import json, sys
d = json.load(sys.stdin)
f, code = sys.argv[1], sys.argv[2]
print(f, "*", d["verdict"], "exit", code)
for k, v in sorted(d.get("keys", {}).items()):
    print(f, k, v["verdict"])
' "$f" "$code"
done
