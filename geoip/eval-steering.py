#!/usr/bin/env python3
"""Steering accuracy of the open-data IP database, measured through the running server.

    python3 geoip/eval-steering.py [--seed 1] [--per-carrier 1000] [--overseas 500]

1. geoip/fetch-open-data.sh fetches the pinned npm packages and builds the database
   (skip with --db DB); the build is then timed once more here (wall time, peak RSS).
2. A seeded random sample: for each mainland carrier in geoip/asn-carriers.toml, prefixes
   of the ASN table (asn-ipv4.csv, asn-ipv6.csv) announced by that carrier's ASNs, one
   random address in each drawn prefix; plus prefixes of some global networks (clouds,
   CDNs, transit) that are not Chinese.
3. The real server starts on 127.0.0.1 with that database and a zones file of one zone
   per carrier plus `overseas`; every address is resolved through `/resolve?ip=`.
4. A client is right when it lands in the zone of its announcing network's carrier
   (mainland sample) or in `overseas` (non-Chinese sample). Prints the agreement.

The non-Chinese sample is judged by two independent sources, not one: the announcing
network is not Chinese AND the registry (the whois country of geo-whois-asn-country, the
pinned source of fetch-open-data.sh) does not say CN. Addresses of non-Chinese networks
in space registered to China (e.g. AS2914 NTT announcing CN-registered /24s that
ip2region also places in Guangdong) are drawn as usual but not scored: where the
registry and ip2region both say China, steering them to a mainland zone is what the
evidence says. They are printed on a line of their own with where they landed.

Only loopback traffic besides the npm registry used by fetch-open-data.sh (and PyPI, when
the `maxminddb` module must be installed).
"""

import argparse
import collections
import csv
import ipaddress
import json
import os
import random
import resource
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.request

try:
    import maxminddb
except ImportError:  # the registry check needs it; PyPI is the ordinary client's source
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "maxminddb>=2,<4"], check=True)
    import maxminddb

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The carriers of the headline figure (the sample); the others in
# asn-carriers.toml (broadcast) are sampled and reported on their own line.
HEADLINE = ("telecom", "unicom", "mobile", "cernet")

# Announcing networks that are not Chinese: clouds, CDNs, transit, eyeball ISPs abroad.
OVERSEAS_ASNS = {
    15169: "Google",
    16509: "Amazon",
    8075: "Microsoft",
    13335: "Cloudflare",
    20940: "Akamai",
    54113: "Fastly",
    14061: "DigitalOcean",
    16276: "OVH",
    24940: "Hetzner",
    3356: "Lumen",
    2914: "NTT",
    7922: "Comcast",
    3320: "Deutsche Telekom",
    2516: "KDDI",
}


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--per-carrier", type=int, default=1000, help="addresses per mainland carrier")
    p.add_argument("--overseas", type=int, default=500, help="non-Chinese addresses")
    p.add_argument("--v6-share", type=float, default=0.2, help="share of IPv6 addresses")
    p.add_argument("--work", default=os.environ.get("OPEN_DATA_DIR", os.path.join(REPO, "target/open-data")))
    p.add_argument("--bin", default=os.environ.get("HTTPDNS_BIN"), help="httpdns binary (default: cargo build --release)")
    p.add_argument("--db", help="evaluate this database instead of building one")
    p.add_argument("--misses", type=int, default=15, help="misses to print")
    return p.parse_args()


def build_binary(args):
    if args.bin:
        # fetch-open-data.sh runs from its own directory: a relative path would not resolve.
        return os.path.abspath(args.bin)
    subprocess.run(["cargo", "build", "--release", "--quiet", "--manifest-path", os.path.join(REPO, "Cargo.toml")], check=True)
    return os.path.join(REPO, "target/release/httpdns")


