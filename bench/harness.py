#!/usr/bin/env python3
"""Benchmark harness for httpdns: throughput, latency, peers, scale, failover time.

Called by bench/run.sh after it installed the tools and built the binaries. Every
server listens on 127.0.0.1 (and 127.0.1.x for health-checked endpoints); every load
run is bounded by a duration. Servers are pinned to one CPU and the load generator to
another (taskset), and each row prints the server's CPU use over the run, so a row
shows whether the server or the generator was the bottleneck.

Results: a Markdown table on stdout and in target/bench/report.md, raw numbers in
target/bench/results.json.
"""

import argparse
import base64
import datetime
import http.client
import json
import os
import platform
import re
import shutil
import signal
import socket
import ssl
import statistics
import struct
import subprocess
import sys
import threading
import time
import tomllib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "target", "bench")
LOGS = os.path.join(OUT, "logs")
HTTPDNS = os.path.join(ROOT, "target", "release", "httpdns")
HELLO = os.path.join(ROOT, "target", "release", "examples", "bench-hello")
TLS_RECONNECT = os.path.join(ROOT, "target", "release", "examples", "bench-tls-reconnect")
PACED = os.path.join(ROOT, "target", "release", "examples", "bench-paced")
GEO_DB = os.path.join(ROOT, "geoip", "test-geo.mmdb")
CLK_TCK = os.sysconf("SC_CLK_TCK")
ADMIN_TOKEN = "bench-admin-token-0123456789abcdef"

SERVER_CPU = os.environ.get("SERVER_CPU", "0")
# `limits.answer_cache_entries` of every httpdns the harness starts (unset: the default);
# ANSWER_CACHE_ENTRIES=0 measures the server without its answer cache.
ANSWER_CACHE_ENTRIES = os.environ.get("ANSWER_CACHE_ENTRIES")
LOAD_CPU = os.environ.get("LOAD_CPU", "1")

PORTS = {
    "hello": 19480,
    "httpdns": 19481,
    "httpdns_admin": 19482,
    "dnsdist_spoof": 19483,
    "dnsdist_pdns": 19484,
    "pdns": 19485,
    "dnsdist_spoof_dns": 19486,
    "dnsdist_pdns_dns": 19487,
    "scale": 19488,
    "scale_admin": 19489,
    "hc": 19490,
    "hc_admin": 19491,
    "hc_endpoint": 19492,
    "scale_example": 19493,
    "scale_example_admin": 19494,
    "scale_small": 19495,
    "scale_small_admin": 19496,
    "hello_tls": 19497,
    "httpdns_tls": 19498,
    "httpdns_tls_admin": 19499,
    "dnsdist_spoof_tls": 19500,
    "httpdns_dns": 19501,
    "gdnsd": 19502,
    "dnsdist_udp": 19503,
}

# Every key of a throughput row, in run order; --keys picks a subset to iterate on.
THROUGHPUT_KEYS = ["h1", "h2c", "h1_half", "h2_tls", "h1_tls", "h1_tls_reconnect", "udp"]
TLS_KEYS = ("h2_tls", "h1_tls", "h1_tls_reconnect")
# Measured in alternating rounds, each row keeping its median (run_throughput).
ROUND_KEYS = ("h1", "h2c", "h2_tls", "h1_tls")
# Requests per connection of the h1_tls_reconnect rows (mobile clients reconnect often).
RECONNECT_EVERY = 10

# The client every throughput row asks for: Guangzhou, China Telecom (home zone
# gz-telecom), passed in X-Forwarded-For from 127.0.0.1, a trusted proxy for all three
# servers.
CLIENT_IP = "202.96.128.86"
HOST = "api.example.com"

# api.example.com's steering by client IP, as the shipped zones and test IP database
# define it (zones/api.example.com.toml over geoip/test-geo.csv), written as subnets so
# dnsdist and PowerDNS can be given the same table. Checked against our /resolve at
# start. Order matters as in our rules: first match wins.
STEERING = [
    ("office", ["100.64.0.0/10"], "sh-bgp"),
    ("south-telecom", ["202.96.128.0/24", "14.16.0.0/12"], "gz-telecom"),
    ("north-unicom", ["123.125.81.0/24", "202.106.0.0/16"], "bj-unicom"),
    ("china-other", ["1.2.4.0/24", "218.30.118.0/24", "180.149.128.0/19",
                     "221.5.0.0/16", "211.136.17.0/24", "120.196.0.0/14",
                     "202.112.0.0/24", "114.114.114.0/24", "223.5.5.0/24"], "sh-bgp"),
    ("overseas", ["8.8.8.0/24", "1.1.1.0/24"], "hk-overseas"),
]
DEFAULT_ZONE = "sh-bgp"
# The classic DNS rows' client: CLIENT_IP's /24 in an EDNS Client Subnet option, as a
# recursive resolver would send it, from 127.0.0.1 (a trusted ECS source for httpdns).
ECS_PREFIX = 24


# ---------------------------------------------------------------- processes


class Server:
    """A process pinned to SERVER_CPU, logging to target/bench/logs/NAME.log."""

    def __init__(self, name, cmd, env=None, cpu=None):
        self.name = name
        os.makedirs(LOGS, exist_ok=True)
        self.log = open(os.path.join(LOGS, name + ".log"), "w")
        full_env = dict(os.environ)
        full_env.update(env or {})
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            ["taskset", "-c", cpu or SERVER_CPU] + cmd,
            stdout=self.log, stderr=subprocess.STDOUT, env=full_env,
            start_new_session=True)

    @property
    def pid(self):
        return self.proc.pid

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def cpu_ticks(pids):
    """utime + stime (all threads) of the processes, in clock ticks."""
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total


def rss_kb(pid, field="VmRSS"):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def connection(host, port, timeout, tls=None):
    """Plain HTTP, or HTTPS when `tls` (an ssl.SSLContext) is given."""
    if tls:
        return http.client.HTTPSConnection(host, port, timeout=timeout, context=tls)
    return http.client.HTTPConnection(host, port, timeout=timeout)


def wait_http(port, path="/", timeout=60.0, host="127.0.0.1", tls=None):
    """Polls until the port answers HTTP(S); returns seconds waited."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            conn = connection(host, port, 1, tls)
            conn.request("GET", path)
            conn.getresponse().read()
            conn.close()
            return time.monotonic() - started
        except OSError:
            time.sleep(0.01)
    raise RuntimeError(f"nothing answers on {host}:{port}{path} after {timeout}s")


def wait_port(port, timeout=30.0, udp=False):
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


def http_get(port, path, headers=None, method="GET", body=None, tls=None):
    conn = connection("127.0.0.1", port, 10, tls)
    conn.request(method, path, body=body, headers=headers or {})
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, dict(resp.getheaders()), data


# ---------------------------------------------------------------- load generators


def _run_generator(cmd, server_pids, env=None):
    """Runs a load generator pinned to LOAD_CPU; returns (stdout, server CPU % of one
    core, generator CPU % of one core, process), both over the run's wall time."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    before = cpu_ticks(server_pids)
    gen_before = os.times()
    started = time.monotonic()
    proc = subprocess.Popen(["taskset", "-c", LOAD_CPU] + cmd, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, env=full_env, text=True)
    out, _ = proc.communicate()
    wall = time.monotonic() - started
    gen_after = os.times()
    after = cpu_ticks(server_pids)
    server_cpu = 100.0 * (after - before) / CLK_TCK / wall
    gen_cpu = 100.0 * ((gen_after.children_user - gen_before.children_user)
                       + (gen_after.children_system - gen_before.children_system)) / wall
    return out, server_cpu, gen_cpu, proc


def wrk(port, path, server_pids, conns, duration, headers=(), paths_file=None):
    """Closed-loop HTTP/1.1 load: peak requests/s and latency percentiles."""
    cmd = ["wrk", "-t1", f"-c{conns}", f"-d{duration}s", "--latency",
           "-s", os.path.join(ROOT, "bench", "wrk-report.lua")]
    for h in headers:
        cmd += ["-H", h]
    cmd.append(f"http://127.0.0.1:{port}{path}")
    out, server_cpu, gen_cpu, _ = _run_generator(
        cmd, server_pids, env={"WRK_PATHS": paths_file or ""})
    m = re.search(r"^JSON (.*)$", out, re.M)
    if not m:
        raise RuntimeError("wrk failed:\n" + out)
    r = json.loads(m.group(1))
    secs = r["duration_us"] / 1e6
    errors = (r["connect_errors"] + r["read_errors"] + r["write_errors"]
              + r["status_errors"] + r["timeouts"])
    return {
        "generator": "wrk", "proto": "http/1.1", "conns": conns, "duration_s": secs,
        "rps": r["requests"] / secs, "requests": r["requests"], "errors": errors,
        "p50_ms": r["p50_us"] / 1000, "p99_ms": r["p99_us"] / 1000,
        "p999_ms": r["p999_us"] / 1000,
        "server_cpu": server_cpu, "gen_cpu": gen_cpu,
    }


