//! The precedence rules of an open-data build: for one range, what each source says and
//! which of them decides each field of the written record.
//!
//! Evidence order for the carrier: the announcing network first. A prefix announced by a
//! mainland carrier's ASN (`geoip/asn-carriers.toml`) is that carrier's, and in China,
//! unless ip2region/ipv6wry place it in Hong Kong, Macau or Taiwan (their carriers are not
//! mainland carriers). The BGP table is weeks old; ip2region's ISP text is years old and
//! was the cause of most wrong carriers. Where the ASN is not a mainland carrier's
//! (second-tier ISPs, clouds, leased space) the ISP text decides.
//!
//! Every record carries its sources' views (`src`) and the rule that chose each field
//! (`why`) so `httpdns geoip explain` can answer from the database alone; every range
//! where sources disagree is returned as a [`Disagreement`] for the build summary. Pure:
//! no I/O.
//!
//! The provenance is stored compactly because it makes most records distinct, and the
//! writer holds every distinct record several times over until it serialises (its value
//! pool, the pool's index, the data section's dedup table): `src` is an array of three
//! strings (`""` for none), `why` one `u16` of three 4-bit rule codes ([`Provenance::pack`]).
//! As nested maps they took the release build from about 560 MB to 1.46 GB peak RSS,
//! against a 1.5 GB budget.

use std::collections::BTreeMap;

use mmdb_writer::Value;

use super::sweep::{AsnInfo, Region};
use crate::geoip::{AsnCarriers, carrier};

/// The rule that chose a field (or, for the carrier, left it empty). Stored by key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rule {
    /// ip2region/ipv6wry placed the range (country) or gave the province and city.
    Region,
    /// The announcing ASN is a mainland carrier's: carrier, and country CN.
    AnnouncingAsn,
    /// The ISP text of ip2region/ipv6wry, the ASN not being a mainland carrier's.
    IspText,
    /// The ASN's organisation name (no ISP text, ASN not in the carrier table).
    AsnOrg,
    /// The whois country (no Chinese source and no carrier ASN).
    Whois,
    /// No carrier: ip2region/ipv6wry place the range in HK, MO or TW.
    HkMoTw,
    /// No carrier: the country is known and is not CN.
    NotChina,
}

impl Rule {
    const ALL: [Rule; 7] = [
        Rule::Region,
        Rule::AnnouncingAsn,
        Rule::IspText,
        Rule::AsnOrg,
        Rule::Whois,
        Rule::HkMoTw,
        Rule::NotChina,
    ];

    /// The key written into the database.
    pub fn key(self) -> &'static str {
        match self {
            Rule::Region => "region",
            Rule::AnnouncingAsn => "announcing_asn",
            Rule::IspText => "isp_text",
            Rule::AsnOrg => "asn_org",
            Rule::Whois => "whois",
            Rule::HkMoTw => "hk_mo_tw",
            Rule::NotChina => "not_china",
        }
    }

    /// The rule stored under `key`.
    pub fn from_key(key: &str) -> Option<Rule> {
        Rule::ALL.into_iter().find(|rule| rule.key() == key)
    }

    /// The rule's code in the packed `why` field: stable, never reused; 0 means no rule.
    fn code(self) -> u16 {
        match self {
            Rule::Region => 1,
            Rule::AnnouncingAsn => 2,
            Rule::IspText => 3,
            Rule::AsnOrg => 4,
            Rule::Whois => 5,
            Rule::HkMoTw => 6,
            Rule::NotChina => 7,
        }
    }

    fn from_code(code: u16) -> Option<Rule> {
        Rule::ALL.into_iter().find(|rule| rule.code() == code)
    }

    /// One line for people: why this rule decides.
    pub fn reason(self) -> &'static str {
        match self {
            Rule::Region => "ip2region/ipv6wry know China's provinces and places",
            Rule::AnnouncingAsn => {
                "announced by a mainland carrier's ASN (geoip/asn-carriers.toml); \
                 the routing table is newer than the ISP text"
            }
            Rule::IspText => {
                "the ISP text of ip2region/ipv6wry; the ASN is not a mainland carrier's"
            }
            Rule::AsnOrg => "the ASN organisation name; no ISP text",
            Rule::Whois => "whois country; no Chinese source places the range",
            Rule::HkMoTw => "placed in HK/MO/TW, whose carriers are not mainland carriers",
            Rule::NotChina => "mainland carriers only apply in CN",
        }
    }
}

