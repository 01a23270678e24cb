#!/usr/bin/env bash
# Quick throughput benchmark: one fresh Cairn broker, librdkafka load from
# build/tools/loadgen, {100 B, 1 KiB} x {acks=1, acks=all}, produce then
# consume back; prints a markdown table (see bench/README.md).
#
#   bash bench/quick.sh          # full: 1,000,000 x 100 B, 300,000 x 1 KiB
#   bash bench/quick.sh smoke    # tiny counts (RECORDS_SCALE=0.01 unless set)
#
# Environment:
#   CAIRN_BIN      broker binary          (default: build/cairn)
#   LOADGEN        loadgen binary         (default: build/tools/loadgen)
#   RECORDS_SCALE  multiply record counts (default 1; smoke: 0.01)
#   PORT           broker port            (default: a free one)
#   LOADGEN_ARGS   extra produce options, e.g. "--linger-ms 10 --compression lz4"
#   JSON_OUT       append every loadgen JSON line (plus broker CPU) to this file
#   KEEP_TMP=1     keep the temp dir (broker data and log) for inspection
# Builds nothing: run `make all` (or make build/cairn build/tools/loadgen) first.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MODE=${1:-full}
case "$MODE" in
  full)  : "${RECORDS_SCALE:=1}" ;;
  smoke) : "${RECORDS_SCALE:=0.01}" ;;
  -h|--help) sed -n '2,18p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "usage: $0 [full|smoke]" >&2; exit 2 ;;
esac
CAIRN_BIN=${CAIRN_BIN:-$ROOT/build/cairn}
LOADGEN=${LOADGEN:-$ROOT/build/tools/loadgen}
LOADGEN_ARGS=${LOADGEN_ARGS:-}
JSON_OUT=${JSON_OUT:-}

die() { echo "quick.sh: $*" >&2; exit 1; }
[ -x "$CAIRN_BIN" ] || die "broker binary '$CAIRN_BIN' not found (make build/cairn, or set CAIRN_BIN)"
[ -x "$LOADGEN" ]   || die "loadgen binary '$LOADGEN' not found (make build/tools/loadgen, or set LOADGEN)"
[ -r /proc/self/stat ] || die "/proc is required (broker CPU accounting)"

CLK_TCK=$(getconf CLK_TCK)
scale() { awk -v n="$1" -v s="$RECORDS_SCALE" 'BEGIN { v = int(n * s + 0.5); if (v < 1) v = 1; print v }'; }
N_SMALL=$(scale 1000000)
N_LARGE=$(scale 300000)

free_port() {
  if command -v python3 >/dev/null 2>&1; then
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
    return
  fi
  local p
  for _ in $(seq 50); do
    p=$(( 20000 + RANDOM % 40000 ))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
  done
  die "no free port found"
}
PORT=${PORT:-$(free_port)}

