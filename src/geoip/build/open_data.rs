//! `httpdns geoip build --ip2region ...`: merges the open data sources into one
//! flat-schema MaxMind DB.
//!
//! Sources, strongest first for what each knows best:
//! - ip2region (`ip2region.db`, IPv4) and ipv6wry (`ipv6wry.db`, IPv6): Chinese province,
//!   city and ISP text; their word on the country wins for China (the whois data has known
//!   bugs there, e.g. 2001:da8::/32 reading AU).
//! - ip-location-db `asn` CSVs (`start,end,asn,org`): the ASN and its organisation name.
//! - ip-location-db `geo-whois-asn-country` mmdb (`country_code`): the country elsewhere.
//!
//! Every source is read as ranges in address order and swept together once, so memory is
//! the output tree plus one row per source, never a copy of a source. The precedence rules
//! live in [`super::merge`]; this module streams, sweeps and writes.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use maxminddb::{Reader, WithinOptions};
use mmdb_writer::ipnet::{IpNet, Ipv4Subnets, Ipv6Subnets};
use mmdb_writer::{ReservedNetworks, Writer};
use serde::Deserialize;

use super::ip2region::Ip2Region;
use super::ipv6wry::Ipv6Wry;
use super::merge::{DisagreementCounts, MergedRecord, merge, write_disagreements};
use super::sweep::{AsnInfo, Cursor, Family, Region, Span, SpanResult};
use super::write_atomically;
use crate::geoip::{AsnCarriers, DATABASE_TYPE, GeoIpError};

/// The input files of an open-data build.
#[derive(Debug, Clone)]
pub struct OpenDataSources {
    pub ip2region: PathBuf,
    /// Optional: without it IPv6 has only ASN and whois country data.
    pub ipv6wry: Option<PathBuf>,
    pub asn_v4: PathBuf,
    pub asn_v6: PathBuf,
    pub country: PathBuf,
}

/// What a build wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildSummary {
    /// Merged ranges with data, IPv4 and IPv6.
    pub v4_ranges: usize,
    pub v6_ranges: usize,
    /// CIDR blocks left out because they are private, reserved or IPv4-alias space.
    pub reserved_blocks_skipped: usize,
    /// Addresses on which sources disagreed, by pair and how it was settled.
    pub disagreements: DisagreementCounts,
}

impl std::fmt::Display for BuildSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{} IPv4 ranges, {} IPv6 ranges, {} reserved blocks left out",
            self.v4_ranges, self.v6_ranges, self.reserved_blocks_skipped
        )?;
        write_disagreements(f, &self.disagreements)
    }
}

/// Builds the database from `sources` and writes it atomically to `out`.
pub fn build(sources: &OpenDataSources, out: &Path) -> Result<BuildSummary, GeoIpError> {
    let (bytes, summary) = build_bytes(sources, out)?;
    write_atomically(out, &bytes)?;
    Ok(summary)
}

/// Builds the database bytes; `out` only names the output in errors.
pub fn build_bytes(
    sources: &OpenDataSources,
    out: &Path,
) -> Result<(Vec<u8>, BuildSummary), GeoIpError> {
    let carriers = AsnCarriers::builtin();
    let country_db = crate::geoip::open_reader(&sources.country)?;
    let mut sink = Sink {
        writer: Writer::builder(DATABASE_TYPE)
            .description(&[(
                "en",
                "httpdns flat geo database from open data: ip2region, ipv6wry, \
                 ip-location-db asn (RouteViews, NRO, DB-IP; CC BY 4.0), \
                 ip-location-db geo-whois-asn-country",
            )])
            .reserved_networks(ReservedNetworks::Excluded)
            .build(),
        pending: None,
        summary: BuildSummary::default(),
        out: out.to_path_buf(),
    };

    let ip2region = Ip2Region::open(&sources.ip2region)?;
    sweep(
        Cursor::new(ip2region.spans()),
        Cursor::new(asn_csv(&sources.asn_v4, Family::V4)?),
        Cursor::new(country_spans(&country_db, &sources.country, Family::V4)?),
        Family::V4,
        &carriers,
        &mut sink,
    )?;
    sink.flush()?;
    drop(ip2region);

    let ipv6wry = sources.ipv6wry.as_deref().map(Ipv6Wry::open).transpose()?;
    let v6_region: Box<dyn Iterator<Item = _>> = match &ipv6wry {
        Some(db) => Box::new(db.spans()),
        None => Box::new(std::iter::empty()),
    };
    sweep(
        Cursor::new(v6_region),
        Cursor::new(asn_csv(&sources.asn_v6, Family::V6)?),
        Cursor::new(country_spans(&country_db, &sources.country, Family::V6)?),
        Family::V6,
        &carriers,
        &mut sink,
    )?;
    sink.flush()?;

    let bytes = sink.writer.to_bytes().map_err(|e| GeoIpError::Write {
        path: out.to_path_buf(),
        message: e.to_string(),
    })?;
    Ok((bytes, sink.summary))
}