def h2load(port, path, server_pids, conns, duration, headers=(), streams=1, h1=False,
           rps_per_conn=None, log_file=None, tls=False):
    """h2load: h2c (HTTP/2 prior knowledge) or --h1; fixed rate with --rps; over TLS
    (https: ALPN h2, or http/1.1 with --h1) when `tls`."""
    cmd = ["h2load", "-t1", f"-c{conns}", f"-m{streams}", f"-D{duration}",
           "--warm-up-time=1"]
    if h1:
        cmd.append("--h1")
    if rps_per_conn:
        cmd.append(f"--rps={rps_per_conn}")
    if log_file:
        cmd.append(f"--log-file={log_file}")
    for h in headers:
        cmd += ["-H", h]
    cmd.append(f"{'https' if tls else 'http'}://127.0.0.1:{port}{path}")
    out, server_cpu, gen_cpu, _ = _run_generator(cmd, server_pids)
    # Server CPU over the whole run includes the warm-up second; close enough.
    fin = re.search(r"finished in ([\d.]+)s, ([\d.]+) req/s", out)
    req = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
                    r"(\d+) failed, (\d+) errored, (\d+) timeout", out)
    codes = re.search(r"status codes: (\d+) 2xx", out)
    if not (fin and req and codes):
        raise RuntimeError("h2load failed:\n" + out)
    done = int(req.group(3))
    ok2xx = int(codes.group(1))
    proto = "http/1.1" if h1 else ("h2" if tls else "h2c")
    result = {
        "generator": "h2load", "proto": proto, "conns": conns,
        "streams": streams, "duration_s": float(fin.group(1)), "rps": float(fin.group(2)),
        "requests": done, "errors": int(req.group(5)) + int(req.group(6))
        + int(req.group(7)) + (done - ok2xx),
        "server_cpu": server_cpu, "gen_cpu": gen_cpu,
    }
    if tls:
        # h2load prints what it negotiated; a row is only a TLS 1.3 row if it was.
        version = re.search(r"^TLS Protocol: (\S+)", out, re.M)
        alpn = re.search(r"^Application protocol: (\S+)", out, re.M)
        result["tls_protocol"] = version.group(1) if version else None
        result["alpn"] = alpn.group(1) if alpn else None
        if result["tls_protocol"] != "TLSv1.3" or result["alpn"] != ("http/1.1" if h1 else "h2"):
            raise RuntimeError(f"h2load negotiated {result['tls_protocol']} / {result['alpn']}, "
                               f"not TLSv1.3 / {'http/1.1' if h1 else 'h2'}")
    if log_file:
        result.update(latency_from_log(log_file))
    return result


def tls_reconnect(port, path, server_pids, conns, duration, ca, headers=()):
    """HTTP/1.1 over TLS 1.3, a new connection every RECONNECT_EVERY requests offering
    session resumption (bench/tls_reconnect.rs); reports the resumed share."""
    cmd = [TLS_RECONNECT, "--url", f"https://127.0.0.1:{port}{path}", "--ca", ca,
           "--conns", str(conns), "--duration", str(duration),
           "--per-conn", str(RECONNECT_EVERY)]
    return _run_json_generator("bench-tls-reconnect", cmd, headers, server_pids)


def paced(port, path, server_pids, conns, duration, rate, headers=()):
    """HTTP/1.1 at `rate` requests/s, evenly spaced over `conns` keep-alive connections,
    latency from each request's due instant (bench/paced.rs)."""
    cmd = [PACED, "--addr", f"127.0.0.1:{port}", "--path", path, "--conns", str(conns),
           "--rate", str(rate), "--duration", str(duration)]
    return _run_json_generator("bench-paced", cmd, headers, server_pids)


def _run_json_generator(name, cmd, headers, server_pids):
    """Runs one of our generators (a JSON line on stdout), adding the server's and the
    generator's CPU use to its result."""
    for h in headers:
        cmd = cmd + ["-H", h]
    out, server_cpu, gen_cpu, proc = _run_generator(cmd, server_pids)
    if proc.returncode != 0 or not out.strip().startswith("{"):
        raise RuntimeError(f"{name} failed:\n" + out)
    result = json.loads(out.strip().splitlines()[-1])
    result.update(server_cpu=server_cpu, gen_cpu=gen_cpu)
    return result


def dnsperf(port, server_pids, duration, clients, outstanding, log_file):
    """Classic DNS over UDP, closed loop: dnsperf keeps `outstanding` queries in flight
    from `clients` sockets, asking HOST A with CLIENT_IP's subnet in ECS. Queries/s and
    lost come from dnsperf's statistics; p50/p99/p99.9 from its per-response latencies
    (-v writes one line per response, to a file so that costs dnsperf little; the
    lines are dropped once parsed)."""
    queries = os.path.join(OUT, "dnsperf-queries.txt")
    with open(queries, "w") as f:
        f.write(f"{HOST} A\n")
    cmd = ["taskset", "-c", LOAD_CPU, "dnsperf", "-s", "127.0.0.1", "-p", str(port),
           "-d", queries, "-l", str(duration), "-c", str(clients), "-q", str(outstanding),
           "-t", "2", "-E", f"8:{ecs_option(CLIENT_IP, ECS_PREFIX).hex()}", "-v", "-W"]
    before = cpu_ticks(server_pids)
    gen_before = os.times()
    started = time.monotonic()
    with open(log_file, "w") as log:
        proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT)
    wall = time.monotonic() - started
    gen_after = os.times()
    server_cpu = 100.0 * (cpu_ticks(server_pids) - before) / CLK_TCK / wall
    gen_cpu = 100.0 * ((gen_after.children_user - gen_before.children_user)
                       + (gen_after.children_system - gen_before.children_system)) / wall
    with open(log_file) as f:
        text = f.read()
    stats = parse_dnsperf(text)
    # At full rate -v writes ~100 MB per row: keep only dnsperf's own messages.
    with open(log_file, "w") as f:
        f.writelines(line + "\n" for line in text.splitlines() if not line.startswith("> "))
    if proc.returncode != 0 or stats is None:
        raise RuntimeError(f"dnsperf failed (exit {proc.returncode}):\n{text[-2000:]}")
    stats.update(generator="dnsperf", clients=clients, outstanding=outstanding,
                 ecs=f"{CLIENT_IP}/{ECS_PREFIX}", server_cpu=server_cpu, gen_cpu=gen_cpu)
    return stats


def parse_dnsperf(text):
    """dnsperf's summary, and percentiles of the per-response latencies of -v lines
    ("> NOERROR api.example.com A 0.000123"; seconds). None when the summary is absent."""
    sent = re.search(r"Queries sent:\s+(\d+)", text)
    completed = re.search(r"Queries completed:\s+(\d+)", text)
    lost = re.search(r"Queries lost:\s+(\d+)", text)
    run_time = re.search(r"Run time \(s\):\s+([\d.]+)", text)
    qps = re.search(r"Queries per second:\s+([\d.]+)", text)
    if not (sent and completed and lost and run_time and qps):
        return None
    codes = dict((code, int(n)) for code, n in
                 re.findall(r"([A-Z]+) (\d+) \([\d.]+%\)", text.split("Response codes:", 1)[-1]
                            .split("\n", 1)[0]))
    lat = sorted(float(m) for m in re.findall(r"^> \S+ .* ([\d.]+)$", text, re.M))

    def pct(p):
        return lat[min(len(lat) - 1, int(len(lat) * p / 100))] * 1000 if lat else None

    completed_n = int(completed.group(1))
    return {
        "rps": float(qps.group(1)), "duration_s": float(run_time.group(1)),
        "sent": int(sent.group(1)), "completed": completed_n, "lost": int(lost.group(1)),
        "rcodes": codes, "errors": int(lost.group(1)) + completed_n - codes.get("NOERROR", 0),
        "p50_ms": pct(50), "p99_ms": pct(99), "p999_ms": pct(99.9), "logged": len(lat),
    }


def latency_from_log(log_file):
    """p50/p99/p99.9 from an h2load --log-file (start µs, status, duration µs)."""
    rows = []
    with open(log_file) as f:
        for line in f:
            parts = line.split("\t")
            if len(parts) >= 3:
                rows.append((int(parts[0]), int(parts[2])))
    if not rows:
        return {}
    lat = sorted(d for _, d in rows)

    def pct(p):
        return lat[min(len(lat) - 1, int(len(lat) * p / 100))] / 1000

    return {"p50_ms": pct(50), "p99_ms": pct(99), "p999_ms": pct(99.9),
            "logged": len(lat)}


# ---------------------------------------------------------------- configs


def zone_ips():
    """zone name -> IPv4 endpoints, from the shipped zones file."""
    with open(os.path.join(ROOT, "zones", "zones.toml"), "rb") as f:
        zones = tomllib.load(f)["zone"]
    result = {}
    for z in zones:
        ips = [e if isinstance(e, str) else e["ip"] for e in z["endpoints"]]
        result[z["name"]] = [ip for ip in ips if ":" not in ip]
    return result


def httpdns_config(name, port, admin_port, zones_dir, dns_port=None, cert=None):
    """A bench config; with `dns_port`, classic DNS there believing ECS from 127.0.0.1;
    with `cert` (cert, key paths), the public listener over TLS, and room for the
    reconnecting load generator's connections from one address."""
    state = os.path.join(OUT, "state-" + name)
    shutil.rmtree(state, ignore_errors=True)
    path = os.path.join(OUT, name + ".toml")
    top, tables = "", ""
    if dns_port:
        top += f'dns_listen = "127.0.0.1:{dns_port}"\n'
        tables += '\n[dns]\necs_trusted = ["127.0.0.1/32"]\n'
    limits = []
    if cert:
        tables += f'\n[tls]\ncert = "{cert[0]}"\nkey = "{cert[1]}"\n'
        limits.append("max_connections_per_ip = 4096")
    if ANSWER_CACHE_ENTRIES is not None:
        limits.append(f"answer_cache_entries = {ANSWER_CACHE_ENTRIES}")
    if limits:
        tables += "\n[limits]\n" + "\n".join(limits) + "\n"
    with open(path, "w") as f:
        f.write(f'''listen = "127.0.0.1:{port}"
admin_listen = "127.0.0.1:{admin_port}"
zones_dir = "{zones_dir}"
state_dir = "{state}"
trusted_proxies = ["127.0.0.1/32", "::1/128"]
{top}
[geoip]
database = "{GEO_DB}"
{tables}''')
    return path


def start_httpdns(name, port, admin_port, zones_dir, dns_port=None, cert=None):
    config = httpdns_config(name, port, admin_port, zones_dir, dns_port, cert)
    server = Server(name, [HTTPDNS, "--config", config, "--no-watch"],
                    env={"HTTPDNS_ADMIN_TOKEN": ADMIN_TOKEN})
    server.ready_s = wait_http(port, "/healthz", timeout=120,
                               tls=client_tls(cert[0]) if cert else None)
    return server


