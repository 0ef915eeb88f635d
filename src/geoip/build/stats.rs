//! `httpdns geoip stats DB`: how much of China's IPv4 space a database can steer.
//!
//! Walks every IPv4 network of the database and asks [`GeoDb::lookup`] about it, so the
//! numbers are what the server would answer (carrier derived from ISP text or ASN
//! included), weighted by address count. Read-only; it never changes a database.

use std::collections::BTreeMap;
use std::path::Path;

use maxminddb::WithinOptions;

use crate::geoip::{GeoDb, GeoIpError};

/// Address counts over the IPv4 space of one database.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Coverage {
    /// IPv4 addresses with any country.
    pub v4_with_country: u64,
    /// IPv4 addresses whose country is CN.
    pub cn: u64,
    pub cn_with_province: u64,
    pub cn_with_carrier: u64,
    /// CN addresses per carrier key.
    pub cn_by_carrier: BTreeMap<String, u64>,
}

impl Coverage {
    /// Share of CN addresses with a province, 0..=1.
    pub fn province_share(&self) -> f64 {
        share(self.cn_with_province, self.cn)
    }

    /// Share of CN addresses with a carrier, 0..=1.
    pub fn carrier_share(&self) -> f64 {
        share(self.cn_with_carrier, self.cn)
    }
}

fn share(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

impl std::fmt::Display for Coverage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "IPv4 addresses with a country: {}", self.v4_with_country)?;
        writeln!(f, "CN IPv4 addresses:             {}", self.cn)?;
        writeln!(
            f,
            "  with province:               {:.2}%",
            100.0 * self.province_share()
        )?;
        writeln!(
            f,
            "  with carrier:                {:.2}%",
            100.0 * self.carrier_share()
        )?;
        let mut by_carrier: Vec<_> = self.cn_by_carrier.iter().collect();
        by_carrier.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        for (carrier, count) in by_carrier {
            writeln!(f, "  {carrier:<28} {:.2}%", 100.0 * share(*count, self.cn))?;
        }
        Ok(())
    }
}

/// Opens `path` and measures its coverage.
pub fn coverage_of_file(path: &Path) -> Result<Coverage, GeoIpError> {
    coverage(&GeoDb::open(path, None, None)?, path)
}

/// Measures the IPv4 coverage of `db`; `path` names it in errors.
pub fn coverage(db: &GeoDb, path: &Path) -> Result<Coverage, GeoIpError> {
    let invalid = |e: maxminddb::MaxMindDbError| GeoIpError::InvalidDb {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let all_v4 = ipnetwork::Ipv4Network::new(std::net::Ipv4Addr::UNSPECIFIED, 0)
        .map(ipnetwork::IpNetwork::V4)
        .map_err(|e| GeoIpError::InvalidDb {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    let mut coverage = Coverage::default();
    for found in db
        .city
        .within(all_v4, WithinOptions::default())
        .map_err(invalid)?
    {
        let network = found.map_err(invalid)?.network().map_err(invalid)?;
        let ipnetwork::IpNetwork::V4(v4) = network else {
            continue;
        };
        let addresses = 1u64 << (32 - u32::from(v4.prefix()));
        let geo = db.lookup(v4.network().into());
        if geo.country.is_some() {
            coverage.v4_with_country += addresses;
        }
        if geo.country.as_deref() != Some("CN") {
            continue;
        }
        coverage.cn += addresses;
        if geo.province.is_some() {
            coverage.cn_with_province += addresses;
        }
        if let Some(carrier) = geo.carrier {
            coverage.cn_with_carrier += addresses;
            *coverage
                .cn_by_carrier
                .entry(carrier.to_string())
                .or_default() += addresses;
        }
    }
    Ok(coverage)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mmdb_writer::{Value, Writer, ipnet::IpNet};

    #[test]
    fn shares_are_weighted_by_address_count() {
        let mut writer = Writer::new("t");
        let mut insert = |net: &str, fields: Vec<(&str, Value)>| {
            writer
                .insert_value(net.parse::<IpNet>().unwrap(), Value::map(fields))
                .unwrap();
        };
        // 1.0.0.0/24: CN, Guangdong, telecom. 1.0.1.0/24: CN only. 1.0.2.0/23: US.
        insert(
            "1.0.0.0/24",
            vec![
                ("country", Value::from("CN")),
                ("province", Value::from("广东")),
                ("carrier", Value::from("telecom")),
            ],
        );
        insert("1.0.1.0/24", vec![("country", Value::from("CN"))]);
        insert("1.0.2.0/23", vec![("country", Value::from("US"))]);
        let db = GeoDb::from_bytes(writer.to_bytes().unwrap()).unwrap();
        let coverage = coverage(&db, Path::new("t.mmdb")).unwrap();
        assert_eq!(coverage.v4_with_country, 1024);
        assert_eq!(coverage.cn, 512);
        assert_eq!(coverage.province_share(), 0.5);
        assert_eq!(coverage.carrier_share(), 0.5);
        assert_eq!(coverage.cn_by_carrier.get("telecom"), Some(&256));
        let text = coverage.to_string();
        assert!(
            text.contains("with province:               50.00%"),
            "{text}"
        );
    }
}
