//! Carrier names: folding raw ISP text and ASNs to the carrier keys rules match on.
//!
//! Rules say `carrier = ["telecom"]`; databases say "电信", "China Telecom", or only an
//! ASN. This module owns that mapping so every source lands on the same small set of
//! keys: `telecom`, `unicom`, `mobile`, `cernet`, `broadcast` (and whatever else the
//! ASN table names).

use std::collections::HashMap;
use std::path::Path;

use super::GeoIpError;

/// The ASN table shipped in `geoip/asn-carriers.toml`, used when the config names none.
pub const BUILTIN_ASN_CARRIERS: &str = include_str!("../../geoip/asn-carriers.toml");

/// The carrier keys this module folds to.
const KEYS: &[&str] = &["telecom", "unicom", "mobile", "cernet", "broadcast"];

/// Carriers outside mainland China whose names contain 电信/联通 but are not
/// China Telecom or China Unicom.
const NOT_MAINLAND: &[&str] = &[
    "中华电信",
    "远传电信",
    "台湾大哥大",
    "亚太电信",
    "香港电讯",
    "澳门电讯",
    "和记电讯",
    "数码通",
];

/// Folds raw ISP text ("电信", "China Unicom", "cernet") to a carrier key.
pub fn normalize(raw: &str) -> Option<&'static str> {
    let name = raw.trim();
    // Databases we build store the key itself: answer those without the text search,
    // which is on the lookup path.
    if let Some(key) = KEYS.iter().find(|key| **key == name) {
        return Some(key);
    }
    if name.is_empty() || NOT_MAINLAND.iter().any(|n| name.contains(n)) {
        return None;
    }
    let lower = name.to_ascii_lowercase();
    let has = |needles: &[&str]| {
        needles
            .iter()
            .any(|n| name.contains(n) || lower.contains(n))
    };
    // 铁通 (China Tietong) was folded into China Mobile in 2008 and routes as mobile.
    if has(&["铁通", "移动", "mobile", "tietong"]) {
        Some("mobile")
    } else if has(&["电信", "telecom", "chinanet"]) {
        Some("telecom")
    } else if has(&["联通", "unicom", "cnc"]) {
        Some("unicom")
    } else if has(&["教育网", "cernet", "education"]) {
        Some("cernet")
    } else if has(&["广电", "broadcast"]) {
        Some("broadcast")
    } else {
        None
    }
}

/// ASN organisation names of the mainland carriers, upper-cased, in match order.
///
/// Deliberately narrower than [`normalize`]: whois organisation names worldwide contain
/// "Telecom", "Mobile" and "Education", so only the Chinese carriers' own names count.
const ORG_PATTERNS: &[(&str, &str)] = &[
    // Tietong before "Telecom": "China TieTong Telecommunications" routes as mobile.
    ("CHINA TIETONG", "mobile"),
    ("CHINA RAILCOM", "mobile"),
    ("CHINANET", "telecom"),
    ("CHINA TELECOM", "telecom"),
    ("CHINA UNICOM", "unicom"),
    ("CHINA169", "unicom"),
    ("CNCGROUP", "unicom"),
    ("CHINA NETCOM", "unicom"),
    ("CHINA MOBILE", "mobile"),
    ("CMNET", "mobile"),
    ("CERNET", "cernet"),
    ("CHINA EDUCATION AND RESEARCH NETWORK", "cernet"),
    ("CHINA BROADNET", "broadcast"),
];

/// Folds an ASN organisation name ("CHINANET-BACKBONE", "China Unicom Beijing") to a
/// carrier key; only the mainland carriers' own names match.
pub fn from_org_name(org: &str) -> Option<&'static str> {
    let upper = org.to_ascii_uppercase();
    ORG_PATTERNS
        .iter()
        .find(|(pattern, _)| upper.contains(pattern))
        .map(|(_, carrier)| *carrier)
}