def client_tls(ca):
    """An SSL context trusting the bench's self-signed certificate (TLS 1.3 only)."""
    context = ssl.create_default_context(cafile=ca)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    return context


def dns_query(name, qtype=1):
    """A DNS wire query (id 0, RD) for NAME, as RFC 8484 GET wants it."""
    header = struct.pack("!HHHHHH", 0, 0x0100, 1, 0, 0, 0)
    qname = b"".join(bytes([len(l)]) + l.encode() for l in name.split(".")) + b"\0"
    return header + qname + struct.pack("!HH", qtype, 1)


def doh_path(name):
    wire = dns_query(name)
    return "/dns-query?dns=" + base64.urlsafe_b64encode(wire).decode().rstrip("=")


def dns_answer_ips(wire):
    """A records of a DNS response (enough parsing for our checks)."""
    qd, an = struct.unpack("!HH", wire[4:8])
    pos = 12

    def skip_name(p):
        while True:
            n = wire[p]
            if n == 0:
                return p + 1
            if n & 0xC0 == 0xC0:
                return p + 2
            p += n + 1

    for _ in range(qd):
        pos = skip_name(pos) + 4
    ips = []
    for _ in range(an):
        pos = skip_name(pos)
        rtype, _, _, rdlen = struct.unpack("!HHIH", wire[pos:pos + 10])
        pos += 10
        if rtype == 1 and rdlen == 4:
            ips.append(socket.inet_ntoa(wire[pos:pos + 4]))
        pos += rdlen
    return ips


def dnsdist_spoof_config(ips, cert=None):
    """DoH steering by the client address (X-Forwarded-For), answering with SpoofAction;
    with `cert` (cert, key paths), the same DoH over TLS 1.3 too (h2 and http/1.1)."""
    lines = ['setSecurityPollSuffix("")',
             'setACL({"0.0.0.0/0", "::/0"})',
             f'setLocal("127.0.0.1:{PORTS["dnsdist_spoof_dns"]}")',
             f'addDOHLocal("127.0.0.1:{PORTS["dnsdist_spoof"]}", nil, nil, "/dns-query", '
             '{trustForwardedForHeader=true})']
    if cert:
        lines.append(f'addDOHLocal("127.0.0.1:{PORTS["dnsdist_spoof_tls"]}", "{cert[0]}", '
                     f'"{cert[1]}", "/dns-query", {{trustForwardedForHeader=true, '
                     'minTLSVersion="tls1.3"})')
    matches = []
    for i, (rule, nets, zone) in enumerate(STEERING):
        lines.append(f"local nmg{i} = newNMG()")
        lines += [f'nmg{i}:addMask("{n}")' for n in nets]
        matches.append((f"NetmaskGroupRule(nmg{i})", zone, rule))
    return "\n".join(lines + dnsdist_answers(ips, matches)) + "\n"


def dnsdist_answers(ips, matches):
    """dnsdist actions: for each (rule, zone, comment), HOST A matching the rule gets
    the zone's IPv4 endpoints (SpoofAction); any other HOST A gets DEFAULT_ZONE's; the
    rest is REFUSED."""
    lines = []
    for rule, zone, comment in matches:
        spoof = ", ".join(f'"{ip}"' for ip in ips[zone])
        lines.append(f'addAction(AndRule({{QNameRule("{HOST}."), QTypeRule(DNSQType.A), '
                     f'{rule}}}), SpoofAction({{{spoof}}}))  -- {comment}')
    spoof = ", ".join(f'"{ip}"' for ip in ips[DEFAULT_ZONE])
    lines.append(f'addAction(AndRule({{QNameRule("{HOST}."), QTypeRule(DNSQType.A)}}), '
                 f'SpoofAction({{{spoof}}}))  -- default zone')
    lines.append("addAction(AllRule(), RCodeAction(DNSRCode.REFUSED))")
    return lines


def ecs_option(ip, prefix):
    """The EDNS Client Subnet option's data (RFC 7871 section 6) for an IPv4 client:
    family 1, source prefix, scope 0, then only the prefix's bytes of the address, the
    bits past the prefix zeroed."""
    if not 0 <= prefix <= 32:
        raise ValueError(f"ECS source prefix {prefix}: must be 0..32 for IPv4")
    addr = struct.unpack("!I", socket.inet_aton(ip))[0]
    addr &= (0xFFFFFFFF << (32 - prefix)) & 0xFFFFFFFF
    return struct.pack("!HBB", 1, prefix, 0) + struct.pack("!I", addr)[:(prefix + 7) // 8]


def dns_query_ecs(name, ip, prefix, qid=0x4242):
    """A DNS wire query for NAME A with EDNS (payload 1232) carrying ECS for ip/prefix."""
    option = ecs_option(ip, prefix)
    header = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 1)
    qname = b"".join(bytes([len(l)]) + l.encode() for l in name.split(".")) + b"\0"
    opt = b"\0" + struct.pack("!HHIH", 41, 1232, 0, 4 + len(option)) \
        + struct.pack("!HH", 8, len(option)) + option
    return header + qname + struct.pack("!HH", 1, 1) + opt


def udp_answer(port, timeout=2.0):
    """The A records a DNS server on 127.0.0.1:port gives the bench client over UDP."""
    query = dns_query_ecs(HOST, CLIENT_IP, ECS_PREFIX)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.sendto(query, ("127.0.0.1", port))
        wire, _ = sock.recvfrom(4096)
    if wire[:2] != query[:2]:
        raise RuntimeError(f"127.0.0.1:{port}: answer to another query id")
    rcode = wire[3] & 0x0F
    if rcode != 0:
        raise RuntimeError(f"127.0.0.1:{port}: rcode {rcode} for {HOST} A")
    return dns_answer_ips(wire)


def wait_udp(port, timeout=30.0):
    """Polls until a DNS server answers on the UDP port; returns its A records."""
    started = time.monotonic()
    error = None
    while time.monotonic() - started < timeout:
        try:
            return udp_answer(port, timeout=0.5)
        except (OSError, RuntimeError) as e:
            error = e
            time.sleep(0.05)
    raise RuntimeError(f"no DNS answer on 127.0.0.1:{port} after {timeout}s: {error}")


def steering_by_prefix():
    """STEERING as {prefix length: {network as an integer >> (32 - length): zone}}, IPv4."""
    table = {}
    for _, nets, zone in STEERING:
        for net in nets:
            addr, bits = net.split("/")
            value = struct.unpack("!I", socket.inet_aton(addr))[0] >> (32 - int(bits))
            table.setdefault(int(bits), {})[value] = zone
    return table


def dnsdist_udp_config(ips):
    """Classic DNS over UDP steering by the ECS subnet, not the packet's source: a Lua
    FFI action reads the ECS option (dnsdist_ffi_dnsquestion_get_edns_options), finds
    its network in STEERING and tags the query with the zone; TagRule + SpoofAction
    answer with that zone's IPv4 endpoints, as the DoH config does by client address."""
    levels = []
    for bits, nets in sorted(steering_by_prefix().items(), reverse=True):
        entries = ", ".join(f'[{value}]="{zone}"' for value, zone in sorted(nets.items()))
        levels.append(f"{{{bits}, {{{entries}}}}}")
    lines = ['setSecurityPollSuffix("")',
             'setACL({"0.0.0.0/0", "::/0"})',
             f'setLocal("127.0.0.1:{PORTS["dnsdist_udp"]}")',
             'local ffi = require("ffi")',
             'local C = ffi.C',
             f'local steering = {{{", ".join(levels)}}}',
             'local options = ffi.new("const dnsdist_ffi_ednsoption_t*[1]")',
             'function tagZoneFromECS(dq)',
             '  local count = tonumber(C.dnsdist_ffi_dnsquestion_get_edns_options(dq, options))',
             '  for i = 0, count - 1 do',
             '    local option = options[0][i]',
             '    if option.optionCode == 8 and option.len >= 4 then',
             '      local d = ffi.cast("const uint8_t*", option.data)',
             '      local source = d[2]',
             '      if d[0] == 0 and d[1] == 1 and source <= 32',
             '          and option.len == 4 + math.ceil(source / 8) then',
             '        local addr = 0',
             '        for j = 0, 3 do',
             '          addr = addr * 256 + (4 + j < option.len and d[4 + j] or 0)',
             '        end',
             '        for _, level in ipairs(steering) do',
             '          if level[1] <= source then',
             '            local zone = level[2][math.floor(addr / 2 ^ (32 - level[1]))]',
             '            if zone then',
             '              C.dnsdist_ffi_dnsquestion_set_tag(dq, "zone", zone)',
             '              return DNSAction.None',
             '            end',
             '          end',
             '        end',
             '      end',
             '    end',
             '  end',
             '  return DNSAction.None',
             'end',
             'addAction(AllRule(), LuaFFIAction(tagZoneFromECS))']
    matches = [(f'TagRule("zone", "{zone}")', zone, "tagged from ECS")
               for zone in sorted({z for _, _, z in STEERING})]
    return "\n".join(lines + dnsdist_answers(ips, matches)) + "\n"


