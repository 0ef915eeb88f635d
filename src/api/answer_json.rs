//! The JSON bytes of a `/resolve` answer, written straight into one buffer.
//!
//! Every `/resolve` request renders one of these, and with decisions served from the
//! answer cache, rendering through serde (a `Serialize` tree of owned vectors, each
//! address through `Display` and the formatter, every string scanned for escapes)
//! was the largest piece of user time left in the request. The shape is fixed and
//! small, so it is written directly: addresses by hand (the same text as `Display`,
//! which the tests check), integers with `itoa`, and strings copied as they are when
//! they need no escaping (host names always; zone and geo names almost always), else
//! escaped by serde_json. The output is plain JSON; the tests compare it, parsed,
//! with what serde would have made of the same answer.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use smallvec::SmallVec;

use crate::geoip::Geo;

/// The answer for one requested host.
pub enum HostAnswer<'a> {
    Found {
        host: &'a str,
        zone: &'a str,
        failover: bool,
        ttl: u32,
        ips: &'a [IpAddr],
        ipsv6: &'a [IpAddr],
        /// Inline up to one tier (the default answer limits' one fallback tier), so
        /// an answer collects its tiers without allocating.
        fallback: SmallVec<[FallbackTier<'a>; 1]>,
    },
    Failed {
        host: &'a str,
        error: &'static str,
    },
}

/// A fallback tier: a zone to try next and its endpoints.
pub struct FallbackTier<'a> {
    pub zone: &'a str,
    pub ips: &'a [IpAddr],
    pub ipsv6: &'a [IpAddr],
}

/// Writes a `/resolve` answer as JSON.
pub struct AnswerWriter {
    out: Vec<u8>,
}

impl AnswerWriter {
    /// Starts the answer: client, geo and epoch; then one [`Self::host`] per host and
    /// [`Self::finish`].
    pub fn new(client_ip: IpAddr, geo: &Geo, epoch: u64) -> Self {
        let mut writer = Self {
            out: Vec::with_capacity(512),
        };
        writer.out.extend_from_slice(b"{\"client_ip\":");
        writer.ip(client_ip);
        writer.out.extend_from_slice(b",\"geo\":{\"country\":");
        writer.optional_str(geo.country.as_deref());
        writer.out.extend_from_slice(b",\"province\":");
        writer.optional_str(geo.province.as_deref());
        writer.out.extend_from_slice(b",\"city\":");
        writer.optional_str(geo.city.as_deref());
        writer.out.extend_from_slice(b",\"carrier\":");
        writer.optional_str(geo.carrier.as_deref());
        writer.out.extend_from_slice(b",\"asn\":");
        match geo.asn {
            Some(asn) => writer.integer(asn),
            None => writer.out.extend_from_slice(b"null"),
        }
        writer.out.extend_from_slice(b"},\"epoch\":");
        writer.integer(epoch);
        writer.out.extend_from_slice(b",\"answers\":[");
        writer
    }

    /// Appends one host's answer.
    pub fn host(&mut self, answer: &HostAnswer<'_>) {
        if self.out.last() != Some(&b'[') {
            self.out.push(b',');
        }
        match answer {
            HostAnswer::Found {
                host,
                zone,
                failover,
                ttl,
                ips,
                ipsv6,
                fallback,
            } => {
                self.out.extend_from_slice(b"{\"host\":");
                self.str(host);
                self.out.extend_from_slice(b",\"zone\":");
                self.str(zone);
                self.out.extend_from_slice(if *failover {
                    b",\"failover\":true,\"ttl\":"
                } else {
                    b",\"failover\":false,\"ttl\":"
                });
                self.integer(*ttl);
                self.addresses(ips, ipsv6);
                self.out.extend_from_slice(b",\"fallback\":[");
                for (i, tier) in fallback.iter().enumerate() {
                    if i > 0 {
                        self.out.push(b',');
                    }
                    self.out.extend_from_slice(b"{\"zone\":");
                    self.str(tier.zone);
                    self.addresses(tier.ips, tier.ipsv6);
                    self.out.push(b'}');
                }
                self.out.extend_from_slice(b"]}");
            }
            HostAnswer::Failed { host, error } => {
                self.out.extend_from_slice(b"{\"host\":");
                self.str(host);
                self.out.extend_from_slice(b",\"error\":");
                self.str(error);
                self.out.push(b'}');
            }
        }
    }

