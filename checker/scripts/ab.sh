#!/usr/bin/env bash
# Alternates two builds on `riptide check --bench DIR` (old, new, old, new, ...), PAIRS pairs,
# and prints the median `total` of each, their ratio, and the median CPU time (user + sys) of
# each whole run, with the load average before and after:
#
#   bash checker/scripts/ab.sh ./riptide-old target/release/riptide [PAIRS] [DIR]
set -euo pipefail
old=${1:?usage: ab.sh OLD NEW [PAIRS] [DIR]}
new=${2:?usage: ab.sh OLD NEW [PAIRS] [DIR]}
pairs=${3:-10}
dir=${4:-../shared/histories/porcupine}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)  ($(date -u +%H:%M:%S) UTC)"
: > /tmp/ab-old.txt; : > /tmp/ab-new.txt
for _ in $(seq "$pairs"); do
  for which in old new; do
    bin=$old; [[ $which == new ]] && bin=$new
    /usr/bin/time -f '%U %S' -o /tmp/ab-time.txt "$bin" check --bench "$dir" > /tmp/ab-out.txt
    ms=$(awk '/total/ {print $2}' /tmp/ab-out.txt)
    cpu=$(awk '{printf "%.0f", ($1 + $2) * 1000}' /tmp/ab-time.txt)
    echo "$ms $cpu" >> "/tmp/ab-$which.txt"
  done
done
echo "load after:  $(cut -d' ' -f1-3 /proc/loadavg)  ($(date -u +%H:%M:%S) UTC)"
for which in old new; do
  echo "$which totals (ms): $(cut -d' ' -f1 /tmp/ab-$which.txt | tr '\n' ' ')"
  echo "$which cpu per run, 5 rounds (ms): $(cut -d' ' -f2 /tmp/ab-$which.txt | tr '\n' ' ')"
done
mo=$(cut -d' ' -f1 /tmp/ab-old.txt | median); mn=$(cut -d' ' -f1 /tmp/ab-new.txt | median)
co=$(cut -d' ' -f2 /tmp/ab-old.txt | median); cn=$(cut -d' ' -f2 /tmp/ab-new.txt | median)
printf 'median total: old %s ms, new %s ms, new/old %.3f; Porcupine 482 ms / new = %.1fx\n' \
  "$mo" "$mn" "$(echo "$mn / $mo" | bc -l)" "$(echo "482 / $mn" | bc -l)"
printf 'median cpu (user+sys, whole run): old %s ms, new %s ms, new/old %.3f\n' \
  "$co" "$cn" "$(echo "$cn / $co" | bc -l)"
rm -f /tmp/ab-time.txt /tmp/ab-out.txt
