#!/usr/bin/env python3
"""Cuts the small source slices in this directory from the real open-data packages.

Usage: cut-slices.py WORK_DIR   (WORK_DIR as left by geoip/fetch-open-data.sh)
Needs the `maxminddb` Python package for the country slice. Rows are copied verbatim;
only the binary files are turned into text (see README.md here).
"""
import csv, ipaddress, struct, sys
from pathlib import Path

work = Path(sys.argv[1])
out = Path(__file__).parent
V4_IPS = ["202.96.128.86", "123.125.81.6", "211.136.17.107", "202.112.0.1", "8.8.8.8",
          "10.0.0.1", "1.36.0.1", "61.216.1.1",
          # Announcing ASN vs older ISP text (AS4808 unicom read as 电信); a carrier ASN abroad.
          "43.231.164.1", "5.10.137.1"]
V6_IPS = ["240e::1", "2408:8756::1", "2001:da8::1", "2001:4860::1", "2409:8000::1"]
AROUND = 12

# ip2region.db → ip.merge.txt lines (start|end|country|region|province|city|isp)
d = (work / "ip2region/package/data/ip2region.db").read_bytes()
first, last = struct.unpack("<II", d[:8])
n = (last - first) // 12 + 1
def row(i):
    s, e, p = struct.unpack("<III", d[first + i * 12:first + i * 12 + 12])
    off, ln = p & 0xFFFFFF, p >> 24
    return s, e, d[off + 4:off + ln].decode()
def find4(ip):
    ip, lo, hi = int(ipaddress.ip_address(ip)), 0, n - 1
    while lo <= hi:
        m = (lo + hi) // 2
        s, e, _ = row(m)
        if ip < s: hi = m - 1
        elif ip > e: lo = m + 1
        else: return m
rows4 = sorted({i for ip in V4_IPS for i in range(max(0, find4(ip) - AROUND), min(n, find4(ip) + AROUND + 1))})
win4 = [row(i)[:2] for i in rows4]
with open(out / "ip2region.txt", "w") as f:
    for i in rows4:
        s, e, t = row(i)
        f.write(f"{ipaddress.ip_address(s)}|{ipaddress.ip_address(e)}|{t}\n")

# ipv6wry.db → start|area|isp (area keeps its tabs)
d6 = (work / "ip2region/package/data/ipv6wry.db").read_bytes()
offlen, rec, idx = d6[6], struct.unpack("<Q", d6[8:16])[0], struct.unpack("<Q", d6[16:24])[0]
rl = lambda o: int.from_bytes(d6[o:o + offlen], "little")
def cstr(o): return d6[o:d6.index(b"\0", o)].decode()
def area(o): return area(rl(o + 1)) if d6[o] in (1, 2) else cstr(o)
def addr(o):
    if d6[o] == 1: return addr(rl(o + 1))
    a = area(o)
    o = o + 1 + offlen if d6[o] == 2 else d6.index(b"\0", o) + 1
    return a, area(o)
def ent(i):
    o = idx + i * (8 + offlen)
    return struct.unpack("<Q", d6[o:o + 8])[0], rl(o + 8)
def find6(ip):
    ip, l, r = int(ipaddress.ip_address(ip)) >> 64, 0, rec
    while r - l > 1:
        m = (l + r) // 2
        if ip < ent(m)[0]: r = m
        else: l = m
    return l
rows6 = sorted({i for ip in V6_IPS for i in range(max(0, find6(ip) - AROUND), min(rec - 1, find6(ip) + AROUND + 1))})
win6 = []
with open(out / "ipv6wry.txt", "w") as f:
    for i in rows6:
        p, o = ent(i)
        a, isp = addr(o)
        f.write(f"{ipaddress.IPv6Address(p << 64)}|{a}|{isp}\n")
        win6.append((p << 64, (ent(i + 1)[0] << 64) - 1))

def overlaps(s, e, wins): return any(s <= we and e >= ws for ws, we in wins)

for fam, wins in (("ipv4", win4), ("ipv6", win6)):
    src = work / f"asn/package/asn-{fam}.csv"
    with open(src, newline="") as fi, open(out / f"asn-{fam}.csv", "w", newline="") as fo:
        w = csv.writer(fo, lineterminator="\n")
        for r in csv.reader(fi):
            if overlaps(int(ipaddress.ip_address(r[0])), int(ipaddress.ip_address(r[1])), wins):
                w.writerow(r)

import maxminddb
reader = maxminddb.open_database(str(work / "country/package/geo-whois-asn-country.mmdb"))
with open(out / "country.csv", "w") as f:
    for net, rec_ in reader:
        wins = win4 if net.version == 4 else win6
        if overlaps(int(net.network_address), int(net.broadcast_address), wins):
            f.write(f"{net.network_address},{net.broadcast_address},{rec_['country_code']}\n")