def build_database(args, binary):
    """Fetches and builds with fetch-open-data.sh, then times one more build on its own."""
    env = dict(os.environ, HTTPDNS_BIN=binary)
    subprocess.run(["bash", os.path.join(REPO, "geoip/fetch-open-data.sh"), args.work], check=True, env=env,
                   stdout=subprocess.DEVNULL)
    work = args.work
    out = os.path.join(work, "eval-build.mmdb")
    cmd = [binary, "geoip", "build",
           "--ip2region", f"{work}/ip2region/package/data/ip2region.db",
           "--ipv6wry", f"{work}/ip2region/package/data/ipv6wry.db",
           "--asn-v4", f"{work}/asn/package/asn-ipv4.csv",
           "--asn-v6", f"{work}/asn/package/asn-ipv6.csv",
           "--country", f"{work}/country/package/geo-whois-asn-country.mmdb",
           "-o", out]
    started = time.monotonic()
    result = subprocess.run(cmd, check=True, capture_output=True, text=True)
    seconds = time.monotonic() - started
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(result.stdout, end="")
    print(f"build: {seconds:.1f} s, peak RSS {peak_mb:.0f} MB, {os.path.getsize(out) / 1e6:.1f} MB written")
    return out


def mainland_carriers():
    with open(os.path.join(REPO, "geoip/asn-carriers.toml"), "rb") as f:
        table = tomllib.load(f)
    return {asn: carrier for carrier, asns in table.items() for asn in asns}


def read_prefixes(work, carriers):
    """(family, start, end, asn, org) rows of the ASN table whose ASN we sample."""
    rows = collections.defaultdict(list)
    for family in ("ipv4", "ipv6"):
        with open(os.path.join(work, f"asn/package/asn-{family}.csv"), newline="") as f:
            for record in csv.reader(f):
                asn = int(record[2])
                key = carriers.get(asn) or ("overseas" if asn in OVERSEAS_ASNS else None)
                if key is None:
                    continue
                start, end = ipaddress.ip_address(record[0]), ipaddress.ip_address(record[1])
                rows[(key, family)].append((int(start), int(end), asn, record[3]))
    return rows


def draw(rng, rows, key, count, v6_share):
    """`count` addresses of `key`: a random prefix, then a random address inside it."""
    sample = []
    v6 = round(count * v6_share) if rows.get((key, "ipv6")) else 0
    for family, n in (("ipv4", count - v6), ("ipv6", v6)):
        prefixes = rows.get((key, family), [])
        for _ in range(n if prefixes else 0):
            start, end, asn, org = rng.choice(prefixes)
            address = ipaddress.ip_address(rng.randint(start, end))
            if family == "ipv6":
                address = ipaddress.IPv6Address(int(address))
            sample.append((str(address), key, asn, org))
    return sample


def registry_countries(work, sample):
    """The whois (registry) country of every address, from the pinned country mmdb."""
    path = os.path.join(work, "country/package/geo-whois-asn-country.mmdb")
    with maxminddb.open_database(path) as reader:
        return {ip: ((reader.get(ip) or {}).get("country_code") or "-").upper() for ip, *_ in sample}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_server_files(directory, database, zones):
    os.makedirs(os.path.join(directory, "zones"))
    port, admin = free_port(), free_port()
    with open(os.path.join(directory, "httpdns.toml"), "w") as f:
        f.write(f'listen = "127.0.0.1:{port}"\nadmin_listen = "127.0.0.1:{admin}"\n'
                f'zones_dir = "zones"\nstate_dir = "state"\n\n[geoip]\ndatabase = "{database}"\n')
    lines = []
    for i, zone in enumerate(zones):
        lines.append(f'[[zone]]\nname = "{zone}"\nendpoints = ["198.51.100.{i + 1}"]\n')
    lines.append('[[domain]]\nname = "eval.example.com"\nttl = 60\n'
                 f'zones = {json.dumps(zones)}\ndefault_zone = "unknown"\n')
    for zone in zones:
        if zone in ("overseas", "unknown"):
            continue
        lines.append(f'[[domain.rule]]\nname = "{zone}"\ncarrier = ["{zone}"]\nzone = "{zone}"\n')
    lines.append('[[domain.rule]]\nname = "overseas"\nnot_country = ["CN"]\nzone = "overseas"\n')
    with open(os.path.join(directory, "zones/eval.toml"), "w") as f:
        f.write("\n".join(lines))
    return os.path.join(directory, "httpdns.toml"), port


