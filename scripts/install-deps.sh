#!/usr/bin/env bash
# Installs the Debian packages Cairn needs to build and test; with the
# argument `bench`, also the peer servers and tools `make bench` runs.
# Idempotent: only packages that are missing are installed. Run as root or
# with sudo available. The npm packages for the kafkajs tests are installed
# by tests/integration/js (npm ci) from its committed lockfile.
set -euo pipefail
PKGS=(
  build-essential clang llvm libclang-rt-14-dev pkg-config valgrind
  zlib1g-dev libsnappy-dev liblz4-dev libzstd-dev
  libcmocka-dev librdkafka-dev kcat
  python3-pytest python3-confluent-kafka python3-kafka python3-pika amqp-tools python3-kombu python3-amqp
  python3-snappy python3-lz4 python3-zstandard
  nodejs npm
  libhiredis-dev libnats-dev librabbitmq-dev
)
if [ "${1:-}" = bench ]; then
  PKGS+=(redis-server nats-server rabbitmq-server gnuplot-nox linux-perf)
fi
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# node/npm may come from elsewhere on the machine; accept any working ones.
if command -v node >/dev/null && command -v npm >/dev/null; then
  tmp=(); for p in "${missing[@]}"; do [[ $p == nodejs || $p == npm ]] || tmp+=("$p"); done
  missing=("${tmp[@]+"${tmp[@]}"}")
fi
[ ${#missing[@]} -eq 0 ] && exit 0
echo "install-deps: installing ${missing[*]}" >&2
SUDO=; [ "$(id -u)" -ne 0 ] && SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
