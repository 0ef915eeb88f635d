//! Building the production IP database from open data, end to end, on small slices of the
//! real sources (tests/data/open-data/, cut by cut-slices.py there): the binary builds it,
//! `GeoDb` and the server answer from it, `geoip stats` reports on it.

mod common;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use httpdns::geoip::GeoDb;
use httpdns::geoip::build::{ip2region, ipv6wry};
use mmdb_writer::{Value, Writer};

fn data(name: &str) -> PathBuf {
    common::repo().join("tests/data/open-data").join(name)
}

/// The source files in their real formats. The binary ones (ip2region.db, ipv6wry.db, the
/// country mmdb) are written here from the checked-in text rows.
struct Sources {
    ip2region: PathBuf,
    ipv6wry: PathBuf,
    country: PathBuf,
    _dir: tempfile::TempDir,
}

fn write_sources() -> Sources {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(data("ip2region.txt")).unwrap();
    let rows: Vec<_> = text
        .lines()
        .map(|line| ip2region::parse_merge_line(line).expect("ip.merge.txt line"))
        .collect();
    let ip2region = dir.path().join("ip2region.db");
    std::fs::write(&ip2region, ip2region::encode(&rows)).unwrap();

    let text = std::fs::read_to_string(data("ipv6wry.txt")).unwrap();
    let rows: Vec<(u64, &str, &str)> = text
        .lines()
        .map(|line| {
            let mut parts = line.splitn(3, '|');
            let start: std::net::Ipv6Addr = parts.next().unwrap().parse().unwrap();
            let prefix = (u128::from(start) >> 64) as u64;
            (prefix, parts.next().unwrap(), parts.next().unwrap())
        })
        .collect();
    let ipv6wry = dir.path().join("ipv6wry.db");
    std::fs::write(&ipv6wry, ipv6wry::encode(&rows)).unwrap();

    let mut writer = Writer::new("geo-whois-asn-country");
    for line in std::fs::read_to_string(data("country.csv"))
        .unwrap()
        .lines()
    {
        let fields: Vec<&str> = line.split(',').collect();
        let value = Value::map([("country_code", Value::from(fields[2]))]);
        writer
            .insert_range(
                fields[0].parse().unwrap(),
                fields[1].parse().unwrap(),
                &value,
            )
            .unwrap();
    }
    let country = dir.path().join("country.mmdb");
    std::fs::write(&country, writer.to_bytes().unwrap()).unwrap();
    Sources {
        ip2region,
        ipv6wry,
        country,
        _dir: dir,
    }
}

