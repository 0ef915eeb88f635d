#!/usr/bin/env bash
# DoH queries/s beside /resolve queries/s: same load generator (h2load), same
# connections and streams, same host, 127.0.0.1 only. The server is pinned to one CPU
# and h2load to the other so they do not fight over a core.
#
#   bash bench/doh.sh                # 10 s per run, 16 connections x 8 streams
#   DURATION=5 CONNS=8 STREAMS=4 bash bench/doh.sh
#
# Prints one line per run and a Markdown table for BENCH.md.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION="${DURATION:-10}"
CONNS="${CONNS:-16}"
STREAMS="${STREAMS:-8}"
PORT="${PORT:-18480}"
SERVER_CPU="${SERVER_CPU:-0}"
CLIENT_CPU="${CLIENT_CPU:-1}"

if ! command -v h2load >/dev/null; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get install -y -qq nghttp2-client >/dev/null
fi

cargo build --release --quiet
BIN=target/release/httpdns

taskset -c "$SERVER_CPU" "$BIN" --listen "127.0.0.1:$PORT" >/tmp/httpdns-bench.log 2>&1 &
SERVER=$!
trap 'kill "$SERVER" 2>/dev/null || true' EXIT
for _ in $(seq 50); do
  curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null && break
  sleep 0.1
done

# api.example.com A, ID 0 (RFC 8484 §4.1), RD set, as base64url.
QUERY=$(printf '\x00\x00\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x03api\x07example\x03com\x00\x00\x01\x00\x01' \
  | base64 -w0 | tr '+/' '-_' | tr -d '=')
BASE="http://127.0.0.1:$PORT"

run() { # name url [h2load args...]
  local name=$1 url=$2
  shift 2
  local out
  out=$(taskset -c "$CLIENT_CPU" h2load -D "$DURATION" -c "$CONNS" -m "$STREAMS" "$@" "$url")
  local rps ok
  rps=$(grep -oE 'finished in [^,]+, [0-9.]+ req/s' <<<"$out" | grep -oE '[0-9.]+ req/s' | cut -d' ' -f1)
  ok=$(grep -oE '[0-9]+ succeeded' <<<"$out" | head -1 | cut -d' ' -f1)
  printf '%-28s %10s req/s  (%s succeeded)\n' "$name" "$rps" "$ok"
  RESULTS+=("| $name | $rps |")
}

RESULTS=()
echo "h2load -D $DURATION -c $CONNS -m $STREAMS, h2c; server on CPU $SERVER_CPU, h2load on CPU $CLIENT_CPU"
run "GET /resolve (JSON)" "$BASE/resolve?host=api.example.com&type=A"
run "GET /dns-query (DoH wire)" "$BASE/dns-query?dns=$QUERY" -H 'accept: application/dns-message'
run "GET /dns-query (dns-json)" "$BASE/dns-query?name=api.example.com&type=A" -H 'accept: application/dns-json'

echo
echo "| front | queries/s |"
echo "| --- | ---: |"
printf '%s\n' "${RESULTS[@]}"
