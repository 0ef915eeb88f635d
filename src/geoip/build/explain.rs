//! `httpdns geoip explain IP [--db DB]`: every source's view of one address, the merged
//! record, and the rule that chose each field — read from the database alone, because an
//! open-data build records its sources (`src`) and rules (`why`) in every record.
//!
//! Also shows what the server answers (the lookup, with the overrides file when one is
//! given), so an operator sees when an override or a lookup-time rule changes the record.

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::merge::Rule;
use crate::geoip::{AsnCarriers, Geo, GeoDb, GeoIpError};

#[derive(Debug, Default, Deserialize)]
struct Stored {
    country: Option<String>,
    province: Option<String>,
    city: Option<String>,
    carrier: Option<String>,
    isp: Option<String>,
    asn: Option<u32>,
    #[serde(default)]
    src: Sources,
    #[serde(default)]
    why: Why,
}

#[derive(Debug, Default, Deserialize)]
struct Sources {
    region: Option<String>,
    asn_org: Option<String>,
    whois: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct Why {
    country: Option<String>,
    carrier: Option<String>,
    isp: Option<String>,
}

/// What `geoip explain` prints for one address.
#[derive(Debug)]
pub struct Explanation {
    ip: IpAddr,
    db: PathBuf,
    overrides: Option<PathBuf>,
    network: Option<String>,
    stored: Option<Stored>,
    served: Geo,
    asn_carriers: AsnCarriers,
}

/// Explains `ip` as recorded in `db`, and as served with `overrides` laid over it.
pub fn explain(ip: IpAddr, db: &Path, overrides: Option<&Path>) -> Result<Explanation, GeoIpError> {
    let ip = ip.to_canonical();
    let reader = crate::geoip::open_reader(db)?;
    let invalid = |e: maxminddb::MaxMindDbError| GeoIpError::InvalidDb {
        path: db.to_path_buf(),
        message: e.to_string(),
    };
    let found = reader.lookup(ip).map_err(invalid)?;
    let network = found
        .has_data()
        .then(|| found.network().map(|n| n.to_string()))
        .transpose()
        .map_err(invalid)?;
    let stored = found.decode::<Stored>().map_err(invalid)?;
    let served = GeoDb::open(db, None, None)?
        .with_overrides(overrides)?
        .lookup(ip);
    Ok(Explanation {
        ip,
        db: db.to_path_buf(),
        overrides: overrides.map(Path::to_path_buf),
        network,
        stored,
        served,
        asn_carriers: AsnCarriers::builtin(),
    })
}

fn or_dash(value: Option<&str>) -> &str {
    value.unwrap_or("-")
}

impl Explanation {
    fn rule_line(key: Option<&str>) -> String {
        match key {
            None => "-".to_string(),
            Some(key) => match Rule::from_key(key) {
                Some(rule) => format!("{key}: {}", rule.reason()),
                None => format!("{key} (unknown rule)"),
            },
        }
    }
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} in {}", self.ip, self.db.display())?;
        let Some(stored) = &self.stored else {
            return writeln!(
                f,
                "  no record: the address is in no range of this database"
            );
        };
        writeln!(f, "  network {}", or_dash(self.network.as_deref()))?;
        writeln!(f, "sources")?;
        let recorded = stored.why.country.is_some() || stored.why.carrier.is_some();
        if recorded {
            let region_source = if self.ip.is_ipv4() {
                "ip2region"
            } else {
                "ipv6wry"
            };
            writeln!(
                f,
                "  {region_source:<15} {}",
                or_dash(stored.src.region.as_deref())
            )?;
            let table = stored
                .asn
                .and_then(|asn| self.asn_carriers.carrier(asn))
                .map_or("not a mainland carrier's".to_string(), |c| {
                    format!("{c} in geoip/asn-carriers.toml")
                });
            match stored.asn {
                Some(asn) => writeln!(
                    f,
                    "  announcing ASN  AS{asn} {} ({table})",
                    or_dash(stored.src.asn_org.as_deref())
                )?,
                None => writeln!(f, "  announcing ASN  -")?,
            }
            writeln!(
                f,
                "  whois country   {}",
                or_dash(stored.src.whois.as_deref())
            )?;
        } else {
            writeln!(
                f,
                "  not recorded: this database was not built from open data by this version \
                 (geoip build --csv, or another database)"
            )?;
        }
        writeln!(f, "merged record (field, value, rule)")?;
        let region_rule = |value: &Option<String>| {
            if recorded && value.is_some() {
                Self::rule_line(Some(Rule::Region.key()))
            } else {
                "-".to_string()
            }
        };
        let isp_rule = match stored.why.isp.as_deref().and_then(Rule::from_key) {
            Some(Rule::IspText) => "isp_text: the raw ISP text of ip2region/ipv6wry".to_string(),
            Some(Rule::AsnOrg) => "asn_org: the ASN organisation name; no ISP text".to_string(),
            _ => Self::rule_line(stored.why.isp.as_deref()),
        };
        let rows = [
            (
                "country",
                stored.country.clone(),
                Self::rule_line(stored.why.country.as_deref()),
            ),
            (
                "province",
                stored.province.clone(),
                region_rule(&stored.province),
            ),
            ("city", stored.city.clone(), region_rule(&stored.city)),
            (
                "carrier",
                stored.carrier.clone(),
                Self::rule_line(stored.why.carrier.as_deref()),
            ),
            ("isp", stored.isp.clone(), isp_rule),
            (
                "asn",
                stored.asn.map(|a| a.to_string()),
                if recorded && stored.asn.is_some() {
                    "the announcing network (ip-location-db asn)".to_string()
                } else {
                    "-".to_string()
                },
            ),
        ];
        for (field, value, rule) in rows {
            writeln!(f, "  {field:<9} {:<10} {rule}", or_dash(value.as_deref()))?;
        }
        let served = &self.served;
        write!(f, "served")?;
        if let Some(path) = &self.overrides {
            write!(f, " (with overrides {})", path.display())?;
        }
        writeln!(
            f,
            ": country {} province {} city {} carrier {} asn {}",
            or_dash(served.country.as_deref()),
            or_dash(served.province.as_deref()),
            or_dash(served.city.as_deref()),
            or_dash(served.carrier.as_deref()),
            served.asn.map_or("-".to_string(), |a| a.to_string())
        )
    }
}
