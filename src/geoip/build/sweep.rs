//! The types every open-data source yields and the sweep reads: address [`Span`]s in
//! address order, the folded Chinese [`Region`] that ip2region and ipv6wry both give, the
//! address [`Family`], and a source's [`Cursor`] in the sweep.
//!
//! The sources import this file and nothing of each other or of the merge, so the builder's
//! modules form a tree: sources → sweep ← open_data.

use std::net::IpAddr;

use crate::geoip::{GeoIpError, province};

/// An inclusive address range and what one source says about it. IPv4 addresses are
/// held as their `u32` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span<T> {
    pub start: u128,
    pub end: u128,
    pub value: T,
}

/// A span, or the error that stopped its source.
pub type SpanResult<T> = Result<Span<T>, GeoIpError>;

/// What ip2region (or ipv6wry) knows about a range in China, folded to our keys.
///
/// Only Chinese rows become a `Region`: for the rest of the world these sources are weaker
/// than the whois country data, so they are left out rather than mapped.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Region {
    /// `CN`, or `HK` / `MO` / `TW` for rows that name those as the province.
    pub country: String,
    /// ISO 3166-2 code (`CN-GD`) when the name is known, else the source's own name.
    pub province: Option<String>,
    /// City without the `市` suffix (`广州`).
    pub city: Option<String>,
    /// The source's raw ISP text (`电信`, `中国联通IDC`).
    pub isp: Option<String>,
    /// The row as the source gave it, `country|province|city|isp`, for `geoip explain`.
    pub text: String,
}

/// One row of the ip-location-db ASN CSV: the announcing network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AsnInfo {
    pub asn: u32,
    pub org: Option<String>,
}

impl Region {
    /// Folds one row of Chinese text; `None` unless the country is 中国.
    pub fn from_chinese(country: &str, province: &str, city: &str, isp: &str) -> Option<Self> {
        if known(country)? != "中国" {
            return None;
        }
        let text = [country, province, city, isp].map(str::trim).join("|");
        let code = known(province).and_then(province::code_of);
        let country = match code {
            Some("CN-HK") => "HK",
            Some("CN-MO") => "MO",
            Some("CN-TW") => "TW",
            _ => "CN",
        };
        let city = known(city).map(|c| c.strip_suffix('市').filter(|s| !s.is_empty()).unwrap_or(c));
        Some(Self {
            country: country.to_string(),
            province: known(province).map(province::normalize),
            city: city.map(str::to_string),
            isp: known(isp).map(str::to_string),
            text,
        })
    }
}

/// A field's text, or `None` for ip2region's unknown markers.
fn known(field: &str) -> Option<&str> {
    let field = field.trim();
    (!field.is_empty() && field != "0").then_some(field)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    /// The address range swept: all of IPv4, or IPv6 above `::/96` (where IPv4 lives).
    pub fn bounds(self) -> (u128, u128) {
        match self {
            Self::V4 => (0, u128::from(u32::MAX)),
            Self::V6 => (1 << 32, u128::MAX),
        }
    }

    pub fn number(self, ip: IpAddr) -> Option<u128> {
        match (self, ip) {
            (Self::V4, IpAddr::V4(v4)) => Some(u128::from(u32::from(v4))),
            (Self::V6, IpAddr::V6(v6)) => Some(u128::from(v6)),
            _ => None,
        }
    }
}

/// One source's position in the sweep: the first span that has not ended before it.
pub struct Cursor<T, I> {
    spans: I,
    current: Option<Span<T>>,
}

impl<T, I: Iterator<Item = SpanResult<T>>> Cursor<T, I> {
    pub fn new(spans: I) -> Self {
        Self {
            spans,
            current: None,
        }
    }

    /// Drops spans that end before `pos`. A span overlapping one already passed (a source
    /// bug; the real ASN CSV has one) only covers what is left of it.
    pub fn advance_to(&mut self, pos: u128) -> Result<(), GeoIpError> {
        while self.current.as_ref().is_none_or(|s| s.end < pos) {
            match self.spans.next() {
                Some(span) => self.current = Some(span?),
                None => {
                    self.current = None;
                    break;
                }
            }
        }
        Ok(())
    }

    pub fn value_at(&self, pos: u128) -> Option<&T> {
        self.current
            .as_ref()
            .filter(|s| s.start <= pos)
            .map(|s| &s.value)
    }

    /// The last address, from `pos` on, at which this source's value stays the same.
    pub fn run_end(&self, pos: u128) -> u128 {
        match &self.current {
            Some(s) if s.start <= pos => s.end,
            Some(s) => s.start - 1,
            None => u128::MAX,
        }
    }

    pub fn next_start(&self) -> Option<u128> {
        self.current.as_ref().map(|s| s.start)
    }
}

/// Source values for the builder's unit tests.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::{AsnInfo, Region};

    pub fn region(country: &str, province: &str, isp: &str) -> Region {
        Region::from_chinese(country, province, "0", isp).unwrap()
    }

    pub fn asn(asn: u32, org: &str) -> AsnInfo {
        AsnInfo {
            asn,
            org: Some(org.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hong_kong_taiwan_and_macau_rows_get_their_own_country() {
        let hk = Region::from_chinese("中国", "香港", "0", "电讯盈科").unwrap();
        assert_eq!(hk.country, "HK");
        // ipv6wry's spelling for Hong Kong.
        let hk = Region::from_chinese("中国", "香港区", "0", "Cloudflare").unwrap();
        assert_eq!(hk.country, "HK");
        let tw = Region::from_chinese("中国", "台湾省", "0", "中华电信").unwrap();
        assert_eq!(tw.country, "TW");
        assert_eq!(tw.city, None);
    }

    #[test]
    fn foreign_rows_are_left_to_the_other_sources() {
        assert_eq!(Region::from_chinese("美国", "0", "0", "Level3"), None);
        assert_eq!(Region::from_chinese("0", "0", "0", "内网IP"), None);
    }
}