def gdnsd_files(directory, ips):
    """gdnsd's config directory: the geoip plugin with no IP database, only a `nets` map
    built from STEERING (datacenters = zones; unmatched clients get DEFAULT_ZONE, the
    first datacenter), each datacenter answering its zone's IPv4 endpoints; ECS is on
    by default. One UDP and one TCP thread: the server has one CPU."""
    zones = [DEFAULT_ZONE] + sorted({z for _, _, z in STEERING} - {DEFAULT_ZONE})
    nets = "\n".join(f'          {net} => [ "{zone}" ]'
                      for _, rule_nets, zone in STEERING for net in rule_nets)
    dcmap = "\n".join(f'          "{zone}" => [ {", ".join(ips[zone])} ]' for zone in zones)
    os.makedirs(os.path.join(directory, "zones"), exist_ok=True)
    with open(os.path.join(directory, "config"), "w") as f:
        f.write(f"""options => {{
  listen => [ 127.0.0.1:{PORTS["gdnsd"]} ]
  udp_threads => 1
  tcp_threads => 1
  run_dir => "{directory}/run"
  state_dir => "{directory}/state"
}}
plugins => {{
  geoip => {{
    maps => {{
      steering => {{
        datacenters => [ {", ".join(f'"{z}"' for z in zones)} ]
        nets => {{
{nets}
        }}
      }}
    }}
    resources => {{
      api => {{
        map => steering
        dcmap => {{
{dcmap}
        }}
      }}
    }}
  }}
}}
""")
    with open(os.path.join(directory, "zones", "example.com"), "w") as f:
        f.write("""$TTL 3600
@ SOA ns1 hostmaster 1 3600 600 604800 60
@ NS ns1
ns1 A 127.0.0.1
api 60 DYNA geoip!api
""")
    return directory


def make_cert():
    """A self-signed certificate for 127.0.0.1 (httpdns tls self-signed, rcgen), made at
    run time for every TLS listener; returns (cert, key) paths."""
    directory = os.path.join(OUT, "tls")
    shutil.rmtree(directory, ignore_errors=True)
    subprocess.run([HTTPDNS, "tls", "self-signed", "--out", directory, "--name", "127.0.0.1"],
                   check=True, capture_output=True)
    return os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")


def dnsdist_pdns_config():
    return "\n".join([
        'setSecurityPollSuffix("")',
        'setACL({"0.0.0.0/0", "::/0"})',
        f'setLocal("127.0.0.1:{PORTS["dnsdist_pdns_dns"]}")',
        f'addDOHLocal("127.0.0.1:{PORTS["dnsdist_pdns"]}", nil, nil, "/dns-query", '
        '{trustForwardedForHeader=true})',
        'setECSSourcePrefixV4(24)',
        f'newServer({{address="127.0.0.1:{PORTS["pdns"]}", useClientSubnet=true, '
        f'checkName="{HOST}."}})',
    ]) + "\n"


def pdns_files(directory, ips):
    """pdns.conf (bind backend) and a zone whose api record is a LUA record steering by
    netmask() over the client subnet dnsdist passes in ECS."""
    os.makedirs(directory, exist_ok=True)
    branches = []
    for rule, nets, zone in STEERING:
        masks = ", ".join(f"'{n}'" for n in nets)
        answer = ", ".join(f"'{ip}'" for ip in ips[zone])
        branches.append(f"if netmask({{{masks}}}) then return {{{answer}}} end")
    default = ", ".join(f"'{ip}'" for ip in ips[DEFAULT_ZONE])
    lua = ";" + " ".join(branches) + f" return {{{default}}}"
    with open(os.path.join(directory, "example.com.zone"), "w") as f:
        f.write(f"""$ORIGIN example.com.
@ 3600 IN SOA ns1.example.com. hostmaster.example.com. 1 3600 600 604800 60
@ 3600 IN NS ns1.example.com.
ns1 3600 IN A 127.0.0.1
api 60 IN LUA A "{lua}"
""")
    with open(os.path.join(directory, "named.conf"), "w") as f:
        f.write(f'zone "example.com" {{ type master; file "{directory}/example.com.zone"; }};\n')
    conf = os.path.join(directory, "pdns.conf")
    with open(conf, "w") as f:
        f.write(f"""launch=bind
bind-config={directory}/named.conf
local-address=127.0.0.1
local-port={PORTS["pdns"]}
enable-lua-records=shared
edns-subnet-processing=yes
security-poll-suffix=
socket-dir={directory}
guardian=no
daemon=no
disable-syslog=yes
loglevel=4
webserver=no
""")
    return directory


# ---------------------------------------------------------------- sections


def fmt_ms(v):
    return "—" if v is None else f"{v:.3f}"


def steering_check(results):
    """Our /resolve answers the STEERING table (so peers get the same table)."""
    ok = True
    for rule, nets, zone in STEERING:
        probe = nets[0].split("/")[0].rsplit(".", 1)[0] + ".9"
        status, _, body = http_get(PORTS["httpdns"], f"/resolve?host={HOST}&ip={probe}")
        got = json.loads(body)["answers"][0]["zone"] if status == 200 else None
        if got != zone:
            ok = False
            print(f"  steering table mismatch: {probe} ({rule}) -> {got}, table says {zone}")
    results["steering_table_matches_resolve"] = ok


def run_throughput(args, results):
    """Ceiling (axum hello) vs /resolve, DoH vs DoH: HTTP/1.1 (wrk), h2c (h2load), the
    same over TLS 1.3 (h2load h2 and --h1; bench-tls-reconnect with a new resumed
    connection every RECONNECT_EVERY requests); then classic DNS over UDP (dnsperf)."""
    keys = set(args.keys)
    ips = zone_ips()
    xff = f"X-Forwarded-For: {CLIENT_IP}"
    doh = doh_path(HOST)
    doh_headers = [xff, "Accept: application/dns-message"]
    rows = results.setdefault("throughput", {})
    cert = make_cert()
    tls = client_tls(cert[0])
    servers = []
    try:
        hello = Server("hello", [HELLO, f"127.0.0.1:{PORTS['hello']}",
                                 f"127.0.0.1:{PORTS['hello_tls']}", cert[0], cert[1]])
        servers.append(hello)
        wait_http(PORTS["hello"])
        ours = start_httpdns("example", PORTS["httpdns"], PORTS["httpdns_admin"],
                             os.path.join(ROOT, "zones"), dns_port=PORTS["httpdns_dns"])
        servers.append(ours)
        # The TLS rows' httpdns: the same zones, its public listener over TLS.
        ours_tls = start_httpdns("example-tls", PORTS["httpdns_tls"], PORTS["httpdns_tls_admin"],
                                 os.path.join(ROOT, "zones"), cert=cert)
        servers.append(ours_tls)
        steering_check(results)
        status, headers, body = http_get(PORTS["httpdns"], doh, {"Accept": "application/dns-message",
                                                                  "X-Forwarded-For": CLIENT_IP})
        our_doh = status == 200 and headers.get("content-type", headers.get("Content-Type", "")) \
            .startswith("application/dns-message")
        results["our_doh"] = our_doh
        if our_doh:
            results["our_doh_answer"] = dns_answer_ips(body)

        # (label, server, port, path, headers, TLS port, TLS server or None)
        targets = [
            ("axum hello (ceiling)", hello, PORTS["hello"], "/", [xff],
             PORTS["hello_tls"], hello),
            ("httpdns /resolve", ours, PORTS["httpdns"], f"/resolve?host={HOST}", [xff],
             PORTS["httpdns_tls"], ours_tls),
            ("httpdns DoH", ours if our_doh else None, PORTS["httpdns"], doh, doh_headers,
             PORTS["httpdns_tls"], ours_tls),
        ]
        # Peers: started for their rows only, so each has the server CPU to itself.
        peer_dir = os.path.join(OUT, "peers")
        os.makedirs(peer_dir, exist_ok=True)
        if shutil.which("dnsdist") and not args.no_peers:
            targets.append(("dnsdist DoH (SpoofAction)", "dnsdist_spoof",
                            PORTS["dnsdist_spoof"], doh, doh_headers,
                            PORTS["dnsdist_spoof_tls"], "dnsdist_spoof"))
            if shutil.which("pdns_server"):
                targets.append(("dnsdist DoH → PowerDNS LUA", "dnsdist_pdns",
                                PORTS["dnsdist_pdns"], doh, doh_headers, None, None))

        # The peak rows (ROUND_KEYS) are measured in rounds, every server once per round
        # in turn, and each row keeps its median round: the VM's speed drifts by a third
        # within minutes, and servers measured minutes apart would carry that drift into
        # their ratios. The rows that depend on a peak (half of it) or are slow to repeat
        # (reconnects) are measured once, in the last round.
        http_keys = keys - {"udp"}
        samples = {}
        rounds = args.rounds if http_keys else 0
        for rnd in range(rounds):
            last = rnd == rounds - 1
            print(f"  round {rnd + 1} of {rounds}", flush=True)
            for label, server, port, path, headers, tls_port, tls_server in targets:
                if server is None:
                    rows[label] = None
                    continue
                peer = start_peer(server, ips, cert, peer_dir)
                pids = [p.pid for p in peer] if peer else [server.pid]
                tls_pids = pids if peer else ([tls_server.pid] if tls_server else [])
                try:
                    answer = checked_answer(label, port, path, headers, waiting=bool(peer))
                    if tls_port and rnd == 0 and keys & set(TLS_KEYS):
                        check_tls_answer(label, tls_port, path, headers, tls, answer)
                    runs = samples.setdefault(label, {})
                    if "h1" in keys:
                        runs.setdefault("h1", []).append(
                            wrk(port, path, pids, args.conns, args.round_duration, headers))
                    if "h2c" in keys:
                        runs.setdefault("h2c", []).append(h2load_at_peak(
                            "h2c", port, path, pids, args, headers, streams=args.streams))
                    if tls_port:
                        for key, h1, streams in (("h2_tls", False, args.streams),
                                                 ("h1_tls", True, 1)):
                            if key in keys:
                                runs.setdefault(key, []).append(h2load_at_peak(
                                    key, tls_port, path, tls_pids, args, headers,
                                    streams=streams, h1=h1, tls=True))
                    if not last:
                        continue
                    row = {"answer": answer}
                    row.update({key: median_run(r) for key, r in runs.items()})
                    if tls_port and "h1_tls_reconnect" in keys and \
                            label in ("httpdns /resolve", "dnsdist DoH (SpoofAction)"):
                        try:
                            row["h1_tls_reconnect"] = tls_reconnect(
                                tls_port, path, tls_pids, args.conns, args.duration, cert[0],
                                headers)
                        except RuntimeError as e:
                            row["h1_tls_reconnect"] = {"error": str(e).splitlines()[0]}
                    rows[label] = row
                    print_row(label, row)
                finally:
                    for p in peer:
                        p.stop()
        if "h1_half" in keys:
            half = [(label, port, path, headers) for label, _, port, path, headers, _, _ in targets
                    if label in ("axum hello (ceiling)", "httpdns /resolve")
                    and "rps" in (rows.get(label) or {}).get("h1", {})]
            pids = {"axum hello (ceiling)": [hello.pid], "httpdns /resolve": [ours.pid]}
            for rnd in range(args.latency_rounds):
                print(f"  half of peak, round {rnd + 1} of {args.latency_rounds}", flush=True)
                for label, port, path, headers in half:
                    half_of_peak(port, path, pids[label], headers, args,
                                 rows[label]["h1"]["rps"], rows[label].setdefault("h1_half", {}),
                                 burst=rnd == 0)
            for label, *_ in half:
                rows[label]["h1_half"] = {conns: median_latency(runs) for conns, runs
                                          in rows[label]["h1_half"].items()}
                print(f"  {label} half of peak: " + "; ".join(
                    f"{conns} conns p99 {fmt_ms(h.get('p99_ms'))} ms (rounds "
                    f"{' / '.join(fmt_ms(x) for x in h['all_p99_ms'])})"
                    for conns, h in rows[label]["h1_half"].items()), flush=True)
        if "udp" in keys:
            run_udp(args, results, ips, ours)
    finally:
        for s in servers:
            s.stop()


