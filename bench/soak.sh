#!/usr/bin/env bash
# A bounded soak on loopback: while a well-behaved load runs against /resolve, one
# hostile address (127.0.0.2) holds idle and half-sent connections, the zones and the IP
# database are reloaded over and over, health-checked endpoints are killed and brought
# back, and a zone is drained and undrained. Prints and writes target/bench/soak.json:
# requests served, failed requests (target 0) and drains lost (target 0).
#
#   bash bench/soak.sh            # DURATION=30 seconds by default; HTTPDNS_BIN to pick a binary
#
# Everything listens on 127.0.0.0/8 and every loop is bounded by DURATION.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
duration=${DURATION:-30}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
bin=${HTTPDNS_BIN:-}
if [ -z "$bin" ]; then
  cargo build --quiet --manifest-path "$repo/Cargo.toml"
  bin="$repo/target/debug/httpdns"
fi

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

# Two health-checked endpoints on 127.0.1.1/2 (one port), that we kill and restore.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.1.1",0)); print(s.getsockname()[1])')
listener() { python3 -c "
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('$1', $port)); s.listen(64)
while True:
    c, _ = s.accept(); c.close()
" >/dev/null 2>&1 </dev/null & }
mkdir -p "$work/zones"
cp "$repo"/zones/*.toml "$work/zones/"
cat > "$work/zones/soak.toml" <<EOF
[[zone]]
name = "soak-a"
endpoints = ["127.0.1.1", "127.0.1.2"]
health_check = { type = "tcp", port = $port, interval_ms = 200, timeout_ms = 100, rise = 2, fall = 2 }
[[zone]]
name = "soak-b"
endpoints = ["127.0.2.1"]
failover = ["soak-a"]
[[domain]]
name = "soak.example.com"
ttl = 30
zones = ["soak-a", "soak-b"]
default_zone = "soak-a"
EOF
cp "$repo/geoip/test-geo.mmdb" "$work/geo.mmdb"
cat > "$work/httpdns.toml" <<EOF
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
zones_dir = "zones"
state_dir = "state"
trusted_proxies = ["127.0.0.1/32"]
[geoip]
database = "geo.mmdb"
[limits]
max_connections_per_ip = 64
header_read_timeout_ms = 2000
idle_timeout_ms = 5000
EOF
token=soak-token-0123456789abcdef
listener 127.0.1.1; a=$!; pids+=("$a")
listener 127.0.1.2; b=$!; pids+=("$b")
HTTPDNS_ADMIN_TOKEN=$token "$bin" --config "$work/httpdns.toml" --log-json 2>"$work/server.log" >/dev/null &
pids+=("$!")
for _ in $(seq 1 100); do
  grep -q '"public_addr"' "$work/server.log" 2>/dev/null && break
  sleep 0.1
done
public=$(grep -o '"public_addr":"[^"]*"' "$work/server.log" | head -n 1 | cut -d'"' -f4)
admin=$(grep -o '"admin_addr":"[^"]*"' "$work/server.log" | head -n 1 | cut -d'"' -f4)
[ -n "$public" ] && [ -n "$admin" ] || { cat "$work/server.log"; exit 1; }
auth=(-H "Authorization: Bearer $token")
end=$(( $(date +%s) + duration ))

# The hostile address: idle and half-sent connections, reopened as the server closes them.
python3 - "$public" "$duration" <<'EOF' &
import socket, sys, time
host, port = sys.argv[1].rsplit(":", 1)
deadline = time.time() + float(sys.argv[2])
held = []
while time.time() < deadline:
    held = [s for s in held if s.fileno() != -1]
    while len(held) < 200 and time.time() < deadline:
        s = socket.socket(); s.bind(("127.0.0.2", 0)); s.settimeout(1)
        try:
            s.connect((host, int(port)))
            if len(held) % 2:
                s.send(b"GET /resolve?host=api.example.com HTTP/1.1\r\nHost: x\r\n")
            held.append(s)
        except OSError:
            s.close(); break
    for s in list(held):
        try:
            s.settimeout(0.001)
            if s.recv(1) == b"":
                s.close(); held.remove(s)
        except socket.timeout:
            pass
        except OSError:
            s.close(); held.remove(s)
    time.sleep(0.2)
EOF
pids+=("$!")

# Reloads (zones edit, IP database replaced) and endpoint kills, until the end.
(
  i=0
  while [ "$(date +%s)" -lt "$end" ]; do
    i=$((i + 1))
    sed -i "s/^ttl = [0-9]*/ttl = $((30 + i % 2))/" "$work/zones/soak.toml"
    cp "$repo/geoip/test-geo.mmdb" "$work/geo.mmdb.tmp" && mv "$work/geo.mmdb.tmp" "$work/geo.mmdb"
    curl -s -o /dev/null -X POST "${auth[@]}" "http://$admin/admin/reload"
    sleep 0.5
  done
) & pids+=("$!")
(
  while [ "$(date +%s)" -lt "$end" ]; do
    kill "$(cat "$work/a.pid" 2>/dev/null || echo 0)" 2>/dev/null || true
    sleep 1
    listener 127.0.1.1; echo $! > "$work/a.pid"
    sleep 1
  done
) & pids+=("$!")
echo "$a" > "$work/a.pid"

