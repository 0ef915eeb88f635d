//! The zone apexes we are authoritative for: their SOA and NS records, compiled once.
//!
//! An apex (`example.com`) marks where our authority starts. It answers SOA and NS so
//! resolvers and `dig` can walk to us, lends its SOA to negative answers (NXDOMAIN and
//! NODATA, RFC 2308), and decides NXDOMAIN versus REFUSED: a name under an apex that is
//! no configured domain does not exist; a name under no apex and no domain is not ours,
//! and we are not an open resolver. Steering answers (A/AAAA) are not made here.

use hickory_proto::rr::rdata::{NS, SOA};
use hickory_proto::rr::{Name, RData, Record};
use thiserror::Error;

use crate::config::ApexConfig;
use crate::model::{normalize_host, valid_host};

/// A `[[dns.apex]]` entry that cannot be served.
#[derive(Debug, Error)]
#[error("dns.apex[{index}] ({apex}): {field}: {message}")]
pub struct ApexError {
    pub index: usize,
    pub apex: String,
    pub field: &'static str,
    pub message: String,
}

/// One apex and its records.
#[derive(Debug, Clone)]
pub struct Apex {
    /// Lower case, fully qualified.
    pub name: Name,
    soa: Record,
    ns: Vec<Record>,
    negative_ttl: u32,
}

impl Apex {
    /// The SOA record, as answered for `SOA` queries.
    pub fn soa(&self) -> Record {
        self.soa.clone()
    }

    /// The SOA for the authority section of a negative answer: its TTL is the
    /// negative-caching time (the smaller of the record TTL and MINIMUM).
    pub fn negative_soa(&self) -> Record {
        let mut soa = self.soa.clone();
        soa.ttl = self.negative_ttl;
        soa
    }

    pub fn ns(&self) -> &[Record] {
        &self.ns
    }
}

/// Every configured apex.
#[derive(Debug, Clone, Default)]
pub struct Authority {
    apexes: Vec<Apex>,
}

impl Authority {
    /// Checks and compiles the `[[dns.apex]]` entries.
    pub fn compile(specs: &[ApexConfig]) -> Result<Self, ApexError> {
        let mut apexes: Vec<Apex> = Vec::with_capacity(specs.len());
        for (index, spec) in specs.iter().enumerate() {
            let error = |field, message: String| ApexError {
                index,
                apex: spec.name.clone(),
                field,
                message,
            };
            let name = dns_name(&spec.name).ok_or_else(|| {
                error(
                    "name",
                    format!("{:?} is not a valid domain name", spec.name),
                )
            })?;
            if apexes.iter().any(|a| a.name == name) {
                return Err(error("name", "listed twice".into()));
            }
            if spec.ns.is_empty() {
                return Err(error("ns", "needs at least one name server".into()));
            }
            let ns: Vec<Name> = spec
                .ns
                .iter()
                .map(|n| {
                    dns_name(n).ok_or_else(|| error("ns", format!("{n:?} is not a valid name")))
                })
                .collect::<Result<_, _>>()?;
            let mname = match &spec.mname {
                Some(m) => dns_name(m)
                    .ok_or_else(|| error("mname", format!("{m:?} is not a valid name")))?,
                None => ns[0].clone(),
            };
            let rname = match &spec.rname {
                Some(r) => dns_name(r)
                    .ok_or_else(|| error("rname", format!("{r:?} is not a valid name")))?,
                None => dns_name(&format!("hostmaster.{}", spec.name))
                    .ok_or_else(|| error("rname", "hostmaster.<apex> is too long".into()))?,
            };
            let signed = |field, value: u32| {
                i32::try_from(value).map_err(|_| error(field, format!("{value} is over 2^31-1")))
            };
            let soa = SOA::new(
                mname,
                rname,
                spec.serial,
                signed("refresh", spec.refresh)?,
                signed("retry", spec.retry)?,
                signed("expire", spec.expire)?,
                spec.minimum,
            );
            apexes.push(Apex {
                soa: Record::from_rdata(name.clone(), spec.ttl, RData::SOA(soa)),
                ns: ns
                    .into_iter()
                    .map(|n| Record::from_rdata(name.clone(), spec.ttl, RData::NS(NS(n))))
                    .collect(),
                negative_ttl: spec.ttl.min(spec.minimum),
                name,
            });
        }
        Ok(Self { apexes })
    }