    /// The finished JSON document.
    pub fn finish(mut self) -> Vec<u8> {
        self.out.extend_from_slice(b"]}");
        self.out
    }

    /// `,"ips":[...],"ipsv6":[...]`
    fn addresses(&mut self, ips: &[IpAddr], ipsv6: &[IpAddr]) {
        self.out.extend_from_slice(b",\"ips\":[");
        self.ip_list(ips);
        self.out.extend_from_slice(b"],\"ipsv6\":[");
        self.ip_list(ipsv6);
        self.out.push(b']');
    }

    fn ip_list(&mut self, ips: &[IpAddr]) {
        for (i, ip) in ips.iter().enumerate() {
            if i > 0 {
                self.out.push(b',');
            }
            self.ip(*ip);
        }
    }

    /// An address as a JSON string (an address's text never needs escaping).
    fn ip(&mut self, ip: IpAddr) {
        let mut text = Text::default();
        text.push(b'"');
        match ip {
            IpAddr::V4(v4) => text.ipv4(v4),
            IpAddr::V6(v6) => text.ipv6(v6),
        }
        text.push(b'"');
        self.out.extend_from_slice(text.as_bytes());
    }

    fn integer(&mut self, value: impl itoa::Integer) {
        self.out
            .extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
    }

    fn optional_str(&mut self, text: Option<&str>) {
        match text {
            Some(text) => self.str(text),
            None => self.out.extend_from_slice(b"null"),
        }
    }

    /// A JSON string: copied as is when nothing in it needs escaping, else by serde_json.
    fn str(&mut self, text: &str) {
        let plain = text.bytes().all(|b| PLAIN[usize::from(b)]);
        if plain {
            self.out.push(b'"');
            self.out.extend_from_slice(text.as_bytes());
            self.out.push(b'"');
        } else {
            // Writing a string into a Vec cannot fail.
            let _ = serde_json::to_writer(&mut self.out, text);
        }
    }
}

/// Bytes a JSON string may hold as they are: printable ASCII but `"` and `\\`.
const PLAIN: [bool; 256] = {
    let mut plain = [false; 256];
    let mut b = 0x20;
    while b < 0x7f {
        plain[b] = b != b'"' as usize && b != b'\\' as usize;
        b += 1;
    }
    plain
};

/// Every octet's decimal text: its length, then its digits (padded to three).
const DECIMAL: [[u8; 4]; 256] = {
    let mut table = [[0u8; 4]; 256];
    let mut n = 0;
    while n < 256 {
        let (hundreds, tens, ones) = ((n / 100) as u8, (n / 10 % 10) as u8, (n % 10) as u8);
        table[n] = if n >= 100 {
            [3, b'0' + hundreds, b'0' + tens, b'0' + ones]
        } else if n >= 10 {
            [2, b'0' + tens, b'0' + ones, 0]
        } else {
            [1, b'0' + ones, 0, 0]
        };
        n += 1;
    }
    table
};

/// An address's text, built on the stack and copied into the answer at once: byte by
/// byte into the answer's `Vec` cost a capacity check per character.
struct Text {
    bytes: [u8; 48],
    len: usize,
}

impl Default for Text {
    fn default() -> Self {
        Self {
            bytes: [0; 48],
            len: 0,
        }
    }
}

impl Text {
    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    fn push(&mut self, byte: u8) {
        // 48 bytes hold the longest address (39 characters) and its quotes.
        if let Some(slot) = self.bytes.get_mut(self.len) {
            *slot = byte;
            self.len += 1;
        }
    }

    fn ipv4(&mut self, ip: Ipv4Addr) {
        let [a, b, c, d] = ip.octets();
        self.decimal(a);
        self.push(b'.');
        self.decimal(b);
        self.push(b'.');
        self.decimal(c);
        self.push(b'.');
        self.decimal(d);
    }