fn httpdns(args: &[&Path]) -> std::process::Output {
    let output = Command::new(env!("CARGO_BIN_EXE_httpdns"))
        .args(args)
        .output()
        .expect("httpdns runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Builds with the real binary, as geoip/fetch-open-data.sh does.
fn build(out_dir: &Path) -> PathBuf {
    build_with(out_dir, true).0
}

/// Builds, with or without ipv6wry; returns the database and the build's summary.
fn build_with(out_dir: &Path, with_ipv6wry: bool) -> (PathBuf, String) {
    let sources = write_sources();
    let out = out_dir.join("open-data.mmdb");
    let flag = |s: &'static str| -> &Path { Path::new(s) };
    let (asn_v4, asn_v6) = (data("asn-ipv4.csv"), data("asn-ipv6.csv"));
    let mut args = vec![
        flag("geoip"),
        flag("build"),
        flag("--ip2region"),
        &sources.ip2region,
        flag("--asn-v4"),
        &asn_v4,
        flag("--asn-v6"),
        &asn_v6,
        flag("--country"),
        &sources.country,
        flag("-o"),
        &out,
    ];
    if with_ipv6wry {
        args.extend([flag("--ipv6wry"), &sources.ipv6wry]);
    }
    let output = httpdns(&args);
    (out, String::from_utf8(output.stdout).unwrap())
}

fn lookup(db: &GeoDb, ip: &str) -> httpdns::geoip::Geo {
    db.lookup(ip.parse::<IpAddr>().unwrap())
}

#[test]
fn built_database_gives_the_known_answers() {
    let dir = tempfile::tempdir().unwrap();
    let db = GeoDb::open(&build(dir.path()), None, None).unwrap();

    let gz = lookup(&db, "202.96.128.86");
    assert_eq!(gz.country.as_deref(), Some("CN"));
    assert_eq!(gz.province.as_deref(), Some("CN-GD"));
    assert_eq!(gz.city.as_deref(), Some("广州"));
    assert_eq!(gz.carrier.as_deref(), Some("telecom"));
    assert_eq!(gz.asn, Some(4134));
    assert_eq!(gz.isp.as_deref(), Some("电信"));

    let bj = lookup(&db, "123.125.81.6");
    assert_eq!(bj.country.as_deref(), Some("CN"));
    assert_eq!(bj.province.as_deref(), Some("CN-BJ"));
    assert_eq!(bj.carrier.as_deref(), Some("unicom"));

    assert_eq!(
        lookup(&db, "211.136.17.107").carrier.as_deref(),
        Some("mobile")
    );
    assert_eq!(
        lookup(&db, "202.112.0.1").carrier.as_deref(),
        Some("cernet")
    );

    let google = lookup(&db, "8.8.8.8");
    assert_eq!(google.country.as_deref(), Some("US"));
    assert_eq!(google.carrier, None);
    assert_eq!(google.province, None);

    assert_eq!(lookup(&db, "10.0.0.1"), httpdns::geoip::Geo::default());
}

#[test]
fn hong_kong_and_taiwan_carriers_are_not_mainland_carriers() {
    let dir = tempfile::tempdir().unwrap();
    let db = GeoDb::open(&build(dir.path()), None, None).unwrap();
    let hk = lookup(&db, "1.36.0.1");
    assert_eq!(hk.country.as_deref(), Some("HK"));
    assert_eq!(hk.carrier, None);
    let tw = lookup(&db, "61.216.1.1");
    assert_eq!(tw.country.as_deref(), Some("TW"));
    assert_eq!(tw.isp.as_deref(), Some("中华电信"));
    assert_eq!(tw.carrier, None);
}

#[test]
fn ipv6_answers_come_from_ipv6wry_and_beat_the_whois_country() {
    let dir = tempfile::tempdir().unwrap();
    let db = GeoDb::open(&build(dir.path()), None, None).unwrap();
    assert_eq!(lookup(&db, "240e::1").carrier.as_deref(), Some("telecom"));
    let gz = lookup(&db, "2408:8756::1");
    assert_eq!(gz.carrier.as_deref(), Some("unicom"));
    assert_eq!(gz.province.as_deref(), Some("CN-GD"));
    // The whois country data reads AU for 2001:da8::/32; ipv6wry knows it is CERNET.
    let cernet = lookup(&db, "2001:da8::1");
    assert_eq!(cernet.carrier.as_deref(), Some("cernet"));
    assert_eq!(cernet.country.as_deref(), Some("CN"));
    assert_eq!(lookup(&db, "fe80::1"), httpdns::geoip::Geo::default());
}

#[test]
fn without_ipv6wry_cernet2_is_placed_by_its_announcing_asn() {
    // The whois data reads AU for 2001:da8::/32; AS23910 (CERNET2) announces it.
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = build_with(dir.path(), false);
    let cernet = lookup(&GeoDb::open(&db, None, None).unwrap(), "2001:da8::1");
    assert_eq!(cernet.country.as_deref(), Some("CN"));
    assert_eq!(cernet.carrier.as_deref(), Some("cernet"));
    assert_eq!(cernet.asn, Some(23910));
}

#[test]
fn build_summary_counts_disagreements_by_carrier_pair() {
    let dir = tempfile::tempdir().unwrap();
    let (_, summary) = build_with(dir.path(), false);
    assert!(summary.contains("source disagreements"), "{summary}");
    // Without ipv6wry the whois AU of CERNET2 loses to its announcing ASN.
    assert!(
        summary.contains("country whois AU vs announcing ASN cernet -> CN (announcing_asn)"),
        "{summary}"
    );
}

/// `geoip explain` on the slices' database, against the committed expected output
/// (tests/data/open-data/explain.txt; the database path is written as DB).
#[test]
fn explain_shows_every_source_the_merged_record_and_each_rule() {
    let dir = tempfile::tempdir().unwrap();
    let db = build(dir.path());
    let mut text = String::new();
    for ip in EXPLAINED {
        let output = httpdns(&[
            Path::new("geoip"),
            Path::new("explain"),
            Path::new(ip),
            Path::new("--db"),
            &db,
        ]);
        text.push_str(&String::from_utf8(output.stdout).unwrap());
    }
    let text = text.replace(&db.display().to_string(), "DB");
    let expected = std::fs::read_to_string(data("explain.txt")).unwrap();
    if std::env::var_os("HTTPDNS_BLESS").is_some() {
        std::fs::write(data("explain.txt"), &text).unwrap();
    }
    assert_eq!(text, expected, "got:\n{text}");
}

/// The addresses explain.txt covers: a carrier range where the sources agree; AS4808
/// (China Unicom) space that ip2region reads as 电信; China Telecom's AS4809 in London;
/// Taiwan; abroad; CERNET2 against its whois country; an address in no range.
const EXPLAINED: &[&str] = &[
    "202.96.128.86",
    "43.231.164.1",
    "5.10.137.1",
    "61.216.1.1",
    "8.8.8.8",
    "2001:da8::1",
    "192.0.2.1",
];

#[test]
fn stats_reports_cn_coverage() {
    let dir = tempfile::tempdir().unwrap();
    let out = build(dir.path());
    let output = httpdns(&[Path::new("geoip"), Path::new("stats"), &out]);
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains("CN IPv4 addresses:"), "{text}");
    assert!(text.contains("with province:"), "{text}");
    assert!(text.contains("telecom"), "{text}");
}

#[test]
fn mixing_csv_and_open_data_flags_is_refused() {
    let output = Command::new(env!("CARGO_BIN_EXE_httpdns"))
        .args([
            "geoip",
            "build",
            "--csv",
            "x.csv",
            "--ip2region",
            "r.db",
            "-o",
            "o",
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot be used with"), "{stderr}");

    let output = Command::new(env!("CARGO_BIN_EXE_httpdns"))
        .args(["geoip", "build", "--ip2region", "r.db", "-o", "o"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--asn-v4"), "{stderr}");
}

#[tokio::test]
async fn server_answers_from_the_open_data_database() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::example_config(dir.path());
    config.geoip.database = build(dir.path());
    let running = common::start_with(config, common::options(), None).await;
    let (status, body) = running
        .get_json("/resolve?host=api.example.com&ip=202.96.128.86")
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["geo"]["province"], "CN-GD");
    assert_eq!(body["geo"]["carrier"], "telecom");
    assert_eq!(body["answers"][0]["zone"], "gz-telecom");
}

#[tokio::test]
async fn server_opens_an_ip_location_db_city_database() {
    let dir = tempfile::tempdir().unwrap();
    let mut writer = Writer::new("ip-location-db-city");
    let record = Value::map([
        ("country_code", Value::from("CN")),
        ("state1", Value::from("Beijing")),
        ("city", Value::from("Beijing")),
    ]);
    writer
        .insert_value(
            "123.112.0.0/12"
                .parse::<mmdb_writer::ipnet::IpNet>()
                .unwrap(),
            record,
        )
        .unwrap();
    let path = dir.path().join("dbip-city.mmdb");
    std::fs::write(&path, writer.to_bytes().unwrap()).unwrap();
    let mut config = common::example_config(dir.path());
    config.geoip.database = path;
    let running = common::start_with(config, common::options(), None).await;
    let (status, body) = running
        .get_json("/resolve?host=api.example.com&ip=123.125.81.6")
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["geo"]["country"], "CN");
    assert_eq!(body["geo"]["province"], "CN-BJ");
}