/// What each source said about a range, kept for `geoip explain`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceViews {
    /// ip2region/ipv6wry: `country|province|city|isp` as in the source.
    pub region: Option<String>,
    pub asn_org: Option<String>,
    pub whois: Option<String>,
}

impl SourceViews {
    /// The stored form: `[region, asn_org, whois]`, `""` for a source that said nothing.
    fn to_value(&self) -> Option<Value> {
        let views = [&self.region, &self.asn_org, &self.whois];
        views
            .iter()
            .any(|v| v.is_some())
            .then(|| Value::array(views.map(|v| Value::from(v.as_deref().unwrap_or("")))))
    }

    /// Reads the stored form back (`None` when it is not three strings).
    pub fn from_stored(views: &[String]) -> Option<SourceViews> {
        let some = |s: &String| Some(s.clone()).filter(|s| !s.is_empty());
        match views {
            [region, asn_org, whois] => Some(SourceViews {
                region: some(region),
                asn_org: some(asn_org),
                whois: some(whois),
            }),
            _ => None,
        }
    }
}

/// Which rule chose the country, the carrier (or its absence) and the ISP name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Provenance {
    pub country: Option<Rule>,
    pub carrier: Option<Rule>,
    pub isp: Option<Rule>,
}

impl Provenance {
    /// The stored form: the country rule's code in bits 0-3, the carrier's in 4-7, the
    /// ISP's in 8-11 (0: no rule).
    pub fn pack(&self) -> u16 {
        let code = |rule: Option<Rule>| rule.map_or(0, Rule::code);
        code(self.country) | code(self.carrier) << 4 | code(self.isp) << 8
    }

    /// Reads [`Provenance::pack`] back; unknown codes read as no rule.
    pub fn unpack(packed: u16) -> Provenance {
        let rule = |shift: u16| Rule::from_code(packed >> shift & 0xf);
        Provenance {
            country: rule(0),
            carrier: rule(4),
            isp: rule(8),
        }
    }
}

/// The flat record written for one merged range.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MergedRecord {
    pub country: Option<String>,
    pub province: Option<String>,
    pub city: Option<String>,
    pub carrier: Option<String>,
    pub isp: Option<String>,
    pub asn: Option<u32>,
    pub sources: SourceViews,
    pub why: Provenance,
}

impl MergedRecord {
    pub(crate) fn is_empty(&self) -> bool {
        self.country.is_none()
            && self.province.is_none()
            && self.city.is_none()
            && self.carrier.is_none()
            && self.isp.is_none()
            && self.asn.is_none()
    }

    /// The MaxMind DB value: the flat fields the lookup reads, then `src` and `why`.
    pub(crate) fn to_value(&self) -> Value {
        let strings = [
            ("country", &self.country),
            ("province", &self.province),
            ("city", &self.city),
            ("carrier", &self.carrier),
            ("isp", &self.isp),
        ];
        let mut fields: Vec<(&str, Value)> = present(strings);
        if let Some(asn) = self.asn {
            fields.push(("asn", Value::U32(asn)));
        }
        if let Some(sources) = self.sources.to_value() {
            fields.push(("src", sources));
        }
        if self.why != Provenance::default() {
            fields.push(("why", Value::U16(self.why.pack())));
        }
        Value::map(fields)
    }
}

fn present<'a, const N: usize>(fields: [(&'a str, &Option<String>); N]) -> Vec<(&'a str, Value)> {
    fields
        .into_iter()
        .filter_map(|(key, value)| Some((key, Value::from(value.clone()?))))
        .collect()
}

/// Two sources disagreeing about a field of one range, and how it was settled.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Disagreement {
    /// `carrier` or `country`.
    pub field: &'static str,
    /// The side that lost, e.g. `isp text telecom`, `whois US`.
    pub lost: String,
    /// The side that won, e.g. `announcing ASN unicom`.
    pub won: String,
    /// The value written (`-` for none).
    pub written: String,
    pub rule: Rule,
}