    /// An octet in decimal: three bytes copied from a table, the cursor moved by its
    /// length (no division, no call to `memcpy` for a variable length).
    fn decimal(&mut self, octet: u8) {
        let [len, digits @ ..] = DECIMAL[usize::from(octet)];
        if let Some(slot) = self.bytes.get_mut(self.len..self.len + 3) {
            slot.copy_from_slice(&digits);
            self.len += usize::from(len);
        }
    }

    /// The same text as `Ipv6Addr`'s `Display` (RFC 5952: lower-case hex without leading
    /// zeros, the longest run of two or more zero groups, leftmost on a tie, as `::`;
    /// IPv4-mapped addresses as `::ffff:a.b.c.d`), without the formatter machinery,
    /// which cost more than the rest of the answer.
    fn ipv6(&mut self, ip: Ipv6Addr) {
        if let Some(v4) = ip.to_ipv4_mapped() {
            for &b in b"::ffff:" {
                self.push(b);
            }
            return self.ipv4(v4);
        }
        let groups = ip.segments();
        let (mut zeros_at, mut zeros_len, mut run_at, mut run_len) = (0, 0, 0, 0);
        for (i, &group) in groups.iter().enumerate() {
            if group == 0 {
                if run_len == 0 {
                    run_at = i;
                }
                run_len += 1;
                if run_len > zeros_len {
                    (zeros_at, zeros_len) = (run_at, run_len);
                }
            } else {
                run_len = 0;
            }
        }
        if zeros_len > 1 {
            self.hex_groups(&groups[..zeros_at]);
            self.push(b':');
            self.push(b':');
            self.hex_groups(&groups[zeros_at + zeros_len..]);
        } else {
            self.hex_groups(&groups);
        }
    }

    fn hex_groups(&mut self, groups: &[u16]) {
        for (i, &group) in groups.iter().enumerate() {
            if i > 0 {
                self.push(b':');
            }
            self.hex(group);
        }
    }

