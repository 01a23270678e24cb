#!/usr/bin/env bash
# A/B throughput comparison of two Cairn binaries on this machine, side by
# side in one run: bench/quick.sh against OLD and NEW in alternating order
# (OLD NEW, NEW OLD, ...), then the median of each row per binary and the
# ratio NEW / OLD. Used to check that a change costs no speed (issue 9).
#
#   bash bench/ab.sh OLD_BIN NEW_BIN [ROUNDS]     # ROUNDS default 3
#
# Environment: RECORDS_SCALE (default 0.3: 300,000 x 100 B and 90,000 x 1 KiB
# per row), LOADGEN (default build/tools/loadgen). Prints a markdown table.
# Builds nothing. Timing on 2 shared cores varies by tens of percent between
# runs; the medians and the alternating order are what make the ratio fair.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
[ $# -ge 2 ] || { sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 2; }
OLD=$(realpath "$1") NEW=$(realpath "$2") ROUNDS=${3:-3}
export RECORDS_SCALE=${RECORDS_SCALE:-0.3}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/cairn-ab.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
for r in $(seq "$ROUNDS"); do
  if [ $((r % 2)) = 1 ]; then order="old new"; else order="new old"; fi
  for which in $order; do
    if [ "$which" = old ]; then bin=$OLD; else bin=$NEW; fi
    echo "ab.sh: round $r/$ROUNDS: $which ($bin)" >&2
    CAIRN_BIN=$bin JSON_OUT="$TMP/$which.json" bash "$ROOT/bench/quick.sh" full >/dev/null
  done
done
/usr/bin/python3 - "$TMP/old.json" "$TMP/new.json" "$OLD" "$NEW" "$ROUNDS" <<'PY'
import json, statistics, sys
def load(path):
    rows = {}
    for line in open(path):
        d = json.loads(line)
        # quick.sh names topics quick-<size>b-acks<acks>: consume rows too
        key = (d["mode"], d["size"], str(d["topic"]).rsplit("acks", 1)[-1])
        rows.setdefault(key, []).append(d)
    return rows
old, new = load(sys.argv[1]), load(sys.argv[2])
print(f"A/B: OLD {sys.argv[3]}  vs  NEW {sys.argv[4]}, {sys.argv[5]} round(s) each, medians\n")
print("| phase | size B | acks | OLD rec/s | NEW rec/s | NEW/OLD | OLD broker CPU s | NEW broker CPU s | NEW/OLD |")
print("|---|---:|---|---:|---:|---:|---:|---:|---:|")
order = sorted(old, key=lambda k: (k[1], k[2], k[0] != "produce"))
for key in order:
    o, n = old[key], new.get(key, [])
    if not n:
        continue
    med = lambda rs, f: statistics.median(r[f] for r in rs)
    orps, nrps = med(o, "records_per_sec"), med(n, "records_per_sec")
    ocpu, ncpu = med(o, "broker_cpu_s"), med(n, "broker_cpu_s")
    acks = key[2]
    cr = f"{ncpu / ocpu:.2f}" if ocpu > 0 else "n/a"
    print(f"| {key[0]} | {key[1]} | {acks} | {orps:,.0f} | {nrps:,.0f} | {nrps / orps:.2f} | {ocpu:.2f} | {ncpu:.2f} | {cr} |")
PY