TMP=$(mktemp -d "${TMPDIR:-/tmp}/cairn-quick.XXXXXX")
BROKER_PID=
# shellcheck disable=SC2317  # invoked from the EXIT trap
cleanup() {
  local rc=$?
  if [ -n "$BROKER_PID" ] && kill -0 "$BROKER_PID" 2>/dev/null; then
    kill -TERM "$BROKER_PID" 2>/dev/null
    for _ in $(seq 100); do kill -0 "$BROKER_PID" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$BROKER_PID" 2>/dev/null; then
      echo "quick.sh: broker did not exit 10 s after SIGTERM; sending SIGKILL" >&2
      kill -KILL "$BROKER_PID" 2>/dev/null
    fi
    wait "$BROKER_PID" 2>/dev/null
    local brc=$?
    [ "$brc" = 0 ] || echo "quick.sh: broker exit status $brc after SIGTERM (expected 0)" >&2
  fi
  if [ "${KEEP_TMP:-0}" = 1 ]; then echo "quick.sh: kept $TMP" >&2; else rm -rf "$TMP"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- broker ------------------------------------------------------------------
mkdir -p "$TMP/data"
# AMQP off (brokers side by side must not share 5672); older builds lack the flag.
AMQP_OFF=()
"$CAIRN_BIN" --help 2>/dev/null | grep -q -- --amqp-listen && AMQP_OFF=(--amqp-listen off)
"$CAIRN_BIN" --help 2>/dev/null | grep -q -- --http-listen && AMQP_OFF+=(--http-listen off)
"$CAIRN_BIN" --listen "127.0.0.1:$PORT" "${AMQP_OFF[@]}" --data-dir "$TMP/data" --set num.partitions=1 \
  >"$TMP/broker.out" 2>"$TMP/broker.log" &
BROKER_PID=$!

broker_log_tail() { echo "--- broker stderr (last 20 lines):" >&2; tail -n 20 "$TMP/broker.log" >&2; }
ready=0
for _ in $(seq 200); do   # up to 20 s
  kill -0 "$BROKER_PID" 2>/dev/null || { broker_log_tail; BROKER_PID=; die "broker exited during startup"; }
  if grep -qi listening "$TMP/broker.log" && (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
    ready=1; break
  fi
  sleep 0.1
done
[ "$ready" = 1 ] || { broker_log_tail; die "broker not listening on 127.0.0.1:$PORT after 20 s"; }
echo "quick.sh: broker pid $BROKER_PID on 127.0.0.1:$PORT, data in $TMP/data, scale $RECORDS_SCALE" >&2

# utime+stime of the whole broker process (all threads), in clock ticks.
cpu_ticks() {
  local stat rest
  stat=$(cat "/proc/$BROKER_PID/stat" 2>/dev/null) || { echo -1; return; }
  rest=${stat##*) }            # comm may contain spaces/parens: cut after the last ')'
  # rest starts at field 3 (state); utime = field 14, stime = field 15
  awk '{ print $12 + $13 }' <<<"$rest"
}
json_field() { sed -n "s/.*\"$2\":\\([-0-9.e+]*\\).*/\\1/p" <<<"$1" | head -n 1; }
# broker CPU seconds per million records
cpu_per_m() {
  awk -v d="$1" -v hz="$CLK_TCK" -v n="$2" 'BEGIN { if (d < 0 || n <= 0) print "n/a"; else printf "%.2f", d / hz / (n / 1e6) }'
}
fmt_int() { awk -v v="$1" 'BEGIN { if (v == "") print "n/a"; else printf "%.0f", v }'; }
fmt_2()   { awk -v v="$1" 'BEGIN { if (v == "") print "n/a"; else printf "%.1f", v }'; }

# Run one loadgen phase; sets PHASE_JSON, PHASE_TICKS, PHASE_RC.
run_phase() {
  local t0 t1 out
  t0=$(cpu_ticks)
  out=$("$LOADGEN" "$@" --json 2>>"$TMP/loadgen.err")
  PHASE_RC=$?
  t1=$(cpu_ticks)
  PHASE_JSON=$(grep '^{' <<<"$out" | tail -n 1)
  grep -v '^{' <<<"$out" >&2
  if [ "$t0" -ge 0 ] && [ "$t1" -ge 0 ]; then PHASE_TICKS=$(( t1 - t0 )); else PHASE_TICKS=-1; fi
  if [ -n "$JSON_OUT" ] && [ -n "$PHASE_JSON" ]; then
    echo "${PHASE_JSON%\}},\"broker_cpu_s\":$(awk -v d="$PHASE_TICKS" -v hz="$CLK_TCK" 'BEGIN{printf "%.2f", d/hz}')}" >>"$JSON_OUT"
  fi
}

failures=0
rows=()
for size in 100 1024; do
  if [ "$size" = 100 ]; then n=$N_SMALL; else n=$N_LARGE; fi
  for acks in 1 all; do
    topic="quick-${size}b-acks${acks}"
    # shellcheck disable=SC2086
    run_phase produce --bootstrap "127.0.0.1:$PORT" --topic "$topic" --records "$n" --size "$size" \
              --acks "$acks" --partitions 1 $LOADGEN_ARGS
    p_rc=$PHASE_RC p_json=$PHASE_JSON p_ticks=$PHASE_TICKS
    p_n=$(json_field "$p_json" delivered)
    run_phase consume --bootstrap "127.0.0.1:$PORT" --topic "$topic" --records "$n" --size "$size" \
              --partitions 1
    c_rc=$PHASE_RC c_json=$PHASE_JSON c_ticks=$PHASE_TICKS
    c_n=$(json_field "$c_json" records)

    note=
    if [ "$p_rc" != 0 ]; then note+=" produce: ${p_n:-0}/$n ok, errors $(json_field "$p_json" errors);"; failures=$((failures + 1)); fi
    if [ "$c_rc" != 0 ]; then note+=" consume: ${c_n:-0}/$n read;"; failures=$((failures + 1)); fi
    kill -0 "$BROKER_PID" 2>/dev/null || { note+=" broker died;"; }
    rows+=("| $size | $acks | $n | $(fmt_int "$(json_field "$p_json" records_per_sec)") | $(fmt_2 "$(json_field "$p_json" mb_per_sec)") | $(fmt_int "$(json_field "$c_json" records_per_sec)") | $(fmt_2 "$(json_field "$c_json" mb_per_sec)") | $(cpu_per_m "$p_ticks" "${p_n:-0}") | $(cpu_per_m "$c_ticks" "${c_n:-0}") | $(fmt_2 "$(json_field "$p_json" p50)") / $(fmt_2 "$(json_field "$p_json" p99)") |${note:+ FAIL:$note}")
    if ! kill -0 "$BROKER_PID" 2>/dev/null; then
      broker_log_tail; BROKER_PID=; failures=$((failures + 1)); break 2
    fi
  done
done

echo
echo "Cairn quick bench ($MODE, scale $RECORDS_SCALE): $(nproc) cores, librdkafka loadgen on the same host, 1 partition, MB = 10^6 payload bytes"
echo
echo "| size B | acks | records | produce rec/s | produce MB/s | consume rec/s | consume MB/s | broker CPU s/M rec (produce) | broker CPU s/M rec (consume) | produce latency p50/p99 ms |"
echo "|---:|---|---:|---:|---:|---:|---:|---:|---:|---|"
printf '%s\n' "${rows[@]}"
if [ -n "$BROKER_PID" ]; then
  hwm=$(awk '/^VmHWM/ { print $2 " " $3 }' "/proc/$BROKER_PID/status" 2>/dev/null)
  echo
  echo "broker peak RSS: ${hwm:-n/a}; total broker CPU: $(awk -v t="$(cpu_ticks)" -v hz="$CLK_TCK" 'BEGIN{printf "%.2f s", t/hz}')"
fi
if [ "$failures" != 0 ]; then
  echo "quick.sh: $failures phase(s) failed; loadgen stderr:" >&2
  tail -n 20 "$TMP/loadgen.err" >&2
  exit 1
fi
exit 0