    /// A group in lower-case hex without leading zeros: four digits written at once
    /// (the significant ones first), the cursor moved by how many are significant.
    fn hex(&mut self, group: u16) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let significant = (4 - group.leading_zeros() / 4).max(1);
        let aligned = u32::from(group) << (16 - 4 * significant);
        let digit = |shift: u32| HEX[((aligned >> shift) & 0xf) as usize];
        if let Some(slot) = self.bytes.get_mut(self.len..self.len + 4) {
            slot.copy_from_slice(&[digit(12), digit(8), digit(4), digit(0)]);
            self.len += significant as usize;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn parsed(bytes: Vec<u8>) -> Value {
        serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            panic!("not JSON ({e}): {}", String::from_utf8_lossy(&bytes));
        })
    }

    #[test]
    fn an_answer_parses_to_the_documented_shape() {
        let geo = Geo {
            country: Some("CN".into()),
            province: Some("CN-GD".into()),
            city: Some("Guangzhou".into()),
            carrier: Some("telecom".into()),
            asn: Some(4134),
            isp: Some("never shown".into()),
        };
        let v4 = [ip("203.0.113.11"), ip("0.0.0.0"), ip("255.10.9.100")];
        let v6 = [ip("2001:db8:10::1"), ip("::ffff:1.2.3.4"), ip("::")];
        let fallback_v4 = [ip("198.51.100.1")];
        let mut writer = AnswerWriter::new(ip("202.96.128.86"), &geo, 1_795_750_977_308);
        writer.host(&HostAnswer::Found {
            host: "api.example.com",
            zone: "gz-telecom",
            failover: false,
            ttl: 60,
            ips: &v4,
            ipsv6: &v6,
            fallback: smallvec::smallvec![
                FallbackTier {
                    zone: "sh-bgp",
                    ips: &fallback_v4,
                    ipsv6: &[],
                },
                FallbackTier {
                    zone: "hk",
                    ips: &[],
                    ipsv6: &v6[..1],
                },
            ],
        });
        writer.host(&HostAnswer::Failed {
            host: "nope.example.com",
            error: "unknown_host",
        });
        writer.host(&HostAnswer::Found {
            host: "b.example.com",
            zone: "sh-bgp",
            failover: true,
            ttl: 0,
            ips: &[],
            ipsv6: &[],
            fallback: SmallVec::new(),
        });
        assert_eq!(
            parsed(writer.finish()),
            json!({
                "client_ip": "202.96.128.86",
                "geo": {"country": "CN", "province": "CN-GD", "city": "Guangzhou",
                        "carrier": "telecom", "asn": 4134},
                "epoch": 1_795_750_977_308u64,
                "answers": [
                    {"host": "api.example.com", "zone": "gz-telecom", "failover": false,
                     "ttl": 60,
                     "ips": ["203.0.113.11", "0.0.0.0", "255.10.9.100"],
                     "ipsv6": ["2001:db8:10::1", "::ffff:1.2.3.4", "::"],
                     "fallback": [
                        {"zone": "sh-bgp", "ips": ["198.51.100.1"], "ipsv6": []},
                        {"zone": "hk", "ips": [], "ipsv6": ["2001:db8:10::1"]}]},
                    {"host": "nope.example.com", "error": "unknown_host"},
                    {"host": "b.example.com", "zone": "sh-bgp", "failover": true, "ttl": 0,
                     "ips": [], "ipsv6": [], "fallback": []}
                ]
            })
        );
    }

    #[test]
    fn unknown_geo_is_null_and_awkward_names_are_escaped() {
        let geo = Geo {
            city: Some("Qu\"ote\\d \u{1} 广州".into()),
            ..Geo::default()
        };
        let mut writer = AnswerWriter::new(ip("2001:db8::7"), &geo, 0);
        writer.host(&HostAnswer::Found {
            host: "a.example.com",
            zone: "zone \"x\"\n",
            failover: false,
            ttl: u32::MAX,
            ips: &[],
            ipsv6: &[],
            fallback: SmallVec::new(),
        });
        assert_eq!(
            parsed(writer.finish()),
            json!({
                "client_ip": "2001:db8::7",
                "geo": {"country": null, "province": null, "city": "Qu\"ote\\d \u{1} 广州",
                        "carrier": null, "asn": null},
                "epoch": 0,
                "answers": [{"host": "a.example.com", "zone": "zone \"x\"\n", "failover": false,
                             "ttl": u32::MAX, "ips": [], "ipsv6": [], "fallback": []}]
            })
        );
    }

    #[test]
    fn no_hosts_is_an_empty_list_and_every_octet_prints_like_display() {
        let writer = AnswerWriter::new(ip("10.0.0.1"), &Geo::default(), 7);
        assert_eq!(parsed(writer.finish())["answers"], json!([]));
        for octet in 0..=255u8 {
            let addr = Ipv4Addr::new(octet, 255 - octet, octet / 3, 9);
            let mut text = Text::default();
            text.ipv4(addr);
            assert_eq!(text.as_bytes(), addr.to_string().as_bytes());
        }
    }

    #[test]
    fn ipv6_prints_like_display() {
        let mut rng = fastrand::Rng::with_seed(5952);
        let mut cases: Vec<Ipv6Addr> = [
            "::",
            "::1",
            "1::",
            "2001:db8::",
            "2001:db8:0:0:1:0:0:1",
            "0:0:1:0:0:0:1:0",
            "1:0:0:2:0:0:3:4",
            "2001:db8:10::1",
            "::ffff:1.2.3.4",
            "::1.2.3.4",
            "64:ff9b::1.2.3.4",
            "fe80::abcd:ef01:2345:6789",
            "1:2:3:4:5:6:7:8",
            "1:0:2:3:4:5:6:7",
            "ffff::",
        ]
        .iter()
        .map(|text| text.parse().unwrap())
        .collect();
        // Random groups, each zero or tiny often, so every run shape and width shows up.
        for _ in 0..20_000 {
            let mut groups = [0u16; 8];
            for group in &mut groups {
                *group = match rng.u8(0..4) {
                    0 | 1 => 0,
                    2 => rng.u16(0..0x100),
                    _ => rng.u16(..),
                };
            }
            cases.push(Ipv6Addr::from(groups));
        }
        for addr in cases {
            let mut text = Text::default();
            text.ipv6(addr);
            assert_eq!(text.as_bytes(), addr.to_string().as_bytes());
        }
    }
}
