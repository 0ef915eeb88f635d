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

use super::merge::{Provenance, Rule, SourceViews};
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
    src: StoredSources,
    #[serde(default)]
    why: StoredWhy,
}

/// `src` as [`SourceViews`] writes it (three strings), or as nested map (builds before
/// the provenance was compacted).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum StoredSources {
    Compact(Vec<String>),
    Map {
        region: Option<String>,
        asn_org: Option<String>,
        whois: Option<String>,
    },
}

impl Default for StoredSources {
    fn default() -> Self {
        StoredSources::Compact(Vec::new())
    }
}

impl StoredSources {
    fn views(&self) -> SourceViews {
        match self {
            StoredSources::Compact(views) => SourceViews::from_stored(views).unwrap_or_default(),
            StoredSources::Map {
                region,
                asn_org,
                whois,
            } => SourceViews {
                region: region.clone(),
                asn_org: asn_org.clone(),
                whois: whois.clone(),
            },
        }
    }
}

/// `why` as [`Provenance::pack`] writes it, or as a map of rule keys (older builds).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum StoredWhy {
    Packed(u16),
    Map {
        country: Option<String>,
        carrier: Option<String>,
        isp: Option<String>,
    },
}

impl Default for StoredWhy {
    fn default() -> Self {
        StoredWhy::Packed(0)
    }
}

impl StoredWhy {
    fn provenance(&self) -> Provenance {
        match self {
            StoredWhy::Packed(packed) => Provenance::unpack(*packed),
            StoredWhy::Map {
                country,
                carrier,
                isp,
            } => {
                let rule = |key: &Option<String>| key.as_deref().and_then(Rule::from_key);
                Provenance {
                    country: rule(country),
                    carrier: rule(carrier),
                    isp: rule(isp),
                }
            }
        }
    }
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
    fn rule_line(rule: Option<Rule>) -> String {
        rule.map_or("-".to_string(), |rule| {
            format!("{}: {}", rule.key(), rule.reason())
        })
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
        let why = stored.why.provenance();
        let src = stored.src.views();
        let recorded = why.country.is_some() || why.carrier.is_some();
        if recorded {
            let region_source = if self.ip.is_ipv4() {
                "ip2region"
            } else {
                "ipv6wry"
            };
            writeln!(
                f,
                "  {region_source:<15} {}",
                or_dash(src.region.as_deref())
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
                    or_dash(src.asn_org.as_deref())
                )?,
                None => writeln!(f, "  announcing ASN  -")?,
            }
            writeln!(f, "  whois country   {}", or_dash(src.whois.as_deref()))?;
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
                Self::rule_line(Some(Rule::Region))
            } else {
                "-".to_string()
            }
        };
        let isp_rule = match why.isp {
            Some(Rule::IspText) => "isp_text: the raw ISP text of ip2region/ipv6wry".to_string(),
            Some(Rule::AsnOrg) => "asn_org: the ASN organisation name; no ISP text".to_string(),
            rule => Self::rule_line(rule),
        };
        let rows = [
            (
                "country",
                stored.country.clone(),
                Self::rule_line(why.country),
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
                Self::rule_line(why.carrier),
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

#[cfg(test)]
mod tests {
    use super::*;

    use mmdb_writer::ipnet::IpNet;
    use mmdb_writer::{Value, Writer};

    use super::super::merge::MergedRecord;
    use super::super::write_atomically;
    use crate::geoip::DATABASE_TYPE;

    /// Explains 1.0.0.1 in a one-record database holding `value`.
    fn explain_value(value: Value) -> String {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.mmdb");
        let mut writer = Writer::new(DATABASE_TYPE);
        writer
            .insert_value("1.0.0.0/24".parse::<IpNet>().unwrap(), value)
            .unwrap();
        write_atomically(&path, &writer.to_bytes().unwrap()).unwrap();
        explain("1.0.0.1".parse().unwrap(), &path, None)
            .unwrap()
            .to_string()
            .replace(path.to_str().unwrap(), "DB")
    }

    fn merged() -> MergedRecord {
        MergedRecord {
            country: Some("CN".into()),
            province: Some("CN-HE".into()),
            carrier: Some("unicom".into()),
            isp: Some("电信".into()),
            asn: Some(4837),
            sources: SourceViews {
                region: Some("中国|0|河北省|0|电信".into()),
                asn_org: Some("CHINA UNICOM China169 Backbone".into()),
                whois: Some("CN".into()),
            },
            why: Provenance {
                country: Some(Rule::Region),
                carrier: Some(Rule::AnnouncingAsn),
                isp: Some(Rule::IspText),
            },
            ..MergedRecord::default()
        }
    }

    #[test]
    fn compact_and_older_map_provenance_explain_alike() {
        let compact = explain_value(merged().to_value());
        assert!(
            compact.contains("ip2region       中国|0|河北省|0|电信"),
            "{compact}"
        );
        assert!(
            compact.contains("AS4837 CHINA UNICOM China169 Backbone (unicom in"),
            "{compact}"
        );
        assert!(compact.contains("whois country   CN"), "{compact}");
        assert!(
            compact.contains("carrier   unicom     announcing_asn: announced by"),
            "{compact}"
        );

        // A database built before `src`/`why` were compacted stored them as maps.
        let record = merged();
        let Value::Map(mut fields) = record.to_value() else {
            panic!("not a map");
        };
        fields.insert(
            "src".into(),
            Value::map([
                ("region", Value::from("中国|0|河北省|0|电信")),
                ("asn_org", Value::from("CHINA UNICOM China169 Backbone")),
                ("whois", Value::from("CN")),
            ]),
        );
        fields.insert(
            "why".into(),
            Value::map([
                ("country", Value::from("region")),
                ("carrier", Value::from("announcing_asn")),
                ("isp", Value::from("isp_text")),
            ]),
        );
        assert_eq!(explain_value(Value::Map(fields)), compact);
    }

    #[test]
    fn a_record_without_provenance_says_it_was_not_recorded() {
        let text = explain_value(Value::map([("country", Value::from("US"))]));
        assert!(text.contains("not recorded"), "{text}");
        assert!(text.contains("country   US         -"), "{text}");
    }
}
