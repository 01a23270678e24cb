#!/usr/bin/env bash
# A/B comparison of two Cairn binaries over AMQP on this machine: build/tools/lg_amqp
# against OLD and NEW in alternating order (OLD NEW, NEW OLD, ...), each run on a
# fresh broker and data directory, then the median rate and p99 per binary and
# the ratio NEW / OLD. Wall-clock figures on 2 shared cores move by tens of
# percent between runs; the alternation and the medians are what make the ratio
# fair (docs/environment.md).
#
#   bash bench/ab_amqp.sh OLD_BIN NEW_BIN [ROUNDS] [-- lg_amqp args...]
#
# ROUNDS defaults to 3. The lg_amqp arguments default to a durable produce:
#   produce --partitions 1 --size 100 --records 200000 --window 1000
# e.g. `-- produce --partitions 16 --size 100 --records 200000 --window 1000`,
# `-- produce --transient ...`, `-- e2e --rate 5000 --records 20000 ...`.
# Builds nothing (make all first).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
[ $# -ge 2 ] || { sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 2; }
OLD=$(realpath "$1") NEW=$(realpath "$2")
shift 2
ROUNDS=3
if [ $# -gt 0 ] && [ "$1" != -- ]; then ROUNDS=$1; shift; fi
[ $# -gt 0 ] && [ "$1" = -- ] && shift
ARGS=("$@")
[ ${#ARGS[@]} -gt 0 ] || ARGS=(produce --partitions 1 --size 100 --records 200000 --window 1000)
LG=${LG_AMQP:-$ROOT/build/tools/lg_amqp}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/cairn-ab-amqp.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

one() { # BIN OUT: one broker, one lg_amqp run, its JSON line appended to OUT
  local bin=$1 out=$2 port kport dir pid
  port=$(free_port) kport=$(free_port) dir=$(mktemp -d "$TMP/data.XXXX")
  local http_off=()   # older builds lack the flag; 8080 must not be shared
  "$bin" --help 2>/dev/null | grep -q -- --http-listen && http_off=(--http-listen off)
  "$bin" --listen "127.0.0.1:$kport" --amqp-listen "127.0.0.1:$port" "${http_off[@]}" --data-dir "$dir" \
    >"$dir.log" 2>&1 &
  pid=$!
  for _ in $(seq 50); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
  done
  local mode=${ARGS[0]}
  "$LG" "$mode" --addr "127.0.0.1:$port" --topic "ab$RANDOM" "${ARGS[@]:1}" --json --quiet \
    | grep '^{' >>"$out" || true
  kill "$pid"; wait "$pid" 2>/dev/null || true
  rm -rf "$dir" "$dir.log"
}

for r in $(seq "$ROUNDS"); do
  if [ $((r % 2)) = 1 ]; then order="old new"; else order="new old"; fi
  for which in $order; do
    if [ "$which" = old ]; then bin=$OLD; else bin=$NEW; fi
    echo "ab_amqp.sh: round $r/$ROUNDS: $which ($bin)" >&2
    one "$bin" "$TMP/$which.jsonl"
  done
done
/usr/bin/python3 - "$TMP/old.jsonl" "$TMP/new.jsonl" "$OLD" "$NEW" "${ARGS[*]}" <<'PY'
import json, statistics, sys
def load(path):
    rows = [json.loads(l) for l in open(path) if l.strip()]
    rate = [r.get("records_per_sec", 0) for r in rows]
    p99 = [(r.get("latency_us") or {}).get("p99", 0) for r in rows]
    return statistics.median(rate) if rate else 0, statistics.median(p99) if p99 else 0, len(rows)
old, new = load(sys.argv[1]), load(sys.argv[2])
print(f"lg_amqp {sys.argv[5]}\n")
print("| broker | runs | median msg/s | median p99 us |\n|---|---:|---:|---:|")
print(f"| OLD {sys.argv[3]} | {old[2]} | {old[0]:,.0f} | {old[1]:,.0f} |")
print(f"| NEW {sys.argv[4]} | {new[2]} | {new[0]:,.0f} | {new[1]:,.0f} |")
print(f"\nNEW/OLD rate = {new[0] / old[0]:.2f}" if old[0] else "\nNEW/OLD rate = n/a")
PY