/// Address counts per disagreement, IPv4 and IPv6.
pub type DisagreementCounts = BTreeMap<Disagreement, [u128; 2]>;

/// Merges one range. Returns the record and every disagreement the rules settled.
pub fn merge(
    region: Option<&Region>,
    asn: Option<&AsnInfo>,
    whois_country: Option<&str>,
    carriers: &AsnCarriers,
) -> (MergedRecord, Vec<Disagreement>) {
    let whois = whois_country.map(str::to_ascii_uppercase);
    let asn_carrier = asn.and_then(|a| carriers.carrier(a.asn));
    let org = asn.and_then(|a| a.org.as_deref());
    let region_isp = region.and_then(|r| r.isp.as_deref());
    let text_carrier = region_isp.and_then(carrier::normalize);
    let off_mainland = region.filter(|r| r.country != "CN");

    let (country, country_rule) = match (region, asn_carrier, &whois) {
        (Some(r), _, _) => (Some(r.country.clone()), Some(Rule::Region)),
        (None, Some(_), _) => (Some("CN".to_string()), Some(Rule::AnnouncingAsn)),
        (None, None, Some(w)) => (Some(w.clone()), Some(Rule::Whois)),
        (None, None, None) => (None, None),
    };
    let in_china = matches!(country.as_deref(), None | Some("CN"));
    let (carrier, carrier_rule) = if off_mainland.is_some() {
        (None, Some(Rule::HkMoTw))
    } else if let Some(c) = asn_carrier {
        (Some(c), Some(Rule::AnnouncingAsn))
    } else if !in_china {
        (None, Some(Rule::NotChina))
    } else if let Some(c) = text_carrier {
        (Some(c), Some(Rule::IspText))
    } else if let Some(c) = org.and_then(carrier::from_org_name) {
        (Some(c), Some(Rule::AsnOrg))
    } else {
        (None, None)
    };
    let (isp, isp_rule) = match (region_isp, org) {
        (Some(text), _) => (Some(text), Some(Rule::IspText)),
        (None, Some(org)) => (Some(org), Some(Rule::AsnOrg)),
        (None, None) => (None, None),
    };

    let mut disagreements = Vec::new();
    let text_label = || match (text_carrier, region_isp) {
        (Some(c), _) => format!("isp text {c}"),
        (None, Some(_)) => "isp text no carrier".to_string(),
        (None, None) => "no isp text".to_string(),
    };
    match (asn_carrier, off_mainland) {
        (Some(c), Some(r)) => disagreements.push(Disagreement {
            field: "carrier",
            lost: format!("announcing ASN {c}"),
            won: format!("region {}", r.country),
            written: "-".to_string(),
            rule: Rule::HkMoTw,
        }),
        (Some(c), None) if text_carrier != Some(c) => disagreements.push(Disagreement {
            field: "carrier",
            lost: text_label(),
            won: format!("announcing ASN {c}"),
            written: c.to_string(),
            rule: Rule::AnnouncingAsn,
        }),
        (None, _) if asn.is_some() && carrier_rule == Some(Rule::IspText) => {
            disagreements.push(Disagreement {
                field: "carrier",
                lost: "announcing ASN not a carrier's".to_string(),
                won: text_label(),
                written: carrier.unwrap_or("-").to_string(),
                rule: Rule::IspText,
            })
        }
        _ => {}
    }
    if let (Some(w), Some(c), Some(rule)) = (&whois, &country, country_rule) {
        if w != c {
            let won = match rule {
                Rule::AnnouncingAsn => format!("announcing ASN {}", asn_carrier.unwrap_or("-")),
                _ => format!("region {c}"),
            };
            disagreements.push(Disagreement {
                field: "country",
                lost: format!("whois {w}"),
                won,
                written: c.clone(),
                rule,
            });
        }
    }

    let record = MergedRecord {
        province: region.and_then(|r| r.province.clone()),
        city: region.and_then(|r| r.city.clone()),
        carrier: carrier.map(str::to_string),
        isp: isp.map(str::to_string),
        asn: asn.map(|a| a.asn).filter(|n| *n != 0),
        country,
        sources: SourceViews {
            region: region.map(|r| r.text.clone()),
            asn_org: org.map(str::to_string),
            whois,
        },
        why: Provenance {
            country: country_rule,
            carrier: carrier_rule,
            isp: isp_rule,
        },
    };
    (record, disagreements)
}

