#!/usr/bin/env bash
# Installs the Debian packages Cairn needs to build and test; with the
# argument `bench`, also the peer servers and tools `make bench` runs.
# Idempotent: only packages that are missing are installed. Run as root or
# with sudo available. The npm packages for the kafkajs tests are installed
# by tests/integration/js (npm ci) from its committed lockfile. Debian's
# chromium, chromium-driver and python3-selenium drive the web console's test
# (tests/integration/py/test_http_console.py) in a headless browser.
# libfaketime skews the wall clock of cluster nodes in the nemesis harness
# (tests/nemesis, fault kinds clock-*).
#
# Raft (issue 12, docs/cluster-plan.md): libraft-dev >= 0.22 (cowsql/raft,
# the raft_step API). Bookworm main has only canonical raft 0.15, so on
# bookworm the bookworm-backports suite is added (once, signed by the Debian
# archive keyring) and only the raft packages are taken from it, named
# pkg/bookworm-backports: backports has apt priority 100, so nothing else
# on the machine is upgraded from it now or later.
set -euo pipefail
PKGS=(
  build-essential clang llvm libclang-rt-14-dev pkg-config valgrind
  zlib1g-dev libsnappy-dev liblz4-dev libzstd-dev
  libcmocka-dev librdkafka-dev kcat
  python3-pytest python3-confluent-kafka python3-kafka python3-pika amqp-tools python3-kombu python3-amqp
  python3-snappy python3-lz4 python3-zstandard
  nodejs npm
  libhiredis-dev libnats-dev librabbitmq-dev
  libhttp-parser-dev libjansson-dev libcurl4-openssl-dev python3-prometheus-client python3-requests curl
  libssl-dev openssl python3-cryptography libpcre2-dev
  chromium chromium-driver python3-selenium
  libfaketime
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
RAFT_PKGS=(libraft-dev libraft0) RAFT_MIN=0.22
raft_missing=()
for p in "${RAFT_PKGS[@]}"; do
  v=$(dpkg-query -W -f='${Status} ${Version}' "$p" 2>/dev/null || true)
  if [[ $v != "install ok installed "* ]] || dpkg --compare-versions "${v##* }" lt "$RAFT_MIN"; then
    raft_missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && [ ${#raft_missing[@]} -eq 0 ] && exit 0
SUDO=; [ "$(id -u)" -ne 0 ] && SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
BPO=
if [ ${#raft_missing[@]} -gt 0 ] && grep -qs '^VERSION_CODENAME=bookworm$' /etc/os-release; then
  BPO=bookworm-backports
  if ! grep -rqs "$BPO" /etc/apt/sources.list /etc/apt/sources.list.d/; then
    echo "install-deps: adding the $BPO suite (/etc/apt/sources.list.d/cairn-backports.sources)" >&2
    printf '%s\n' 'Types: deb' 'URIs: http://deb.debian.org/debian' "Suites: $BPO" \
      'Components: main' 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg' |
      $SUDO tee /etc/apt/sources.list.d/cairn-backports.sources >/dev/null
  fi
fi
echo "install-deps: installing ${missing[*]+${missing[*]} }${raft_missing[*]}${BPO:+ (raft from $BPO)}" >&2
$SUDO apt-get update -qq
[ ${#missing[@]} -eq 0 ] ||
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
[ ${#raft_missing[@]} -eq 0 ] ||
  $SUDO apt-get install -y -qq --no-install-recommends "${raft_missing[@]/%/${BPO:+/$BPO}}" >/dev/null