/// Streams an ip-location-db ASN CSV (`start,end,asn,org`, no header).
fn asn_csv(
    path: &Path,
    family: Family,
) -> Result<impl Iterator<Item = SpanResult<AsnInfo>>, GeoIpError> {
    let file = std::fs::File::open(path).map_err(|source| GeoIpError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(std::io::BufReader::with_capacity(1 << 20, file));
    let path = path.to_path_buf();
    Ok(reader.into_records().map(move |record| {
        let error = |line: u64, message: String| GeoIpError::Csv {
            path: path.clone(),
            line,
            message,
        };
        let record =
            record.map_err(|e| error(e.position().map_or(0, |p| p.line()), e.to_string()))?;
        let line = record.position().map_or(0, |p| p.line());
        let field = |i: usize| record.get(i).unwrap_or("").trim();
        let address = |i: usize| {
            field(i)
                .parse::<IpAddr>()
                .ok()
                .and_then(|ip| family.number(ip))
                .ok_or_else(|| error(line, format!("bad {family:?} address {:?}", field(i))))
        };
        let (start, end) = (address(0)?, address(1)?);
        if end < start {
            return Err(error(line, "range ends before it starts".to_string()));
        }
        let asn = field(2)
            .trim_start_matches("AS")
            .parse()
            .map_err(|_| error(line, format!("bad asn {:?}", field(2))))?;
        let org = Some(field(3)).filter(|s| !s.is_empty()).map(str::to_string);
        Ok(Span {
            start,
            end,
            value: AsnInfo { asn, org },
        })
    }))
}

#[derive(Deserialize)]
struct CountryRecord<'a> {
    #[serde(borrow, alias = "country_code")]
    country: Option<&'a str>,
}

