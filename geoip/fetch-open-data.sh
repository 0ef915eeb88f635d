#!/usr/bin/env bash
# Fetches the pinned open-data packages from the npm registry, verifies their checksums,
# and builds the production IP database with our own binary.
#
#   geoip/fetch-open-data.sh [WORK_DIR]     (default: target/open-data, or $OPEN_DATA_DIR)
#
# Output: WORK_DIR/httpdns-open-data.mmdb, with OPEN-DATA-NOTICE.md and LICENSES/ beside
# it. Set HTTPDNS_BIN to use an already built binary instead of `cargo build --release`.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-${OPEN_DATA_DIR:-$repo/target/open-data}}
mkdir -p "$work/packages"
work=$(cd "$work" && pwd)

# name@version  tarball  directory
packages=(
  "ip2region@2.3.0 ip2region-2.3.0.tgz ip2region"
  "@ip-location-db/asn@2.3.2026061719 ip-location-db-asn-2.3.2026061719.tgz asn"
  "@ip-location-db/geo-whois-asn-country-mmdb@2.3.2026061719 ip-location-db-geo-whois-asn-country-mmdb-2.3.2026061719.tgz country"
)

cd "$work/packages"
for entry in "${packages[@]}"; do
  read -r spec tarball _ <<<"$entry"
  if [ ! -f "$tarball" ]; then
    echo "fetching $spec" >&2
    npm pack --silent "$spec" >/dev/null
  fi
done
sha256sum --check --quiet "$repo/geoip/open-data.sha256"

for entry in "${packages[@]}"; do
  read -r _ tarball dir <<<"$entry"
  rm -rf "${work:?}/$dir"
  mkdir -p "$work/$dir"
  tar -xzf "$tarball" -C "$work/$dir"
done

bin=${HTTPDNS_BIN:-}
if [ -z "$bin" ]; then
  cargo build --release --quiet --manifest-path "$repo/Cargo.toml"
  bin="$repo/target/release/httpdns"
fi

out="$work/httpdns-open-data.mmdb"
"$bin" geoip build \
  --ip2region "$work/ip2region/package/data/ip2region.db" \
  --ipv6wry "$work/ip2region/package/data/ipv6wry.db" \
  --asn-v4 "$work/asn/package/asn-ipv4.csv" \
  --asn-v6 "$work/asn/package/asn-ipv6.csv" \
  --country "$work/country/package/geo-whois-asn-country.mmdb" \
  -o "$out"

# Attribution travels with the database.
mkdir -p "$work/LICENSES"
cp "$repo/geoip/OPEN-DATA-NOTICE.md" "$work/"
cp "$work/ip2region/package/LICENSE" "$work/LICENSES/ip2region-LICENSE"
for f in DBIP-LICENSE NRO_LICENSE ROUTEVIEWS-LICENSE MODIFICATIONS README.md; do
  cp "$work/asn/package/$f" "$work/LICENSES/asn-$f"
done
for f in NRO_LICENSE README.md; do
  cp "$work/country/package/$f" "$work/LICENSES/country-$f"
done

"$bin" geoip stats "$out"
cat <<MSG

Built $out
Attribution: $work/OPEN-DATA-NOTICE.md and $work/LICENSES/ (ship them with the database).
Point the server at it in its config:

[geoip]
database = "$out"
MSG
