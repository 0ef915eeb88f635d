//! Lookup cost of the IP database, decode included, in ns/op.
//!
//! Uses the full open-data build (`target/open-data/httpdns-open-data.mmdb`, or
//! `HTTPDNS_BENCH_DB`); when it is not built, says so and falls back to the small test DB
//! shipped in geoip/. Also measures a moka cache in front of the lookup, to decide whether
//! one is worth having (see BENCH.md).

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use criterion::{Criterion, criterion_group, criterion_main};
use httpdns::geoip::{Geo, GeoDb};

fn database() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let full = std::env::var_os("HTTPDNS_BENCH_DB")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target/open-data/httpdns-open-data.mmdb"));
    if full.exists() {
        full
    } else {
        eprintln!(
            "geoip_lookup: {} is not built (run geoip/fetch-open-data.sh); \
             falling back to the small test DB, numbers are not representative",
            full.display()
        );
        root.join("geoip/test-geo.mmdb")
    }
}

/// 4096 addresses: mostly random IPv4 (weighted to Chinese /8s), some IPv6 carrier space.
fn addresses() -> Vec<IpAddr> {
    let mut rng = fastrand::Rng::with_seed(7);
    let cn_first_octets = [
        1, 14, 27, 36, 39, 42, 58, 59, 60, 61, 101, 106, 110, 111, 112, 113, 114, 115, 116, 117,
        118, 119, 120, 121, 122, 123, 124, 125, 180, 182, 183, 202, 203, 210, 211, 218, 219, 220,
        221, 222, 223,
    ];
    (0..4096)
        .map(|i| match i % 8 {
            0 => IpAddr::V6(Ipv6Addr::new(
                [0x240e, 0x2408, 0x2409, 0x2001][rng.usize(..4)],
                rng.u16(..),
                rng.u16(..),
                rng.u16(..),
                0,
                0,
                0,
                1,
            )),
            1..=4 => IpAddr::V4(Ipv4Addr::new(
                cn_first_octets[rng.usize(..cn_first_octets.len())],
                rng.u8(..),
                rng.u8(..),
                rng.u8(..),
            )),
            _ => IpAddr::V4(Ipv4Addr::from(rng.u32(..))),
        })
        .collect()
}

/// The flat record, borrowed: decode cost without allocation.
#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct Borrowed<'a> {
    country: Option<&'a str>,
    province: Option<&'a str>,
    city: Option<&'a str>,
    carrier: Option<&'a str>,
    isp: Option<&'a str>,
    asn: Option<u32>,
}

fn lookups(c: &mut Criterion) {
    let path = database();
    let db = match GeoDb::open(&path, None, None) {
        Ok(db) => db,
        Err(e) => {
            eprintln!("geoip_lookup: skipped, {e}");
            return;
        }
    };
    let ips = addresses();
    let mut group = c.benchmark_group("geoip");
    let mut i = 0;
    group.bench_function("lookup", |b| {
        b.iter(|| {
            i = (i + 1) % ips.len();
            black_box(db.lookup(black_box(ips[i])))
        })
    });
    // Where the time goes: the tree walk alone, then the walk plus a borrowed decode.
    if let Ok(reader) = maxminddb::Reader::open_readfile(&path) {
        group.bench_function("tree_walk_only", |b| {
            b.iter(|| {
                i = (i + 1) % ips.len();
                black_box(
                    reader
                        .lookup(black_box(ips[i]))
                        .ok()
                        .and_then(|r| r.offset()),
                )
            })
        });
        group.bench_function("walk_and_decode", |b| {
            b.iter(|| {
                i = (i + 1) % ips.len();
                let found = reader.lookup(black_box(ips[i])).ok();
                black_box(found.and_then(|r| r.decode::<Borrowed>().ok().flatten()))
            })
        });
    }
    // A cache holding every address asked for: the best case for caching.
    let cache: moka::sync::Cache<IpAddr, Geo> = moka::sync::Cache::new(100_000);
    for ip in &ips {
        cache.insert(*ip, db.lookup(*ip));
    }
    group.bench_function("moka_cache_hit", |b| {
        b.iter(|| {
            i = (i + 1) % ips.len();
            let ip = black_box(ips[i]);
            black_box(cache.get_with(ip, || db.lookup(ip)))
        })
    });
    group.finish();
}

criterion_group!(benches, lookups);
criterion_main!(benches);