    /// Whether `host` (normalised: lower case, no trailing dot) is an apex itself; what
    /// [`Self::apex_of`] tells by comparing names, without building one.
    pub fn is_apex(&self, host: &str) -> bool {
        self.apexes
            .iter()
            .any(|apex| apex.name.iter().eq(host.split('.').map(str::as_bytes)))
    }

    /// The deepest apex `name` (lower case) is at or under.
    pub fn apex_of(&self, name: &Name) -> Option<&Apex> {
        self.apexes
            .iter()
            .filter(|apex| apex.name.zone_of(name))
            .max_by_key(|apex| apex.name.num_labels())
    }
}

/// A configured name as a lower-case, fully qualified DNS name, if it is a valid host.
fn dns_name(text: &str) -> Option<Name> {
    let host = normalize_host(text);
    if !valid_host(&host) {
        return None;
    }
    Name::from_ascii(format!("{host}.")).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apex(name: &str) -> ApexConfig {
        ApexConfig {
            name: name.into(),
            ns: vec![format!("ns1.{name}")],
            mname: None,
            rname: None,
            serial: 7,
            refresh: 3600,
            retry: 600,
            expire: 604_800,
            minimum: 30,
            ttl: 3600,
        }
    }

    fn name(text: &str) -> Name {
        Name::from_ascii(text).unwrap()
    }

    #[test]
    fn deepest_apex_wins_and_outside_names_have_none() {
        let authority = Authority::compile(&[apex("example.com"), apex("cn.example.com")]).unwrap();
        let of = |n| authority.apex_of(&name(n)).map(|a| a.name.to_ascii());
        assert_eq!(of("a.cn.example.com."), Some("cn.example.com.".into()));
        assert_eq!(of("api.example.com."), Some("example.com.".into()));
        assert_eq!(of("example.com."), Some("example.com.".into()));
        assert_eq!(of("example.org."), None);
        assert_eq!(of("badexample.com."), None);
    }

    #[test]
    fn is_apex_agrees_with_apex_of_for_the_apex_itself() {
        let authority = Authority::compile(&[apex("Example.COM"), apex("cn.example.com")]).unwrap();
        for host in [
            "example.com",
            "cn.example.com",
            "api.example.com",
            "com",
            "example.org",
        ] {
            let at_apex = authority
                .apex_of(&name(&format!("{host}.")))
                .is_some_and(|a| a.name == name(&format!("{host}.")));
            assert_eq!(authority.is_apex(host), at_apex, "{host}");
        }
        assert!(authority.is_apex("cn.example.com"));
        assert!(!authority.is_apex("a.cn.example.com"));
    }

    #[test]
    fn soa_defaults_and_negative_ttl() {
        let authority = Authority::compile(&[apex("Example.COM.")]).unwrap();
        let apex = authority.apex_of(&name("example.com.")).unwrap();
        let RData::SOA(soa) = apex.soa().data else {
            panic!("not an SOA")
        };
        assert_eq!(soa.mname.to_ascii(), "ns1.example.com.");
        assert_eq!(soa.rname.to_ascii(), "hostmaster.example.com.");
        assert_eq!(soa.serial, 7);
        assert_eq!(apex.negative_soa().ttl, 30);
        assert_eq!(apex.ns().len(), 1);
    }

    #[test]
    fn bad_apexes_are_errors_naming_the_field() {
        let mut no_ns = apex("example.com");
        no_ns.ns.clear();
        let mut bad_name = apex("example.com");
        bad_name.name = "bad name".into();
        let mut huge = apex("example.com");
        huge.expire = u32::MAX;
        for (spec, field) in [(no_ns, "ns"), (bad_name, "name"), (huge, "expire")] {
            let err = Authority::compile(&[spec]).unwrap_err();
            assert_eq!(err.field, field, "{err}");
        }
        let err = Authority::compile(&[apex("example.com"), apex("example.com.")]).unwrap_err();
        assert!(err.to_string().contains("twice"), "{err}");
    }
}
