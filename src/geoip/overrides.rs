//! Operator overrides (`[geoip] overrides = "overrides.csv"`): rows in the columns of
//! `httpdns geoip build --csv`, laid over the database for an operator who knows better
//! about their own users (an office range, a partner ISP).
//!
//! Compiled at load into an in-memory MaxMind DB with the most specific network winning,
//! so a lookup costs one more tree walk. A row's non-empty cells replace the database's
//! fields; empty cells keep the database's answer. Reloaded with the database.

use std::net::IpAddr;
use std::path::Path;

use maxminddb::Reader;

use super::{FlatRecord, Geo, GeoIpError, carrier, decode, non_empty, province};

/// The compiled overrides file.
pub struct Overrides {
    reader: Reader<Vec<u8>>,
    /// The rows' networks: where overrides draw lines (ECS scopes must respect them).
    networks: Vec<ipnetwork::IpNetwork>,
}

impl Overrides {
    /// Reads and compiles `path`; a bad row is an error naming its line.
    pub fn load(path: &Path) -> Result<Self, GeoIpError> {
        let text = super::read_file(path)?;
        let bytes = super::build::csv::build_overrides(text.as_slice(), path)?;
        // The builder validated every row; the first column of each is its network.
        let networks = String::from_utf8_lossy(&text)
            .lines()
            .filter_map(|line| line.split(',').next()?.trim().parse().ok())
            .collect();
        Ok(Self {
            reader: super::reader_from_bytes(bytes, path)?,
            networks,
        })
    }

    /// Every overridden network.
    pub fn networks(&self) -> &[ipnetwork::IpNetwork] {
        &self.networks
    }

    /// Replaces the fields of `geo` that the most specific override covering `ip` gives.
    pub fn apply(&self, ip: IpAddr, geo: &mut Geo) {
        let Some(row) = decode::<FlatRecord>(&self.reader, ip) else {
            return;
        };
        let set = |field: &mut Option<String>, value: Option<String>| {
            if value.is_some() {
                *field = value;
            }
        };
        set(
            &mut geo.country,
            row.country.and_then(non_empty).map(str::to_ascii_uppercase),
        );
        set(
            &mut geo.province,
            row.province.and_then(non_empty).map(province::normalize),
        );
        set(
            &mut geo.city,
            row.city.and_then(non_empty).map(str::to_string),
        );
        set(
            &mut geo.carrier,
            row.carrier.and_then(non_empty).map(|c| {
                carrier::normalize(c).map_or_else(|| c.to_ascii_lowercase(), str::to_string)
            }),
        );
        set(
            &mut geo.isp,
            row.isp.and_then(non_empty).map(str::to_string),
        );
        if let Some(asn) = row.asn.filter(|asn| *asn != 0) {
            geo.asn = Some(asn);
        }
    }
}