/// Streams the networks of a country mmdb (`country_code`) of one family, in address order.
fn country_spans<'a>(
    reader: &'a Reader<Vec<u8>>,
    path: &'a Path,
    family: Family,
) -> Result<impl Iterator<Item = SpanResult<String>> + 'a, GeoIpError> {
    let invalid = move |e: maxminddb::MaxMindDbError| GeoIpError::InvalidDb {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let all: ipnetwork::IpNetwork = match family {
        Family::V4 => "0.0.0.0/0",
        Family::V6 => "::/0",
    }
    .parse()
    .map_err(|e: ipnetwork::IpNetworkError| GeoIpError::InvalidDb {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let networks = reader
        .within(all, WithinOptions::default())
        .map_err(invalid)?;
    Ok(networks.filter_map(move |found| {
        let found = match found {
            Ok(found) => found,
            Err(e) => return Some(Err(invalid(e))),
        };
        let (network, record) = match (found.network(), found.decode::<CountryRecord>()) {
            (Ok(network), Ok(record)) => (network, record),
            (Err(e), _) | (_, Err(e)) => return Some(Err(invalid(e))),
        };
        let country = record?.country?.trim();
        if country.len() != 2 {
            return None;
        }
        let (start, bits) = (family.number(network.network())?, network.prefix());
        let host_bits = u32::from(if family == Family::V4 { 32 } else { 128 } - bits);
        let size_minus_one = 1u128.checked_shl(host_bits).map_or(u128::MAX, |n| n - 1);
        Some(Ok(Span {
            start,
            end: start | size_minus_one,
            value: country.to_ascii_uppercase(),
        }))
    }))
}

/// Sweeps one address family: cuts it where any source changes and writes the merged
/// record of each piece.
fn sweep<R, A, C>(
    mut region: Cursor<Option<Region>, R>,
    mut asn: Cursor<AsnInfo, A>,
    mut country: Cursor<String, C>,
    family: Family,
    carriers: &AsnCarriers,
    sink: &mut Sink,
) -> Result<(), GeoIpError>
where
    R: Iterator<Item = SpanResult<Option<Region>>>,
    A: Iterator<Item = SpanResult<AsnInfo>>,
    C: Iterator<Item = SpanResult<String>>,
{
    let (mut pos, last) = family.bounds();
    loop {
        region.advance_to(pos)?;
        asn.advance_to(pos)?;
        country.advance_to(pos)?;
        let values = (
            region.value_at(pos).and_then(Option::as_ref),
            asn.value_at(pos),
            country.value_at(pos),
        );
        if region.value_at(pos).is_none() && values.1.is_none() && values.2.is_none() {
            // Nothing known here: jump to where the next source starts.
            match [region.next_start(), asn.next_start(), country.next_start()]
                .into_iter()
                .flatten()
                .min()
            {
                Some(next) if next <= last => {
                    pos = next;
                    continue;
                }
                _ => return Ok(()),
            }
        }
        let end = region
            .run_end(pos)
            .min(asn.run_end(pos))
            .min(country.run_end(pos))
            .min(last);
        let (record, disagreements) =
            merge(values.0, values.1, values.2.map(String::as_str), carriers);
        for disagreement in disagreements {
            let counts = sink.summary.disagreements.entry(disagreement).or_default();
            counts[family as usize] += end - pos + 1;
        }
        sink.push(family, pos, end, record)?;
        if end >= last {
            return Ok(());
        }
        pos = end + 1;
    }
}

/// Collects merged pieces, joins neighbours with equal records, and inserts them.
struct Sink {
    writer: Writer,
    pending: Option<(Family, u128, u128, MergedRecord)>,
    summary: BuildSummary,
    out: PathBuf,
}

impl Sink {
    fn push(
        &mut self,
        family: Family,
        start: u128,
        end: u128,
        record: MergedRecord,
    ) -> Result<(), GeoIpError> {
        if let Some((f, _, pending_end, pending)) = &mut self.pending {
            if *f == family && *pending_end + 1 == start && *pending == record {
                *pending_end = end;
                return Ok(());
            }
        }
        self.flush()?;
        self.pending = Some((family, start, end, record));
        Ok(())
    }

    fn flush(&mut self) -> Result<(), GeoIpError> {
        let Some((family, start, end, record)) = self.pending.take() else {
            return Ok(());
        };
        if record.is_empty() {
            return Ok(());
        }
        let value = record.to_value();
        let networks: Box<dyn Iterator<Item = IpNet>> = match family {
            Family::V4 => Box::new(
                Ipv4Subnets::new(Ipv4Addr::from(start as u32), Ipv4Addr::from(end as u32), 0)
                    .map(IpNet::V4),
            ),
            Family::V6 => Box::new(
                Ipv6Subnets::new(Ipv6Addr::from(start), Ipv6Addr::from(end), 0).map(IpNet::V6),
            ),
        };
        for network in networks {
            match self.writer.insert_value(network, value.clone()) {
                Ok(()) => {}
                Err(
                    mmdb_writer::Error::ReservedNetwork(_) | mmdb_writer::Error::AliasedNetwork(_),
                ) => self.summary.reserved_blocks_skipped += 1,
                Err(e) => {
                    return Err(GeoIpError::Write {
                        path: self.out.clone(),
                        message: format!("{network}: {e}"),
                    });
                }
            }
        }
        match family {
            Family::V4 => self.summary.v4_ranges += 1,
            Family::V6 => self.summary.v6_ranges += 1,
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::geoip::build::sweep::fixtures::{asn, region};

    fn spans<T: Clone>(rows: &[(u128, u128, T)]) -> Vec<SpanResult<T>> {
        rows.iter()
            .map(|(start, end, value)| {
                Ok(Span {
                    start: *start,
                    end: *end,
                    value: value.clone(),
                })
            })
            .collect()
    }

    #[test]
    fn sweep_cuts_where_any_source_changes_and_joins_equal_neighbours() {
        let mut sink = Sink {
            writer: Writer::new("t"),
            pending: None,
            summary: BuildSummary::default(),
            out: PathBuf::from("t.mmdb"),
        };
        let cn = Some(region("中国", "广东省", "电信"));
        sweep(
            Cursor::new(spans(&[(100, 199, cn.clone()), (200, 299, cn)]).into_iter()),
            Cursor::new(
                spans(&[(150, 249, asn(4134, "CHINANET")), (240, 260, asn(1, "x"))]).into_iter(),
            ),
            Cursor::new(spans(&[(0, 1000, "CN".to_string())]).into_iter()),
            Family::V4,
            &AsnCarriers::builtin(),
            &mut sink,
        )
        .unwrap();
        sink.flush().unwrap();
        let at = |ip: u32| {
            let value = sink.writer.get(IpAddr::V4(Ipv4Addr::from(ip))).cloned();
            value.map(|v| format!("{v:?}"))
        };
        // 0..99 CN only; 100..149 region; 150..249 region+AS4134 (one range across the
        // ip2region row boundary); 250..260 the overlapping row's remainder; 261.. CN.
        assert_eq!(sink.summary.v4_ranges, 6);
        assert!(at(120).unwrap().contains("telecom"));
        assert!(!at(120).unwrap().contains("4134"));
        assert_eq!(at(160), at(230));
        assert!(at(255).unwrap().contains("U32(1)"));
        assert!(at(500).unwrap().contains("CN"));
        assert_eq!(at(1001), None);
    }
}