def http_answer(path, body):
    """The IPs an HTTP row's answer carries (DoH wire or /resolve JSON), for the record."""
    if "dns-query" in path:
        return dns_answer_ips(body)
    if "resolve" in path:
        return json.loads(body)["answers"][0]["ips"]
    return None


def start_peer(server, ips, cert, peer_dir):
    """Starts a peer row's servers (dnsdist, or dnsdist in front of PowerDNS); [] for our
    own servers, which run for the whole section."""
    if server == "dnsdist_spoof":
        conf = os.path.join(peer_dir, "dnsdist-spoof.conf")
        with open(conf, "w") as f:
            f.write(dnsdist_spoof_config(ips, cert))
        return [Server("dnsdist-spoof", ["dnsdist", "-C", conf, "--supervised",
                                         "--disable-syslog"])]
    if server == "dnsdist_pdns":
        pdir = pdns_files(os.path.join(peer_dir, "pdns"), ips)
        conf = os.path.join(peer_dir, "dnsdist-pdns.conf")
        with open(conf, "w") as f:
            f.write(dnsdist_pdns_config())
        return [Server("pdns", ["pdns_server", f"--config-dir={pdir}"]),
                Server("dnsdist-pdns", ["dnsdist", "-C", conf, "--supervised",
                                        "--disable-syslog"])]
    return []


def checked_answer(label, port, path, headers, waiting):
    """The row's answer, after the server answers 200; `waiting` for a peer just started
    (dnsdist answers 403 until its health check marks the backend up, and PowerDNS may
    take seconds to start on a busy machine)."""
    request_headers = dict(h.split(": ", 1) for h in headers)
    if waiting:
        wait_port(port)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if http_get(port, path, request_headers)[0] == 200:
                break
            time.sleep(0.2)
    status, _, body = http_get(port, path, request_headers)
    if status != 200:
        raise RuntimeError(f"{label}: {path} answered {status}: {body[:200]!r}")
    return http_answer(path, body)


def check_tls_answer(label, port, path, headers, tls, answer):
    """The TLS listener gives the plaintext row's answer."""
    status, _, body = http_get(port, path, dict(h.split(": ", 1) for h in headers), tls=tls)
    same = status == 200 and sorted(http_answer(path, body) or []) == sorted(answer or [])
    if not same:
        raise RuntimeError(f"{label} over TLS on {port}: {status}, answer "
                           f"{http_answer(path, body) if status == 200 else body[:200]!r}, "
                           f"plaintext answer {answer}")


