#!/usr/bin/env bash
# Instructions executed by the broker for one fixed workload, two binaries:
# a repeatable cost comparison where wall-clock timing on 2 shared cores is
# too noisy (bench/ab.sh). Each broker runs under valgrind's callgrind while
# build/tools/loadgen produces and consumes:
#   200,000 x 100 B acks=all (64 KiB batches), consumed back;
#   200,000 x 100 B acks=1 (16 KiB batches);
#   50,000 x 1 KiB acks=all (64 KiB batches), consumed back.
# Prints the total instructions (Ir) of each and the ratio NEW/OLD; keeps the
# callgrind files for callgrind_annotate when KEEP=1.
#
#   bash bench/ab_callgrind.sh OLD_BIN NEW_BIN      # about 1-2 minutes
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
[ $# -ge 2 ] || { sed -n '2,14p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 2; }
LG=${LOADGEN:-$ROOT/build/tools/loadgen}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/cairn-abcg.XXXXXX")
cleanup() { [ "${KEEP:-0}" = 1 ] && echo "kept $TMP" >&2 || rm -rf "$TMP"; }
trap cleanup EXIT
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

run() {  # run NAME BIN -> prints Ir
  local name=$1 bin=$2 port d
  port=$(free_port); d=$TMP/$name; mkdir -p "$d"
  local amqp_off=()   # brokers side by side must not share 5672; older builds lack the flag
  "$bin" --help 2>/dev/null | grep -q -- --amqp-listen && amqp_off=(--amqp-listen off)
  "$bin" --help 2>/dev/null | grep -q -- --http-listen && amqp_off+=(--http-listen off)
  valgrind --tool=callgrind --callgrind-out-file="$d/callgrind.out" "$bin" \
    --listen "127.0.0.1:$port" "${amqp_off[@]}" --data-dir "$d/data" --set num.partitions=1 2>"$d/log" &
  local vp=$!
  for _ in $(seq 300); do grep -q "listening" "$d/log" 2>/dev/null && break; sleep 0.2; done
  local b="--bootstrap 127.0.0.1:$port --quiet"
  $LG produce $b --topic a --records 200000 --size 100 --acks all --batch-bytes 65536 >/dev/null
  $LG consume $b --topic a --records 200000 --size 100 >/dev/null
  $LG produce $b --topic b --records 200000 --size 100 --acks 1 --batch-bytes 16384 >/dev/null
  $LG produce $b --topic c --records 50000 --size 1024 --acks all --batch-bytes 65536 >/dev/null
  $LG consume $b --topic c --records 50000 --size 1024 >/dev/null
  kill -TERM "$vp"; wait "$vp"
  sed -n 's/^summary: //p' "$d/callgrind.out"
}
old=$(run old "$(realpath "$1")")
new=$(run new "$(realpath "$2")")
echo "| broker | instructions (Ir) |"
echo "|---|---:|"
echo "| OLD $1 | $old |"
echo "| NEW $2 | $new |"
awk -v o="$old" -v n="$new" 'BEGIN { printf "\nNEW/OLD = %.3f\n", n / o }'
