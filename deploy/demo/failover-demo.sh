#!/usr/bin/env bash
# Live failover demo, all on loopback: starts HTTP endpoints on 127.0.0.x for two zones,
# runs httpdns with HTTP health checks against them, kills the home zone's endpoints,
# and shows answers move to the failover zone and back. Takes about 20 seconds.
#
#   bash deploy/demo/failover-demo.sh
set -euo pipefail
cd "$(dirname "$0")/../.."

command -v python3 >/dev/null || { echo "needs python3 (for the demo endpoints)"; exit 1; }
command -v curl >/dev/null || { echo "needs curl"; exit 1; }
cargo build --release --quiet
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port)
api=$(free_port)

mkdir -p "$work/zones" "$work/www"
echo ok >"$work/www/health"
cat >"$work/zones/demo.toml" <<ZONES
[[zone]]
name = "south"
endpoints = ["127.0.0.11", "127.0.0.12"]
failover = ["north"]
health_check = { type = "http", port = $port, path = "/health", interval_ms = 500, timeout_ms = 300, rise = 2, fall = 2 }

[[zone]]
name = "north"
endpoints = ["127.0.0.21", "127.0.0.22"]
health_check = { type = "http", port = $port, path = "/health", interval_ms = 500, timeout_ms = 300, rise = 2, fall = 2 }

[[domain]]
name = "demo.example.com"
ttl = 10
zones = ["south", "north"]
default_zone = "south"
ZONES
cat >"$work/httpdns.toml" <<CONFIG
listen = "127.0.0.1:$api"
admin_listen = "127.0.0.1:0"
zones_dir = "zones"
state_dir = "state"
[geoip]
database = "$PWD/geoip/test-geo.mmdb"
CONFIG

declare -A endpoint_pid
start_endpoint() {
  python3 -m http.server "$port" --bind "$1" --directory "$work/www" >/dev/null 2>&1 &
  endpoint_pid[$1]=$!
  pids+=($!)
}
stop_endpoint() { kill "${endpoint_pid[$1]}" 2>/dev/null || true; }

for ip in 127.0.0.11 127.0.0.12 127.0.0.21 127.0.0.22; do start_endpoint "$ip"; done
target/release/httpdns --config "$work/httpdns.toml" --admin-insecure-loopback --no-watch 2>"$work/server.log" &
pids+=($!)

show() {
  curl -s "http://127.0.0.1:$api/resolve?host=demo.example.com&type=A" | python3 -c '
import json, sys, time
a = json.load(sys.stdin)["answers"][0]
print(time.strftime("%H:%M:%S"), "zone=%-6s failover=%-5s ips=%s" % (a["zone"], str(a["failover"]).lower(), ",".join(a["ips"])))'
}
watch_for() { # seconds
  for _ in $(seq 1 $(($1 * 2))); do show; sleep 0.5; done
}

for _ in $(seq 1 50); do curl -sf "http://127.0.0.1:$api/healthz" >/dev/null && break; sleep 0.1; done
echo "== all endpoints up: answers come from the home zone (south)"
watch_for 2
echo "== killing south's endpoints (127.0.0.11, 127.0.0.12): fall=2 x 500 ms"
stop_endpoint 127.0.0.11
stop_endpoint 127.0.0.12
watch_for 3
echo "== restarting them: rise=2 x 500 ms"
start_endpoint 127.0.0.11
start_endpoint 127.0.0.12
watch_for 3
echo "== health transitions the server logged:"
grep -E "endpoint (up|down)" "$work/server.log" | sed -E 's/\x1b\[[0-9;]*m//g' | cut -c1-160