/// ASN → carrier key, loaded from a TOML file of `carrier = [asn, ...]` lines.
#[derive(Debug, Clone, Default)]
pub struct AsnCarriers {
    by_asn: HashMap<u32, Box<str>>,
}

impl AsnCarriers {
    /// The table shipped with the project.
    pub fn builtin() -> Self {
        Self::parse(BUILTIN_ASN_CARRIERS, Path::new("geoip/asn-carriers.toml")).unwrap_or_default()
    }

    /// Loads a table from a file.
    pub fn load(path: &Path) -> Result<Self, GeoIpError> {
        let text = std::fs::read_to_string(path).map_err(|source| GeoIpError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses `carrier = [asn, ...]`; an ASN listed under two carriers is an error.
    pub fn parse(text: &str, path: &Path) -> Result<Self, GeoIpError> {
        let table: HashMap<String, Vec<u32>> =
            toml::from_str(text).map_err(|e| GeoIpError::AsnTable {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
        let mut by_asn = HashMap::new();
        for (carrier, asns) in &table {
            for asn in asns {
                if let Some(previous) = by_asn.insert(*asn, carrier.as_str().into()) {
                    return Err(GeoIpError::AsnTable {
                        path: path.to_path_buf(),
                        message: format!("AS{asn} is listed under both {previous} and {carrier}"),
                    });
                }
            }
        }
        Ok(Self { by_asn })
    }

    /// The carrier that owns `asn`, if the table knows it.
    pub fn carrier(&self, asn: u32) -> Option<&str> {
        self.by_asn.get(&asn).map(|c| &**c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chinese_and_english_isp_names_fold_to_carriers() {
        assert_eq!(normalize("电信"), Some("telecom"));
        assert_eq!(normalize("China Telecom"), Some("telecom"));
        assert_eq!(normalize("联通"), Some("unicom"));
        assert_eq!(normalize("移动"), Some("mobile"));
        assert_eq!(normalize("铁通"), Some("mobile"));
        assert_eq!(normalize("教育网"), Some("cernet"));
        assert_eq!(normalize("telecom"), Some("telecom"));
        assert_eq!(normalize(""), None);
        assert_eq!(normalize("Google LLC"), None);
    }

    #[test]
    fn taiwan_and_hong_kong_carriers_are_not_mainland_carriers() {
        assert_eq!(normalize("中华电信"), None);
        assert_eq!(normalize("远传电信"), None);
        assert_eq!(normalize("香港电讯"), None);
    }

    #[test]
    fn carrier_org_names_fold_but_foreign_telecoms_do_not() {
        assert_eq!(from_org_name("CHINANET-BACKBONE"), Some("telecom"));
        assert_eq!(
            from_org_name("China Unicom Beijing Province Network"),
            Some("unicom")
        );
        assert_eq!(
            from_org_name("China Mobile Communications Group Co., Ltd."),
            Some("mobile")
        );
        assert_eq!(from_org_name("CERNET2 IX at Tsinghua"), Some("cernet"));
        for foreign in [
            "Deutsche Telekom AG",
            "Telecom Italia",
            "T-Mobile USA, Inc.",
            "Google LLC",
        ] {
            assert_eq!(from_org_name(foreign), None, "{foreign}");
        }
    }

    #[test]
    fn builtin_table_knows_the_big_three_and_cernet() {
        let table = AsnCarriers::builtin();
        assert_eq!(table.carrier(4134), Some("telecom"));
        assert_eq!(table.carrier(4837), Some("unicom"));
        assert_eq!(table.carrier(9929), Some("unicom"));
        assert_eq!(table.carrier(56044), Some("mobile"));
        assert_eq!(table.carrier(4538), Some("cernet"));
        assert_eq!(table.carrier(15169), None);
    }

    #[test]
    fn an_asn_under_two_carriers_is_rejected() {
        let err = AsnCarriers::parse("telecom = [1]\nunicom = [1]\n", Path::new("t.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("AS1") && err.contains("t.toml"), "{err}");
    }
}
