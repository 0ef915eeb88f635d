//! Operator overrides (`[geoip] overrides = "overrides.csv"`): rows in the columns of
//! `httpdns geoip build --csv`, laid over the database for an operator who knows better
//! about their own users (an office range, a partner ISP).
//!
//! Compiled at load into an in-memory MaxMind DB with the most specific network winning,
//! so a lookup costs one more tree walk. A row's non-empty cells replace the database's
//! fields; empty cells keep the database's answer. Reloaded with the database.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use maxminddb::Reader;

use super::{FlatRecord, Geo, GeoIpError, decode};

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
        let row = row.fold(false);
        let set = |field: &mut Option<Arc<str>>, value: Option<Arc<str>>| {
            if value.is_some() {
                *field = value;
            }
        };
        set(&mut geo.country, row.country);
        set(&mut geo.province, row.province);
        set(&mut geo.city, row.city);
        set(&mut geo.carrier, row.carrier);
        set(&mut geo.isp, row.isp);
        if let Some(asn) = row.asn {
            geo.asn = Some(asn);
        }
    }
}