def middle_run(runs, goodness):
    """The median run by `goodness`, the worse of the two middle ones for an even count
    (a failed run has the least goodness and counts as the worst)."""
    return sorted(runs, key=goodness)[(len(runs) - 1) // 2]


def median_run(runs):
    """The run with the median requests/s (the lower middle of an even count), with every
    run's requests/s beside it; a failed run sorts first."""
    return dict(middle_run(runs, lambda r: r.get("rps", 0)),
                all_rps=[r.get("rps") for r in runs])


def half_of_peak(port, path, pids, headers, args, peak_rps, runs, burst):
    """One round of the fixed rate at half of the peak, with the throughput connection
    count and with fewer, each run appended to `runs[conns]`. bench-paced spaces
    requests evenly (as wrk2 does) and counts from each one's due instant; h2load --rps
    (`burst`, once), kept beside it, paces each connection on a timer, all together, so
    with many connections its p99 measures its own bursts."""
    half = peak_rps / 2
    for conns in sorted({args.conns, args.latency_conns}, reverse=True):
        per_conn = max(1, round(half / conns))
        r = paced(port, path, pids, conns, args.duration, per_conn * conns, headers)
        if burst:
            log = os.path.join(OUT, f"latency-{port}-{conns}.log")
            if os.path.exists(log):
                os.remove(log)
            b = h2load(port, path, pids, conns, args.duration, headers, h1=True,
                       rps_per_conn=per_conn, log_file=log)
            r["h2load"] = {k: b.get(k) for k in
                           ("rps", "p50_ms", "p99_ms", "p999_ms", "server_cpu")}
        runs.setdefault(str(conns), []).append(r)


def median_latency(runs):
    """The run with the median p99 (the upper middle of an even count; a failed run
    sorts last), with every run's p99 in the order measured: a ten-second window's p99
    at half of peak turns on how many of this VM's multi-millisecond stalls of the
    server's CPU land in it (BENCH.md), so one window is a draw, not a measurement.
    The h2load burst figures, taken in the first round, stay beside it."""
    def goodness(r):
        return -r["p99_ms"] if r.get("p99_ms") is not None else float("-inf")
    kept = dict(middle_run(runs, goodness), all_p99_ms=[r.get("p99_ms") for r in runs])
    burst = next((r["h2load"] for r in runs if "h2load" in r), None)
    if burst is not None:
        kept["h2load"] = burst
    return kept


def run_udp(args, results, ips, ours):
    """Classic DNS over UDP: httpdns, gdnsd (geoip plugin, `nets` map) and dnsdist
    (ECS-tagged SpoofAction), all steering by the same STEERING table, for the same
    ECS client, under the same dnsperf load. Each must first answer the client's home
    zone's IPv4 endpoints; a server that answers otherwise stops the run."""
    rows = results.setdefault("throughput", {})
    want = set(ips[home_zone(CLIENT_IP)])
    peer_dir = os.path.join(OUT, "peers")
    os.makedirs(peer_dir, exist_ok=True)
    targets = [("httpdns UDP", None, PORTS["httpdns_dns"])]
    if not args.no_peers:
        targets += [("gdnsd UDP", "gdnsd", PORTS["gdnsd"]),
                    ("dnsdist UDP", "dnsdist", PORTS["dnsdist_udp"])]
    for label, peer_name, port in targets:
        if peer_name and not shutil.which(peer_name):
            print(f"  {label}: {peer_name} is not installed; row skipped", flush=True)
            rows[label] = None
            continue
        peer = None
        if peer_name == "gdnsd":
            gdir = gdnsd_files(os.path.join(peer_dir, "gdnsd"), ips)
            peer = Server("gdnsd", ["gdnsd", "-c", gdir, "start"])
        elif peer_name == "dnsdist":
            conf = os.path.join(peer_dir, "dnsdist-udp.conf")
            with open(conf, "w") as f:
                f.write(dnsdist_udp_config(ips))
            peer = Server("dnsdist-udp", ["dnsdist", "-C", conf, "--supervised",
                                          "--disable-syslog"])
        pids = [peer.pid] if peer else [ours.pid]
        try:
            answer = wait_udp(port)
            if peer and peer.proc.poll() is not None:
                # Something else answers on the port (another instance, say).
                raise RuntimeError(f"{label}: {peer_name} exited (status {peer.proc.returncode}); "
                                   f"see {peer.log.name}")
            if not answer or not set(answer) <= want:
                raise RuntimeError(f"{label}: {HOST} A for ECS {CLIENT_IP}/{ECS_PREFIX} answered "
                                   f"{answer}, not the {home_zone(CLIENT_IP)} endpoints "
                                   f"{sorted(want)}; see {LOGS}")
            log = os.path.join(OUT, f"dnsperf-{port}.log")
            row = {"answer": answer,
                   "udp": dnsperf(port, pids, args.duration, args.udp_clients,
                                  args.udp_outstanding, log)}
            rows[label] = row
            u = row["udp"]
            print(f"  {label}: {u['rps']:,.0f} q/s p99 {fmt_ms(u['p99_ms'])} ms (server CPU "
                  f"{u['server_cpu']:.0f}%, dnsperf {u['gen_cpu']:.0f}%, lost {u['lost']}, "
                  f"errors {u['errors']}); answer {answer}", flush=True)
        finally:
            if peer:
                peer.stop()


def home_zone(ip):
    """The zone STEERING gives an IPv4 client (first match wins; DEFAULT_ZONE if none)."""
    addr = struct.unpack("!I", socket.inet_aton(ip))[0]
    for _, nets, zone in STEERING:
        for net in nets:
            base, bits = net.split("/")
            mask = (0xFFFFFFFF << (32 - int(bits))) & 0xFFFFFFFF
            if addr & mask == struct.unpack("!I", socket.inet_aton(base))[0] & mask:
                return zone
    return DEFAULT_ZONE


def h2load_at_peak(name, port, path, pids, args, headers, **options):
    """h2load at full rate with its per-request log, for p50/p99/p99.9 (h2load itself
    prints only mean and sd); the log (tens of MB at full rate) is dropped once read.
    A failed run is recorded as {"error": ...}, not raised."""
    log = os.path.join(OUT, f"{name}-{port}.log")
    try:
        return h2load(port, path, pids, args.conns, args.round_duration, headers,
                      log_file=log, **options)
    except RuntimeError as e:
        return {"error": str(e).splitlines()[0]}
    finally:
        if os.path.exists(log):
            os.remove(log)


def print_row(label, row):
    parts = []
    h1 = row.get("h1")
    if h1:
        parts.append(f"h1 {h1.get('rps', 0):,.0f}/s p99 {fmt_ms(h1.get('p99_ms'))} ms "
                     f"(server CPU {h1.get('server_cpu', 0):.0f}%, wrk {h1.get('gen_cpu', 0):.0f}%, "
                     f"errors {h1.get('errors')})")
    for key in ("h2c",) + TLS_KEYS:
        r = row.get(key)
        if r is None:
            continue
        if "error" in r:
            parts.append(f"{key} error: {r['error']}")
            continue
        text = (f"{key} {r.get('rps', 0):,.0f}/s p99 {fmt_ms(r.get('p99_ms'))} ms "
                f"(server CPU {r.get('server_cpu', 0):.0f}%, generator {r.get('gen_cpu', 0):.0f}%")
        if key == "h1_tls_reconnect":
            text += f", resumed {r['resumed_pct']:.1f}% of {r['handshakes']} handshakes"
        parts.append(text + f", errors {r.get('errors')})")
    print(f"  {label}: {'; '.join(parts)}; answer {row.get('answer')}", flush=True)


def run_scale(args, results):
    """100,000 domains over 50 zones and 2,000 endpoints: load, reload, RSS, q/s."""
    zones_dir = os.path.join(OUT, "scale-zones")
    gen = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "gen_zones.py"),
                          zones_dir, "--domains", str(args.scale_domains)],
                         capture_output=True, text=True, check=True)
    meta = json.loads(gen.stdout.strip().splitlines()[-1])
    sample = os.path.join(OUT, "scale-paths.txt")
    with open(sample, "w") as f:
        for host in meta["sample_hosts"]:
            f.write(f"/resolve?host={host}\n")
    example_paths = os.path.join(OUT, "example-paths.txt")
    with open(example_paths, "w") as f:
        for host in ["api.example.com", "img.example.com"]:
            f.write(f"/resolve?host={host}\n")
    xff = [f"X-Forwarded-For: {CLIENT_IP}"]
    scale = results.setdefault("scale", {"config": meta})

    # Cold load: process start until /healthz answers (it binds after loading).
    peak = [0]
    stop_sampling = threading.Event()
    big = None

    def sample_rss():
        while not stop_sampling.is_set():
            try:
                peak[0] = max(peak[0], rss_kb(big.pid))
            except (OSError, AttributeError):
                pass
            time.sleep(0.01)

    others = []
    started = time.monotonic()
    config = httpdns_config("scale", PORTS["scale"], PORTS["scale_admin"], zones_dir)
    big = Server("scale", [HTTPDNS, "--config", config, "--no-watch"],
                 env={"HTTPDNS_ADMIN_TOKEN": ADMIN_TOKEN})
    sampler = threading.Thread(target=sample_rss, daemon=True)
    sampler.start()
    try:
        wait_http(PORTS["scale"], "/healthz", timeout=300)
        scale["cold_load_s"] = time.monotonic() - started
        time.sleep(0.5)
        scale["rss_after_load_mb"] = rss_kb(big.pid) / 1024
        scale["peak_rss_cold_load_mb"] = rss_kb(big.pid, "VmHWM") / 1024
        reloads = []
        for _ in range(3):
            t0 = time.monotonic()
            status, _, body = http_get(PORTS["scale_admin"], "/admin/reload",
                                       {"Authorization": f"Bearer {ADMIN_TOKEN}"}, "POST")
            reloads.append(time.monotonic() - t0)
            if status != 200:
                raise RuntimeError(f"reload failed: {status} {body[:300]!r}")
        scale["reload_s"] = statistics.median(reloads)
        scale["reload_s_all"] = reloads
        scale["rss_after_reloads_mb"] = rss_kb(big.pid) / 1024
        scale["peak_rss_mb"] = rss_kb(big.pid, "VmHWM") / 1024
        # Throughput: the scale config, the example config (same rotating-host script)
        # and a control (the same 100,000 domains with 4 endpoints per zone, to tell the
        # cost of many domains from the cost of ranking 40-endpoint zones), in
        # alternating rounds so drift on a shared machine hits all three alike.
        small_dir = os.path.join(OUT, "scale-zones-small")
        subprocess.run([sys.executable, os.path.join(ROOT, "bench", "gen_zones.py"),
                        small_dir, "--domains", str(args.scale_domains), "--endpoints", "200"],
                       capture_output=True, text=True, check=True)
        others.append(start_httpdns("example-scale", PORTS["scale_example"],
                                    PORTS["scale_example_admin"], os.path.join(ROOT, "zones")))
        others.append(start_httpdns("scale-small", PORTS["scale_small"],
                                    PORTS["scale_small_admin"], small_dir))
        scale["example_rss_mb"] = rss_kb(others[0].pid) / 1024
        runs = {"scale_h1": [], "example_h1": [], "small_zones_h1": []}
        each = max(3, args.duration // 2)
        for _ in range(args.scale_rounds):
            for key, port, pid, paths in [
                ("scale_h1", PORTS["scale"], big.pid, sample),
                ("example_h1", PORTS["scale_example"], others[0].pid, example_paths),
                ("small_zones_h1", PORTS["scale_small"], others[1].pid, sample),
            ]:
                runs[key].append(wrk(port, "/", [pid], args.conns, each, xff, paths_file=paths))
            scale["rss_under_load_mb"] = max(scale.get("rss_under_load_mb", 0),
                                             rss_kb(big.pid) / 1024)
        for key, rows in runs.items():
            best = sorted(rows, key=lambda r: r["rps"])[len(rows) // 2]
            scale[key] = dict(best, all_rps=[r["rps"] for r in rows])
        scale["peak_rss_mb"] = max(scale["peak_rss_mb"], peak[0] / 1024)
    finally:
        stop_sampling.set()
        big.stop()
        for o in others:
            o.stop()
    print(f"  scale: cold load {scale['cold_load_s']:.2f}s, reload {scale['reload_s']:.2f}s, "
          f"RSS {scale['rss_after_load_mb']:.0f} MB after load, peak {scale['peak_rss_mb']:.0f} MB; "
          f"{scale['scale_h1']['rps']:,.0f}/s vs example {scale['example_h1']['rps']:,.0f}/s",
          flush=True)


class Prober:
    """Asks /resolve in a loop on keep-alive connections, recording (sent, answer)."""

    def __init__(self, port, path, threads=2):
        self.port, self.path = port, path
        self.samples = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]
        for t in self.threads:
            t.start()

    def _run(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        while not self.stop.is_set():
            sent = time.monotonic()
            try:
                conn.request("GET", self.path)
                body = json.loads(conn.getresponse().read())
            except (OSError, http.client.HTTPException, ValueError):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                continue
            with self.lock:
                self.samples.append((sent, body["answers"][0]))

    def close(self):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=10)

    def clean_after(self, t0, is_bad):
        """Seconds from t0 until the first probe sent after which no answer is bad;
        also the number of probes sent after t0."""
        with self.lock:
            after = [(s, a) for s, a in self.samples if s >= t0]
        last_bad = max((s for s, a in after if is_bad(a)), default=None)
        if last_bad is None:
            first = min((s for s, _ in after), default=t0)
            return first - t0, len(after)
        later = [s for s, _ in after if s > last_bad]
        return ((min(later) if later else last_bad) - t0), len(after)


def background_load(port, path, seconds, headers=()):
    cmd = ["taskset", "-c", LOAD_CPU, "wrk", "-t1", "-c16", f"-d{seconds}s"]
    for h in headers:
        cmd += ["-H", h]
    cmd.append(f"http://127.0.0.1:{port}{path}")
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def run_failover(args, results):
    fo = results.setdefault("failover", {})
    # (a) Drain through the admin API, under load.
    ours = start_httpdns("failover", PORTS["httpdns"], PORTS["httpdns_admin"],
                         os.path.join(ROOT, "zones"))
    load = None
    try:
        load = background_load(PORTS["httpdns"], f"/resolve?host={HOST}", 30,
                               [f"X-Forwarded-For: {CLIENT_IP}"])
        prober = Prober(PORTS["httpdns"], f"/resolve?host={HOST}&ip={CLIENT_IP}")
        auth = {"Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": "application/json"}
        visible, admin_rtt, probes = [], [], []
        for _ in range(args.failover_rounds):
            time.sleep(0.5)
            t0 = time.monotonic()
            status, _, body = http_get(PORTS["httpdns_admin"], "/admin/zones/gz-telecom/drain",
                                       auth, "POST", json.dumps({"weight": 0, "reason": "bench"}))
            admin_rtt.append(time.monotonic() - t0)
            if status != 200:
                raise RuntimeError(f"drain failed: {status} {body!r}")
            time.sleep(0.5)
            took, n = prober.clean_after(t0, lambda a: a.get("zone") == "gz-telecom")
            visible.append(took)
            probes.append(n)
            http_get(PORTS["httpdns_admin"], "/admin/zones/gz-telecom/drain", auth, "DELETE")
        prober.close()
        fo["drain"] = {"visible_ms": [v * 1000 for v in visible],
                       "admin_rtt_ms": [v * 1000 for v in admin_rtt],
                       "probes_after": probes}
    finally:
        if load:
            load.terminate()
            load.wait()
        ours.stop()
    print(f"  drain visible after: max {max(fo['drain']['visible_ms']):.1f} ms "
          f"(admin round trip max {max(fo['drain']['admin_rtt_ms']):.1f} ms)", flush=True)

    # (b) Kill a real endpoint listener; tcp health checks on 127.0.1.x.
    interval, rise, fall = 200, 2, 2
    hc_dir = os.path.join(OUT, "hc-zones")
    os.makedirs(hc_dir, exist_ok=True)
    port = PORTS["hc_endpoint"]
    check = (f'{{ type = "tcp", port = {port}, interval_ms = {interval}, timeout_ms = 100, '
             f'rise = {rise}, fall = {fall} }}')
    with open(os.path.join(hc_dir, "hc.toml"), "w") as f:
        f.write(f'''[[zone]]
name = "home"
endpoints = ["127.0.1.11", "127.0.1.12", "127.0.1.13"]
failover = ["backup"]
health_check = {check}

[[zone]]
name = "backup"
endpoints = ["127.0.1.21"]
health_check = {check}

[[domain]]
name = "hc.bench.test"
ttl = 5
zones = ["home", "backup"]
default_zone = "home"
''')
    listeners = {}

    def listen(ip):
        code = ("import socket,sys\n"
                "s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
                f"s.bind(('{ip}', {port})); s.listen(128)\n"
                "while True:\n  c,_=s.accept(); c.close()\n")
        listeners[ip] = subprocess.Popen([sys.executable, "-c", code])

    for ip in ["127.0.1.11", "127.0.1.12", "127.0.1.13", "127.0.1.21"]:
        listen(ip)
    hc = start_httpdns("health", PORTS["hc"], PORTS["hc_admin"], hc_dir)
    load = None
    try:
        load = background_load(PORTS["hc"], "/resolve?host=hc.bench.test", 60)
        prober = Prober(PORTS["hc"], "/resolve?host=hc.bench.test&ip=192.0.2.1")
        time.sleep(1.0)
        out = []
        victim = "127.0.1.11"
        for _ in range(args.failover_rounds):
            # Wait until the victim is in answers (up), then kill its listener.
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                with prober.lock:
                    last = prober.samples[-1][1] if prober.samples else {}
                if victim in last.get("ips", []):
                    break
                time.sleep(0.02)
            time.sleep(0.3)
            t0 = time.monotonic()
            listeners[victim].kill()
            listeners[victim].wait()
            time.sleep(interval * (fall + 3) / 1000)
            took, _ = prober.clean_after(t0, lambda a: victim in a.get("ips", []))
            out.append(took * 1000)
            listen(victim)
            time.sleep(interval * (rise + 2) / 1000)
        prober.close()
        fo["endpoint"] = {"out_ms": out, "interval_ms": interval, "rise": rise, "fall": fall,
                          "bound_ms": fall * interval + interval}
    finally:
        if load:
            load.terminate()
            load.wait()
        hc.stop()
        for p in listeners.values():
            p.kill()
            p.wait()
    print(f"  dead endpoint out after: max {max(fo['endpoint']['out_ms']):.0f} ms "
          f"(bound {fo['endpoint']['bound_ms']} ms)", flush=True)


# ---------------------------------------------------------------- report


def machine():
    model = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem = int(f.readline().split()[1]) // 1024 // 1024
    return f"{os.cpu_count()} × {model}, {mem} GiB RAM, Linux {platform.release()}"


def busy_compilers():
    count = 0
    for name in ("rustc", "cargo", "javac"):
        out = subprocess.run(["pgrep", "-x", name], capture_output=True, text=True).stdout
        count += len(out.split())
    return count


def ratio(a, b):
    return f"{100 * a / b:.0f}%" if a and b else "n/a"


def report(results, args):
    t = results.get("throughput", {})
    lines = []
    add = lines.append
    add(f"Run {results['date']} on {results['machine']}; commit {results['commit']}.")
    add(f"Command: `bash bench/run.sh` (peak rows h1, h2c, h2_tls, h1_tls: median of "
        f"{args.rounds} rounds of {args.round_duration}s, every server once per round in "
        f"turn; rows measured once: {args.duration}s; {args.conns} "
        f"connections, h2c {args.streams} streams/connection; server on CPU {SERVER_CPU}, "
        f"load generator on CPU {LOAD_CPU}). Load average at start {results['loadavg']}; "
        f"compiler processes of other users at start/end: {results['compilers_start']}/"
        f"{results.get('compilers_end', '?')}.")
    add("")
    if "criterion" in results:
        add("| scheduler hot path (criterion) | ns/op | target |")
        add("|---|---:|---|")
        for name, ns in results["criterion"].items():
            add(f"| {name} | {ns:,.0f} | < 2,000 {'✅' if ns < 2000 else '❌'} |")
        add("")
    if any(row and "h1" in row for row in t.values()):
        hello = (t.get("axum hello (ceiling)") or {}).get("h1", {}).get("rps")
        dd = (t.get("dnsdist DoH (SpoofAction)") or {}).get("h1", {}).get("rps")
        dd2 = (t.get("dnsdist DoH (SpoofAction)") or {}).get("h2c", {}).get("rps")
        add("| server (same client IP, same answer table) | HTTP/1.1 q/s (wrk) | % of hello | "
            "× dnsdist | p50 / p99 / p99.9 ms at peak | server CPU | h2c q/s (h2load) | "
            "× dnsdist h2c | answer |")
        add("|---|---:|---:|---:|---|---:|---:|---:|---|")
        for label, row in t.items():
            if row is None and "UDP" not in label:
                add(f"| {label} | n/a (no DoH in this build) | | | | | | | |")
                continue
            if not row or "h1" not in row:
                continue
            h1, h2 = row["h1"], row.get("h2c", {})
            x = f"{h1['rps'] / dd:.2f}×" if dd else "n/a"
            x2 = f"{h2['rps'] / dd2:.2f}×" if dd2 and h2.get("rps") else "n/a"
            h2s = f"{h2['rps']:,.0f}" if h2.get("rps") else "n/a"
            err = f" ({h1['errors']} errors)" if h1["errors"] else ""
            bound = " **generator-bound**" if h1["gen_cpu"] > 90 and h1["server_cpu"] < 90 else ""
            add(f"| {label} | {h1['rps']:,.0f}{err} | {ratio(h1['rps'], hello)} | {x} | "
                f"{fmt_ms(h1['p50_ms'])} / {fmt_ms(h1['p99_ms'])} / {fmt_ms(h1['p999_ms'])} | "
                f"{h1['server_cpu']:.0f}% (wrk {h1['gen_cpu']:.0f}%){bound} | {h2s} | {x2} | "
                f"{', '.join(row.get('answer') or [])} |")
        add("")
    if any(row and "h1_half" in row for row in t.values()):
        add("| fixed rate at half of peak (bench-paced: evenly spaced, latency from the due "
            "instant; the round with the median p99) | connections | target q/s | achieved | "
            "p50 ms | p99 ms | p99 ms of each round | p99.9 ms | "
            "generator's own send lag p99 ms | server CPU | h2load --rps (all connections "
            "at once) p50 / p99 ms |")
        add("|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---|")
        for label, row in t.items():
            for conns, h in (row or {}).get("h1_half", {}).items():
                burst = h.get("h2load") or {}
                each = " / ".join(fmt_ms(x) for x in h.get("all_p99_ms", [h.get("p99_ms")]))
                add(f"| {label} | {conns} | {h['target_rps']:,} | {h['rps']:,.0f} | "
                    f"{fmt_ms(h.get('p50_ms'))} | {fmt_ms(h.get('p99_ms'))} | {each} | "
                    f"{fmt_ms(h.get('p999_ms'))} | {fmt_ms(h.get('send_lag_p99_ms'))} | "
                    f"{h['server_cpu']:.0f}% | {fmt_ms(burst.get('p50_ms'))} / "
                    f"{fmt_ms(burst.get('p99_ms'))} |")
        add("")
    lines.extend(rounds_table(t))
    hello2 = ((t.get("axum hello (ceiling)") or {}).get("h2c") or {}).get("rps")
    if hello2:
        add(f"h2c ceiling (hello): {hello2:,.0f} q/s; /resolve h2c is "
            f"{ratio((t.get('httpdns /resolve') or {}).get('h2c', {}).get('rps'), hello2)} of it.")
        add("")
    lines.extend(tls_table(t, args))
    lines.extend(udp_table(t, args))
    s = results.get("scale")
    if s and "cold_load_s" in s:
        c = s["config"]
        drop = 100 * (1 - s["scale_h1"]["rps"] / s["example_h1"]["rps"])
        add(f"| scale: {c['domains']:,} domains, {c['zones']} zones, {c['endpoints']:,} endpoints "
            f"({c['bytes'] / 1e6:.0f} MB of TOML in {c['files']} files) | value | target |")
        add("|---|---:|---|")
        add(f"| cold load (start → /healthz answers) | {s['cold_load_s']:.2f} s | < 2 s "
            f"{'✅' if s['cold_load_s'] < 2 else '❌'} |")
        add(f"| reload (POST /admin/reload, median of 3) | {s['reload_s']:.2f} s | |")
        add(f"| RSS after load / after 3 reloads / under query load | {s['rss_after_load_mb']:.0f} / "
            f"{s['rss_after_reloads_mb']:.0f} / {s['rss_under_load_mb']:.0f} MB | < 300 MB "
            f"{'✅' if max(s['rss_after_load_mb'], s['rss_under_load_mb']) < 300 else '❌'} |")
        add(f"| peak RSS (during load and reloads, VmHWM) | {s['peak_rss_mb']:.0f} MB | < 300 MB "
            f"{'✅' if s['peak_rss_mb'] < 300 else '❌'} |")
        add(f"| /resolve q/s, rotating hosts, median of {len(s['scale_h1']['all_rps'])} alternating "
            f"runs: scale vs example config | "
            f"{s['scale_h1']['rps']:,.0f} vs {s['example_h1']['rps']:,.0f} ({-drop:+.1f}%) | "
            f"drop ≤ 10% {'✅' if drop <= 10 else '❌'} |")
        if "small_zones_h1" in s:
            small = s["small_zones_h1"]["rps"]
            add(f"| control: same 100,000 domains, 4 endpoints per zone (200 in all) | "
                f"{small:,.0f} ({100 * (small / s['example_h1']['rps'] - 1):+.1f}% vs example) | |")
        add("")
    f = results.get("failover")
    if f and "drain" in f:
        d, e = f["drain"], f.get("endpoint")
        add("| failover under load | median | max | target |")
        add("|---|---:|---:|---|")
        add(f"| drain (POST /admin/zones/gz-telecom/drain, weight 0) → no answer names the zone | "
            f"{statistics.median(d['visible_ms']):.1f} ms | {max(d['visible_ms']):.1f} ms | "
            f"< 100 ms {'✅' if max(d['visible_ms']) < 100 else '❌'} |")
        add(f"| … of which the admin call's own round trip (state file fsync) | "
            f"{statistics.median(d['admin_rtt_ms']):.1f} ms | {max(d['admin_rtt_ms']):.1f} ms | |")
        if e:
            add(f"| dead endpoint (listener killed) → out of answers; tcp check interval "
                f"{e['interval_ms']} ms, rise {e['rise']}, fall {e['fall']} | "
                f"{statistics.median(e['out_ms']):.0f} ms | {max(e['out_ms']):.0f} ms | "
                f"≤ fall × interval + interval = {e['bound_ms']} ms "
                f"{'✅' if max(e['out_ms']) <= e['bound_ms'] else '❌'} |")
        add("")
    return "\n".join(lines)


def times(a, b):
    """a as a multiple of b ("1.23×"), or n/a when either is missing."""
    return f"{a / b:.2f}×" if a and b else "n/a"


def rounds_table(t):
    """Every round's requests/s of the peak rows, in the order measured: how far the
    machine drifted under each median."""
    keys = [k for k in ROUND_KEYS if any(len((row or {}).get(k, {}).get("all_rps") or []) > 1
                                         for row in t.values())]
    if not keys:
        return []
    out = [f"| q/s in each round (the row above is the median) | {' | '.join(keys)} |",
           "|---|" + "---|" * len(keys)]
    for label, row in t.items():
        if not row or not any(k in row for k in keys):
            continue
        cells = [" / ".join("—" if v is None else f"{v / 1000:.1f}k"
                            for v in (row.get(k) or {}).get("all_rps") or []) or "—"
                 for k in keys]
        out.append(f"| {label} | {' | '.join(cells)} |")
    return out + [""]


def tls_table(t, args):
    """The TLS 1.3 keys: h2 and HTTP/1.1 keep-alive (h2load), and HTTP/1.1 with a new
    resumed connection every RECONNECT_EVERY requests; each × dnsdist's same key."""
    keyed = {label: row for label, row in t.items()
             if row and any(k in row for k in TLS_KEYS)}
    if not keyed:
        return []
    dd = t.get("dnsdist DoH (SpoofAction)") or {}
    hello = t.get("axum hello (ceiling)") or {}
    out = [f"| TLS 1.3 (h2load; reconnect: bench-tls-reconnect, new connection every "
           f"{RECONNECT_EVERY} requests, sessions resumed) | key | q/s | % of hello | "
           f"× dnsdist | p50 / p99 ms | server CPU | generator CPU | notes |",
           "|---|---|---:|---:|---:|---|---:|---:|---|"]
    for label, row in keyed.items():
        for key in TLS_KEYS:
            r = row.get(key)
            if r is None:
                continue
            if "error" in r:
                out.append(f"| {label} | {key} | error: {r['error']} | | | | | | |")
                continue
            rps = r.get("rps")
            notes = f"{r['errors']} errors" if r.get("errors") else ""
            if key == "h1_tls_reconnect":
                notes = (f"resumed {r['resumed_pct']:.1f}% of {r['handshakes']:,} handshakes; "
                         f"handshake p99 {fmt_ms(r.get('handshake_p99_ms'))} ms"
                         + (f"; {notes}" if notes else ""))
            elif r.get("gen_cpu", 0) > 90 and r.get("server_cpu", 0) < 90:
                notes = "**generator-bound** " + notes
            out.append(f"| {label} | {key} | {rps:,.0f} | "
                       f"{ratio(rps, (hello.get(key) or {}).get('rps'))} | "
                       f"{times(rps, (dd.get(key) or {}).get('rps'))} | "
                       f"{fmt_ms(r.get('p50_ms'))} / {fmt_ms(r.get('p99_ms'))} | "
                       f"{r.get('server_cpu', 0):.0f}% | {r.get('gen_cpu', 0):.0f}% | {notes} |")
    out.append("")
    return out


def udp_table(t, args):
    """Classic DNS over UDP (dnsperf, one ECS client, one steering table), and httpdns
    UDP × gdnsd and × dnsdist."""
    labels = [label for label in ("httpdns UDP", "gdnsd UDP", "dnsdist UDP") if label in t]
    if not labels:
        return []
    rps = {label: ((t.get(label) or {}).get("udp") or {}).get("rps") for label in labels}
    out = [f"| classic DNS over UDP (dnsperf, ECS {CLIENT_IP}/{ECS_PREFIX}, "
           f"{args.udp_clients} sockets, {args.udp_outstanding} in flight) | q/s | "
           f"× gdnsd | × dnsdist | p50 / p99 / p99.9 ms | server CPU | dnsperf CPU | "
           f"lost / errors | answer |",
           "|---|---:|---:|---:|---|---:|---:|---|---|"]
    for label in labels:
        row = t.get(label)
        if not row:
            out.append(f"| {label} | n/a (not installed) | | | | | | | |")
            continue
        u = row["udp"]
        out.append(f"| {label} | {u['rps']:,.0f} | {times(u['rps'], rps.get('gdnsd UDP'))} | "
                   f"{times(u['rps'], rps.get('dnsdist UDP'))} | {fmt_ms(u['p50_ms'])} / "
                   f"{fmt_ms(u['p99_ms'])} / {fmt_ms(u['p999_ms'])} | {u['server_cpu']:.0f}% | "
                   f"{u['gen_cpu']:.0f}% | {u['lost']} / {u['errors']} | "
                   f"{', '.join(row.get('answer') or [])} |")
    out.append("")
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--duration", type=int, default=int(os.environ.get("DURATION", 10)),
                   help="seconds of each row measured once (half of peak, reconnects, UDP)")
    p.add_argument("--rounds", type=int, default=int(os.environ.get("ROUNDS", 3)),
                   help="rounds of the peak rows (h1, h2c, h2_tls, h1_tls); each keeps its "
                   "median round")
    p.add_argument("--round-duration", type=int,
                   default=int(os.environ.get("ROUND_DURATION", 6)),
                   help="seconds of each peak row in each round")
    p.add_argument("--conns", type=int, default=int(os.environ.get("CONNS", 64)))
    p.add_argument("--streams", type=int, default=int(os.environ.get("STREAMS", 4)))
    p.add_argument("--latency-conns", type=int,
                   default=int(os.environ.get("LATENCY_CONNS", 16)))
    p.add_argument("--latency-rounds", type=int,
                   default=int(os.environ.get("LATENCY_ROUNDS", 3)),
                   help="rounds of the half-of-peak rows, hello and /resolve in turn; each "
                   "keeps its median p99")
    p.add_argument("--scale-domains", type=int, default=100_000)
    p.add_argument("--failover-rounds", type=int, default=5)
    p.add_argument("--scale-rounds", type=int, default=3)
    p.add_argument("--only", default="throughput,scale,failover")
    p.add_argument("--keys", default=",".join(THROUGHPUT_KEYS),
                   help="throughput keys to measure (default all): " + ",".join(THROUGHPUT_KEYS))
    p.add_argument("--udp-clients", type=int, default=int(os.environ.get("UDP_CLIENTS", 16)),
                   help="dnsperf -c: UDP sockets the queries come from")
    p.add_argument("--udp-outstanding", type=int,
                   default=int(os.environ.get("UDP_OUTSTANDING", 200)),
                   help="dnsperf -q: queries kept in flight")
    p.add_argument("--no-peers", action="store_true")
    p.add_argument("--criterion", help="file with `cargo bench --bench scheduler` output")
    args = p.parse_args()
    args.keys = [k for k in args.keys.split(",") if k]
    if min(args.rounds, args.round_duration, args.duration, args.latency_rounds) < 1:
        p.error("--rounds, --round-duration, --duration and --latency-rounds must be at "
                "least 1")
    unknown = set(args.keys) - set(THROUGHPUT_KEYS)
    if unknown:
        p.error(f"--keys: unknown {', '.join(sorted(unknown))}; known: {', '.join(THROUGHPUT_KEYS)}")
    os.makedirs(OUT, exist_ok=True)
    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    results = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(), "commit": commit,
        "loadavg": open("/proc/loadavg").read().split()[0],
        "compilers_start": busy_compilers(),
    }
    if args.criterion and os.path.exists(args.criterion):
        results["criterion"] = parse_criterion(open(args.criterion).read())
    only = args.only.split(",")
    if "throughput" in only:
        print("throughput and latency:", flush=True)
        run_throughput(args, results)
    if "scale" in only:
        print("scale:", flush=True)
        run_scale(args, results)
    if "failover" in only:
        print("failover:", flush=True)
        run_failover(args, results)
    results["compilers_end"] = busy_compilers()
    with open(os.path.join(OUT, "results.json"), "w") as f:
        json.dump(results, f, indent=2)
    table = report(results, args)
    with open(os.path.join(OUT, "report.md"), "w") as f:
        f.write(table + "\n")
    print()
    print(table)


def parse_criterion(text):
    found = {}
    for m in re.finditer(r"^(\S+/\S+)\s*\n?\s*time:\s+\[\S+ \S+ ([\d.]+) (\S+) ", text, re.M):
        value, unit = float(m.group(2)), m.group(3)
        found[m.group(1)] = value * {"ns": 1, "µs": 1e3, "us": 1e3, "ms": 1e6}[unit]
    return found


if __name__ == "__main__":
    main()
