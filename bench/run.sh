#!/usr/bin/env bash
# One command for every benchmark: bash bench/run.sh [harness options]
#
# Installs the load generators and peers from Debian (wrk, h2load, dnsperf, dnsdist,
# PowerDNS, gdnsd), builds httpdns, the axum hello ceiling and the TLS reconnect load
# generator in release mode, runs the criterion scheduler bench, then bench/harness.py:
# throughput and latency against the ceiling and the peers (HTTP, h2c, TLS 1.3, classic
# DNS over UDP), scale (100,000 domains), and failover time. Every server listens on
# 127.0.0.1 (health-checked endpoints on 127.0.1.x); every load run is bounded in time.
#
# Environment:
#   DURATION=10 CONNS=64 STREAMS=4   seconds per row, connections, h2c streams/connection
#   LATENCY_CONNS=16                 connections of the second fixed-rate latency run
#   LATENCY_ROUNDS=3                 rounds of the fixed-rate runs (hello, /resolve in turn; median p99)
#   SERVER_CPU=0 LOAD_CPU=1          CPUs the servers and the load generator are pinned to
#   WAIT_QUIET=1                     first wait (up to 40 min) until no rustc/cargo/javac runs
#   SKIP_CRITERION=1                 skip the criterion bench (e.g. when smoke-testing)
#   ANSWER_CACHE_ENTRIES=0           run every httpdns without its answer cache (A/B)
#   UDP_CLIENTS=16 UDP_OUTSTANDING=200   dnsperf sockets and queries in flight
# Harness options: --only throughput,scale,failover  --no-peers  --scale-domains N
#   --keys h1,h2c,h1_half,h2_tls,h1_tls,h1_tls_reconnect,udp   (throughput keys to measure)
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p target/bench

need=()
command -v wrk >/dev/null || need+=(wrk)
command -v h2load >/dev/null || need+=(nghttp2-client)
command -v dnsperf >/dev/null || need+=(dnsperf)
command -v dnsdist >/dev/null || need+=(dnsdist)
command -v gdnsd >/dev/null || need+=(gdnsd)
command -v pdns_server >/dev/null || need+=(pdns-server)
dpkg -s pdns-backend-bind >/dev/null 2>&1 || need+=(pdns-backend-bind)
command -v taskset >/dev/null || need+=(util-linux)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing ${need[*]}"
  apt-get update -qq
  # The packages' init scripts may try to start the daemons; the harness runs its own.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

cargo build --release --bin httpdns --example bench-hello --example bench-tls-reconnect \
  --example bench-paced

if [ "${SKIP_CRITERION:-0}" != 1 ]; then
  cargo bench --bench scheduler 2>&1 | tee target/bench/criterion.txt
fi

if [ "${WAIT_QUIET:-0}" = 1 ]; then
  for _ in $(seq 80); do
    busy=$( (pgrep -x rustc; pgrep -x cargo; pgrep -x javac) | wc -l || true)
    [ "$busy" = 0 ] && break
    echo "waiting for a quiet machine: $busy compiler processes running"
    sleep 30
  done
fi

exec python3 bench/harness.py --criterion target/bench/criterion.txt "$@"