# Drains: every acknowledged change must be the state the server ends in.
(
  acked=0 last=""
  while [ "$(date +%s)" -lt "$end" ]; do
    code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "${auth[@]}" \
      -H 'content-type: application/json' -d '{"weight": 0, "reason": "soak"}' \
      "http://$admin/admin/zones/gz-telecom/drain")
    [ "$code" = 200 ] && { acked=$((acked + 1)); last=drained; }
    sleep 0.3
    code=$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "${auth[@]}" \
      "http://$admin/admin/zones/gz-telecom/drain")
    [ "$code" = 200 ] && { acked=$((acked + 1)); last=undrained; }
    sleep 0.3
  done
  echo "$acked $last" > "$work/drains"
) & pids+=("$!")

wrk -t1 -c16 -d"${duration}s" --latency \
  "http://$public/resolve?host=api.example.com,soak.example.com&ip=202.96.128.86" > "$work/wrk.txt" 2>&1 || true
wait "${pids[-1]}" 2>/dev/null || true
for _ in $(seq 1 50); do [ -s "$work/drains" ] && break; sleep 0.1; done

requests=$(grep -Eo '[0-9]+ requests in' "$work/wrk.txt" | grep -Eo '^[0-9]+' || echo 0)
non2xx=$(grep -Eo 'Non-2xx or 3xx responses: [0-9]+' "$work/wrk.txt" | grep -Eo '[0-9]+$' || echo 0)
sockerr=$(grep -Eo 'Socket errors: .*' "$work/wrk.txt" | grep -Eo '[0-9]+' | awk '{s += $1} END {print s + 0}' || true)
read -r acked last < "$work/drains" || { acked=0; last=""; }
kept=$(curl -s "${auth[@]}" "http://$admin/admin/zones" | python3 -c '
import json, sys
zones = {z["zone"]: z for z in json.load(sys.stdin)["zones"]}
print("drained" if zones["gz-telecom"]["keep_weight_all_domains"] < 100 else "undrained")')
lost=$([ "$kept" = "$last" ] && echo 0 || echo 1)
reloads=$(curl -s "${auth[@]}" "http://$admin/metrics" | grep -E '^httpdns_reloads_total\{result="ok"\}' | awk '{print $2}')
mkdir -p "$repo/target/bench"
printf '{"duration_s": %s, "requests": %s, "failed_requests": %s, "socket_errors": %s, "reloads_ok": %s, "drain_changes_acked": %s, "drains_lost": %s}\n' \
  "$duration" "${requests:-0}" "${non2xx:-0}" "${sockerr:-0}" "${reloads:-0}" "$acked" "$lost" | tee "$repo/target/bench/soak.json"