def get_json(port, path):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
        return json.load(response)


def start_server(binary, config, port):
    server = subprocess.Popen([binary, "--config", config], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(f"server exited: {server.stderr.read().decode()}")
        try:
            get_json(port, "/healthz")
            return server
        except OSError:
            time.sleep(0.1)
    server.kill()
    sys.exit("server did not answer /healthz within 30 s")


def main():
    args = parse_args()
    binary = build_binary(args)
    database = os.path.abspath(args.db) if args.db else build_database(args, binary)
    carriers = mainland_carriers()
    keys = sorted(set(carriers.values()))
    rows = read_prefixes(args.work, carriers)
    rng = random.Random(args.seed)
    sample = []
    for key in keys:
        sample += draw(rng, rows, key, args.per_carrier, args.v6_share)
    sample += draw(rng, rows, "overseas", args.overseas, args.v6_share)
    registry = registry_countries(args.work, sample)

    zones = keys + ["overseas", "unknown"]
    with tempfile.TemporaryDirectory() as directory:
        config, port = write_server_files(directory, database, zones)
        server = start_server(binary, config, port)
        try:
            answers = []
            for ip, expected, asn, org in sample:
                body = get_json(port, f"/resolve?host=eval.example.com&ip={ip}")
                answers.append((ip, expected, asn, org, body["answers"][0]["zone"], body.get("geo", {})))
        finally:
            server.terminate()
            server.wait(timeout=10)

    right = collections.Counter()
    total = collections.Counter()
    landed = collections.Counter()
    misses = []
    registered_cn = []
    for ip, expected, asn, org, zone, geo in answers:
        family = "v6" if ":" in ip else "v4"
        if expected == "overseas" and registry[ip] == "CN":
            registered_cn.append((ip, asn, org, zone, geo))
            continue
        group = "mainland" if expected in HEADLINE else "overseas_all" if expected == "overseas" else "other"
        for bucket in (expected, f"{expected} {family}", group):
            total[bucket] += 1
            right[bucket] += zone == expected
        if zone != expected:
            landed[(expected, zone)] += 1
            misses.append((ip, expected, zone, asn, org, geo))

    print(f"seed {args.seed}: {len(sample)} addresses, server on 127.0.0.1:{port}, database {database}")
    for bucket in keys + ["overseas"]:
        detail = ", ".join(f"{f} {right[f'{bucket} {f}']}/{total[f'{bucket} {f}']}" for f in ("v4", "v6")
                           if total[f"{bucket} {f}"])
        print(f"  {bucket:<10} {100 * right[bucket] / max(total[bucket], 1):6.2f}%  ({detail})")
    print(f"mainland carriers ({', '.join(HEADLINE)}): {100 * right['mainland'] / max(total['mainland'], 1):.2f}% "
          f"({right['mainland']}/{total['mainland']}) steered to the announcing network's carrier")
    print(f"non-Chinese:       {100 * right['overseas_all'] / max(total['overseas_all'], 1):.2f}% "
          f"({right['overseas_all']}/{total['overseas_all']}) steered overseas "
          "(non-Chinese announcing network, registry country not CN)")
    landed_cn = collections.Counter(zone for *_, zone, _ in registered_cn)
    print(f"not scored:        {len(registered_cn)} addresses of non-Chinese networks in CN-registered space, "
          f"landed: {', '.join(f'{z} {n}' for z, n in landed_cn.most_common()) or '-'}")
    for ip, asn, org, zone, geo in registered_cn[: args.misses]:
        print(f"  {ip} AS{asn} {org!r}: registry CN, landed {zone}, geo {json.dumps(geo, ensure_ascii=False)}")
    if landed:
        print("misses (expected -> landed):")
        for (expected, zone), n in landed.most_common():
            print(f"  {expected} -> {zone}: {n}")
        for ip, expected, zone, asn, org, geo in misses[: args.misses]:
            print(f"  {ip} AS{asn} {org!r}: expected {expected}, landed {zone}, geo {json.dumps(geo, ensure_ascii=False)}")


if __name__ == "__main__":
    main()
