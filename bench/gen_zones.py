#!/usr/bin/env python3
"""Writes a large zones directory for the scale benchmark.

    python3 bench/gen_zones.py OUT_DIR [--domains 100000] [--zones 50] [--endpoints 2000]

50 zones of 40 endpoints (32 IPv4 + 8 IPv6; documentation-style addresses that are
never contacted: no health checks), each failing over to the next two zones; 100,000
domains in 50 files, each served by four zones, with the rule sets real configs repeat
from domain to domain: the shipped api.example.com rules (office CIDR, south telecom,
north unicom, rest of China, overseas), the img.example.com rules (by carrier), a CIDR
split, and default-zone only. Prints one JSON line: counts, bytes and sample hosts.
"""

import argparse
import json
import os
import random
import shutil

SOUTH = '["CN-GD", "CN-GX", "CN-HI", "CN-FJ", "CN-HN", "CN-YN", "CN-GZ", "CN-SC", "CN-CQ"]'
NORTH = '["北京", "天津", "河北", "山西", "内蒙古", "辽宁", "吉林", "黑龙江", "山东", "河南"]'


def rules(template, z):
    if template == 0:
        return f'''[[domain.rule]]
name = "office"
cidr = ["100.64.0.0/10", "2001:db8:ff00::/40"]
zone = "{z[1]}"
[[domain.rule]]
name = "south-telecom"
country = ["CN"]
province = {SOUTH}
carrier = ["telecom"]
zone = "{z[0]}"
[[domain.rule]]
name = "north-unicom"
country = ["CN"]
province = {NORTH}
carrier = ["unicom"]
zone = "{z[2]}"
[[domain.rule]]
name = "china-other"
country = ["CN"]
zone = "{z[1]}"
[[domain.rule]]
name = "overseas"
not_country = ["CN"]
zone = "{z[3]}"
'''
    if template == 1:
        return f'''[[domain.rule]]
name = "telecom"
country = ["CN"]
carrier = ["telecom"]
zone = "{z[0]}"
[[domain.rule]]
name = "unicom"
country = ["CN"]
carrier = ["unicom"]
zone = "{z[2]}"
[[domain.rule]]
name = "overseas"
not_country = ["CN"]
zone = "{z[3]}"
'''
    if template == 2:
        return f'''[[domain.rule]]
name = "south-nets"
cidr = ["202.96.128.0/17", "14.16.0.0/12", "240e::/20"]
zone = "{z[0]}"
[[domain.rule]]
name = "north-nets"
cidr = ["123.112.0.0/12", "202.106.0.0/16", "2408:8000::/20"]
zone = "{z[2]}"
'''
    return ""


def main():
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--domains", type=int, default=100_000)
    p.add_argument("--zones", type=int, default=50)
    p.add_argument("--endpoints", type=int, default=2000)
    p.add_argument("--files", type=int, default=50)
    args = p.parse_args()
    shutil.rmtree(args.out, ignore_errors=True)
    os.makedirs(args.out)
    per_zone = args.endpoints // args.zones
    v6_per_zone = per_zone // 5
    total = 0
    with open(os.path.join(args.out, "zones.toml"), "w") as f:
        for z in range(args.zones):
            eps = [f'"10.{z // 256}.{z % 256}.{i + 1}"' for i in range(per_zone - v6_per_zone)]
            eps += [f'"2001:db8:{z:x}::{i + 1:x}"' for i in range(v6_per_zone)]
            f.write(f'[[zone]]\nname = "z{z:02}"\nendpoints = [{", ".join(eps)}]\n'
                    f'failover = ["z{(z + 1) % args.zones:02}", "z{(z + 2) % args.zones:02}"]\n\n')
        total += f.tell()
    hosts = []
    per_file = -(-args.domains // args.files)
    for n in range(args.files):
        with open(os.path.join(args.out, f"domains-{n:03}.toml"), "w") as f:
            for i in range(n * per_file, min(args.domains, (n + 1) * per_file)):
                host = f"svc{i}.app{i % 997}.example.net"
                hosts.append(host)
                a = (i * 7919) % args.zones
                z = [f"z{(a + k) % args.zones:02}" for k in range(4)]
                zones = ", ".join(f'"{x}"' for x in z)
                f.write(f'[[domain]]\nname = "{host}"\nttl = {60 + (i % 4) * 60}\n'
                        f'zones = [{zones}]\ndefault_zone = "{z[1]}"\n')
                f.write(rules(i % 4, z))
                f.write("\n")
            total += f.tell()
    sample = random.Random(7).sample(hosts, min(1000, len(hosts)))
    print(json.dumps({"domains": len(hosts), "zones": args.zones,
                      "endpoints": per_zone * args.zones, "files": args.files + 1,
                      "bytes": total, "sample_hosts": sample}))


if __name__ == "__main__":
    main()
