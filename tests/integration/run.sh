#!/usr/bin/env bash
# Integration tests: real Kafka clients (kcat, confluent-kafka, kafka-python,
# kafkajs) and AMQP 0-9-1 clients (pika, amqp-tools, kombu, amqplib)
# against a real Cairn broker process.
#
#   bash tests/integration/run.sh BUILD_DIR [pytest args...]
#
# CAIRN_BIN overrides the broker binary (default: BUILD_DIR/cairn, made absolute).
# SKIP_JS=1 skips the js suites (kafkajs, amqplib); SKIP_PY=1 skips the Python suites.
# Exits non-zero if any suite fails.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
build="${1:-build}"
shift || true
case "$build" in /*) ;; *) build="$repo/$build" ;; esac

if [ -z "${CAIRN_BIN:-}" ]; then
  CAIRN_BIN="$build/cairn"
fi
case "$CAIRN_BIN" in /*) ;; *) CAIRN_BIN="$PWD/$CAIRN_BIN" ;; esac
export CAIRN_BIN
if [ ! -x "$CAIRN_BIN" ]; then
  echo "integration: broker binary $CAIRN_BIN not found or not executable" >&2
  exit 2
fi
echo "integration: broker $CAIRN_BIN"

# Debian's python: the python3 first on PATH may not see Debian's packages.
PY=/usr/bin/python3
status=0

if [ "${SKIP_PY:-0}" != 1 ]; then
  echo "== python suites (pytest)"
  (cd "$repo" && "$PY" -m pytest -q tests/integration/py "$@")
  rc=$?
  if [ $rc -ne 0 ]; then echo "integration: python suites FAILED (exit $rc)" >&2; status=1; fi
fi

if [ "${SKIP_JS:-0}" != 1 ]; then
  echo "== js suites: kafkajs, amqplib (node --test)"
  js="$here/js"
  # (re)install when node_modules is missing or older than the lockfile
  if [ ! -d "$js/node_modules/kafkajs" ] || [ ! -d "$js/node_modules/amqplib" ] || [ "$js/package-lock.json" -nt "$js/node_modules/.package-lock.json" ]; then
    (cd "$js" && npm ci --no-audit --no-fund --loglevel=error) || { echo "integration: npm ci failed" >&2; exit 1; }
  fi
  (cd "$js" && timeout 600 node --test test_kafkajs.mjs test_kafkajs_groups.mjs test_kafkajs_eos.mjs test_amqplib.mjs test_kafkajs_cluster.mjs test_amqplib_cluster.mjs test_kafkajs_sasl.mjs)
  rc=$?
  if [ $rc -ne 0 ]; then echo "integration: js suites FAILED (exit $rc)" >&2; status=1; fi
fi

exit $status