/// Prints the disagreement counts, most addresses first, as the build summary does.
pub fn write_disagreements(
    f: &mut std::fmt::Formatter<'_>,
    counts: &DisagreementCounts,
) -> std::fmt::Result {
    if counts.is_empty() {
        return writeln!(f, "sources agreed everywhere");
    }
    writeln!(
        f,
        "source disagreements (addresses IPv4 / IPv6; lost vs won -> written, rule):"
    )?;
    let mut rows: Vec<_> = counts.iter().collect();
    rows.sort_by(|a, b| {
        b.1[0]
            .cmp(&a.1[0])
            .then(b.1[1].cmp(&a.1[1]))
            .then(a.0.cmp(b.0))
    });
    for (d, [v4, v6]) in rows {
        writeln!(
            f,
            "  {:<7} {} vs {} -> {} ({}): {v4} / {v6}",
            d.field,
            d.lost,
            d.won,
            d.written,
            d.rule.key()
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::geoip::build::sweep::fixtures::{asn, region};

    fn run(
        region: Option<&Region>,
        asn: Option<&AsnInfo>,
        whois: Option<&str>,
    ) -> (MergedRecord, Vec<Disagreement>) {
        merge(region, asn, whois, &AsnCarriers::builtin())
    }

    #[test]
    fn announcing_carrier_asn_wins_over_older_isp_text() {
        // 电信 text on a prefix AS4837 (China Unicom) announces: the routing table decides.
        let (record, disagreements) = run(
            Some(&region("中国", "河北省", "电信")),
            Some(&asn(4837, "CHINA UNICOM China169 Backbone")),
            Some("CN"),
        );
        assert_eq!(record.carrier.as_deref(), Some("unicom"));
        assert_eq!(record.why.carrier, Some(Rule::AnnouncingAsn));
        assert_eq!(record.isp.as_deref(), Some("电信"));
        assert_eq!(record.province.as_deref(), Some("CN-HE"));
        assert_eq!(
            disagreements,
            vec![Disagreement {
                field: "carrier",
                lost: "isp text telecom".into(),
                won: "announcing ASN unicom".into(),
                written: "unicom".into(),
                rule: Rule::AnnouncingAsn,
            }]
        );
    }

    #[test]
    fn carrier_asn_with_foreign_whois_is_china_and_that_carrier() {
        let (record, disagreements) = run(None, Some(&asn(4134, "CHINANET-BACKBONE")), Some("US"));
        assert_eq!(record.country.as_deref(), Some("CN"));
        assert_eq!(record.why.country, Some(Rule::AnnouncingAsn));
        assert_eq!(record.carrier.as_deref(), Some("telecom"));
        assert_eq!(record.sources.whois.as_deref(), Some("US"));
        assert!(
            disagreements
                .iter()
                .any(|d| d.field == "country" && d.lost == "whois US" && d.written == "CN"),
            "{disagreements:?}"
        );
    }

    #[test]
    fn cernet2_without_ipv6wry_reads_cn_cernet_not_au() {
        let (record, _) = run(
            None,
            Some(&asn(4538, "China Education and Research Network Center")),
            Some("AU"),
        );
        assert_eq!(record.country.as_deref(), Some("CN"));
        assert_eq!(record.carrier.as_deref(), Some("cernet"));
    }

    #[test]
    fn hong_kong_macau_and_taiwan_ranges_get_no_mainland_carrier_even_from_a_carrier_asn() {
        for (province, country) in [("香港", "HK"), ("澳门", "MO"), ("台湾省", "TW")] {
            let (record, disagreements) = run(
                Some(&region("中国", province, "电信")),
                Some(&asn(4134, "CHINANET-BACKBONE")),
                Some("CN"),
            );
            assert_eq!(record.country.as_deref(), Some(country));
            assert_eq!(record.carrier, None);
            assert_eq!(record.why.carrier, Some(Rule::HkMoTw));
            assert_eq!(disagreements[0].rule, Rule::HkMoTw, "{disagreements:?}");
        }
    }

    #[test]
    fn second_tier_isp_asn_keeps_the_isp_text_carrier() {
        // Dr. Peng (AS17964) resells carrier lines; ip2region names the line.
        let (record, disagreements) = run(
            Some(&region("中国", "北京", "联通")),
            Some(&asn(17964, "Beijing Dian-Xin-Tong Network Technologies")),
            Some("CN"),
        );
        assert_eq!(record.carrier.as_deref(), Some("unicom"));
        assert_eq!(record.why.carrier, Some(Rule::IspText));
        assert_eq!(disagreements[0].lost, "announcing ASN not a carrier's");
    }

    #[test]
    fn cloud_asn_with_cloud_isp_text_has_no_carrier() {
        let (record, disagreements) = run(
            Some(&region("中国", "浙江省", "阿里云")),
            Some(&asn(37963, "Hangzhou Alibaba Advertising Co.,Ltd.")),
            Some("CN"),
        );
        assert_eq!(record.country.as_deref(), Some("CN"));
        assert_eq!(record.carrier, None);
        assert_eq!(record.isp.as_deref(), Some("阿里云"));
        assert!(disagreements.is_empty(), "{disagreements:?}");
    }

    #[test]
    fn org_name_fills_in_when_there_is_no_text_and_no_table_entry() {
        let (record, _) = run(
            None,
            Some(&asn(64_999, "China Mobile Guangdong")),
            Some("CN"),
        );
        assert_eq!(record.carrier.as_deref(), Some("mobile"));
        assert_eq!(record.why.carrier, Some(Rule::AsnOrg));
        assert_eq!(record.isp.as_deref(), Some("China Mobile Guangdong"));
    }

    #[test]
    fn chinese_sources_override_a_wrong_whois_country() {
        let (record, disagreements) =
            run(Some(&region("中国", "北京市", "教育网")), None, Some("AU"));
        assert_eq!(record.country.as_deref(), Some("CN"));
        assert_eq!(record.why.country, Some(Rule::Region));
        assert_eq!(record.carrier.as_deref(), Some("cernet"));
        assert_eq!(disagreements[0].lost, "whois AU");
    }

    #[test]
    fn foreign_networks_get_no_carrier() {
        let (record, disagreements) = run(None, Some(&asn(15169, "GOOGLE")), Some("US"));
        assert_eq!(record.country.as_deref(), Some("US"));
        assert_eq!(record.carrier, None);
        assert_eq!(record.why.carrier, Some(Rule::NotChina));
        assert!(disagreements.is_empty());
    }

    #[test]
    fn rules_round_trip_through_their_keys() {
        for rule in Rule::ALL {
            assert_eq!(Rule::from_key(rule.key()), Some(rule));
        }
        assert_eq!(Rule::from_key("nonsense"), None);
    }

    #[test]
    fn provenance_round_trips_through_its_packed_form() {
        let mut codes = std::collections::BTreeSet::new();
        for rule in Rule::ALL {
            assert!(codes.insert(rule.code()), "{rule:?} reuses a code");
            assert!(
                (1..16).contains(&rule.code()),
                "{rule:?} does not fit 4 bits"
            );
            for other in [None, Some(Rule::Whois)] {
                let why = Provenance {
                    country: other,
                    carrier: Some(rule),
                    isp: other.or(Some(rule)),
                };
                assert_eq!(Provenance::unpack(why.pack()), why);
            }
        }
        assert_eq!(Provenance::default().pack(), 0);
        assert_eq!(Provenance::unpack(0xfff), Provenance::default());
    }

    #[test]
    fn source_views_round_trip_through_their_stored_form() {
        let views = SourceViews {
            region: Some("中国|0|广东省|广州市|电信".into()),
            asn_org: None,
            whois: Some("CN".into()),
        };
        let Some(Value::Array(stored)) = views.to_value() else {
            panic!("not an array: {:?}", views.to_value());
        };
        let strings: Vec<String> = stored
            .iter()
            .map(|v| match v {
                Value::String(s) => s.clone(),
                other => panic!("not a string: {other:?}"),
            })
            .collect();
        assert_eq!(strings[1], "");
        assert_eq!(SourceViews::from_stored(&strings), Some(views));
        assert_eq!(SourceViews::default().to_value(), None);
        assert_eq!(SourceViews::from_stored(&strings[..2]), None);
    }
}
