//! The common DNS query, read and answered on bytes, without building a hickory `Message`.
//!
//! Nearly every query a GSLB sees is one A or AAAA question for a configured name, from a
//! resolver that adds an EDNS OPT record, often with a client subnet. Parsing that into a
//! `hickory_proto::op::Message`, building a response `Message` and encoding it costs more
//! than the steering decision itself. This module owns the two byte-level halves of that
//! one shape: [`CommonQuery::parse`] accepts a query only if it is exactly that shape
//! (anything else is `None`, and [`super::handler`] answers it through hickory), and
//! [`write_answer`] writes the answer byte for byte as hickory would encode the slow
//! path's response, name compression included. Which answer to give — apexes, ECS trust
//! and scope, steering — is decided by the handler, never here.

use std::net::IpAddr;

use hickory_proto::rr::rdata::opt::ClientSubnet;

/// Bytes of a DNS header; anything shorter cannot even be answered FORMERR.
pub(super) const HEADER_LEN: usize = 12;
/// Where the question's name starts; answer names point here.
const QUESTION_OFFSET: u16 = HEADER_LEN as u16;
/// Bytes of a name on the wire (RFC 1035 2.3.4), terminating root label included.
const MAX_NAME_LEN: usize = 255;
/// More labels than any configured name has. hickory stops remembering compression
/// targets after 64 per message; bounding labels (and answers, below) keeps every name
/// this module writes within the range where its compression is the one written here.
const MAX_LABELS: usize = 32;
/// hickory compresses at most 120 names per message; the question is one of them.
const MAX_ANSWERS: usize = 100;
/// Largest answer without EDNS (RFC 1035), and so the smallest EDNS payload size:
/// smaller advertised values count as this (RFC 6891).
pub(super) const CLASSIC_UDP_PAYLOAD: u16 = 512;

const TYPE_A: u16 = 1;
const TYPE_AAAA: u16 = 28;
const TYPE_OPT: u16 = 41;
const CLASS_IN: u16 = 1;
const OPTION_CLIENT_SUBNET: u16 = 8;

/// The address family a common question asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

/// A query's OPT record, as far as the common shape allows one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edns {
    /// The advertised UDP payload size, at least 512.
    pub max_payload: u16,
    pub subnet: Option<ClientSubnet>,
}

/// One query of the common shape: a single A or AAAA question in class IN with a name
/// of plain labels, no records but an optional EDNS(0) OPT record with at most a client
/// subnet option, and nothing after it.
#[derive(Debug)]
pub struct CommonQuery<'q> {
    pub id: u16,
    recursion_desired: bool,
    checking_disabled: bool,
    /// The question as asked (name, type, class), copied into the answer.
    question: &'q [u8],
    /// The name in lower case, dot-separated, no trailing dot.
    host: [u8; MAX_NAME_LEN],
    host_len: usize,
    labels: usize,
    /// The label from which on the asked name is already lower case: where the answers'
    /// (lower-case) names can point into the question. Equal to `labels` when the last
    /// label has an upper-case letter.
    lower_from: usize,
    /// Offset in the message of label `lower_from`.
    lower_offset: u16,
    pub family: Family,
    pub edns: Option<Edns>,
}

impl<'q> CommonQuery<'q> {
    /// The query, if it has the common shape; `None` for anything else, which is not
    /// an error here but a query for the general path.
    pub fn parse(query: &'q [u8]) -> Option<Self> {
        let header = query.get(..HEADER_LEN)?;
        // QR = 0 and opcode QUERY; AA, TC, AD, Z and RCODE of a query do not change the
        // answer, RD and CD are copied.
        if header[2] & 0xf8 != 0 {
            return None;
        }
        let count = |at: usize| u16::from_be_bytes([header[at], header[at + 1]]);
        let additionals = count(10);
        if count(4) != 1 || count(6) != 0 || count(8) != 0 || additionals > 1 {
            return None;
        }
        let mut host = [0u8; MAX_NAME_LEN];
        let mut host_len = 0;
        let mut at = HEADER_LEN;
        let mut labels = 0;
        let mut lower_from = 0;
        let mut lower_offset = QUESTION_OFFSET;
        loop {
            let len = usize::from(*query.get(at)?);
            if len == 0 {
                break;
            }
            // 64..=255: pointers and reserved label types.
            if len > 63 || labels == MAX_LABELS {
                return None;
            }
            let label = query.get(at + 1..at + 1 + len)?;
            if !ordinary_label(label) {
                return None;
            }
            if label.iter().any(u8::is_ascii_uppercase) {
                lower_from = labels + 1;
                lower_offset = u16::try_from(at + 1 + len).ok()?;
            }
            if labels > 0 {
                *host.get_mut(host_len)? = b'.';
                host_len += 1;
            }
            let copy = host.get_mut(host_len..host_len + len)?;
            copy.copy_from_slice(label);
            copy.make_ascii_lowercase();
            host_len += len;
            labels += 1;
            at += 1 + len;
        }
        // The root label ends the name; the whole must fit 255 bytes.
        if labels == 0 || at + 1 - HEADER_LEN > MAX_NAME_LEN {
            return None;
        }
        let fixed = query.get(at + 1..at + 5)?;
        let qtype = u16::from_be_bytes([fixed[0], fixed[1]]);
        let qclass = u16::from_be_bytes([fixed[2], fixed[3]]);
        let family = match qtype {
            TYPE_A => Family::V4,
            TYPE_AAAA => Family::V6,
            _ => return None,
        };
        if qclass != CLASS_IN {
            return None;
        }
        let question_end = at + 5;
        let edns = if additionals == 1 {
            Some(parse_opt(query.get(question_end..)?)?)
        } else if question_end == query.len() {
            None
        } else {
            return None;
        };
        Some(Self {
            id: u16::from_be_bytes([header[0], header[1]]),
            recursion_desired: header[2] & 0x01 != 0,
            checking_disabled: header[3] & 0x10 != 0,
            question: &query[HEADER_LEN..question_end],
            host,
            host_len,
            labels,
            lower_from,
            lower_offset,
            family,
            edns,
        })
    }

    /// The asked name as a configured host: lower case, no trailing dot.
    pub fn host(&self) -> &str {
        // Only ASCII letters, digits, '-', '_' and '.' were copied in.
        std::str::from_utf8(&self.host[..self.host_len]).unwrap_or_default()
    }
}

/// A label hickory writes back as itself (no escapes): letters, digits, '_', and '-'
/// anywhere but first. Anything else is left to the general path.
fn ordinary_label(label: &[u8]) -> bool {
    label.first() != Some(&b'-')
        && label
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The OPT record that must end the query: owner root, EDNS version 0, no extended
/// RCODE bits, and no option or exactly one well-formed client subnet option.
fn parse_opt(record: &[u8]) -> Option<Edns> {
    // name (root), type, class = payload, TTL = (ext-rcode, version, flags), rdlength
    let fixed = record.get(..11)?;
    let field = |at: usize| u16::from_be_bytes([fixed[at], fixed[at + 1]]);
    if fixed[0] != 0 || field(1) != TYPE_OPT || fixed[5] != 0 || fixed[6] != 0 {
        return None;
    }
    let max_payload = field(3).max(CLASSIC_UDP_PAYLOAD);
    let rdata = &record[11..];
    if rdata.len() != usize::from(field(9)) {
        return None;
    }
    let subnet = match rdata.len() {
        0 => None,
        _ => Some(parse_client_subnet(rdata)?),
    };
    Some(Edns {
        max_payload,
        subnet,
    })
}

/// Exactly one option, a client subnet (RFC 7871) with a known family, a source prefix
/// within it, scope 0 and exactly the address bytes the prefix needs. hickory reads the
/// value, so the general path and this one agree on what it means.
fn parse_client_subnet(rdata: &[u8]) -> Option<ClientSubnet> {
    let code = u16::from_be_bytes([*rdata.first()?, *rdata.get(1)?]);
    let len = usize::from(u16::from_be_bytes([*rdata.get(2)?, *rdata.get(3)?]));
    let data = rdata.get(4..)?;
    if code != OPTION_CLIENT_SUBNET || data.len() != len || len < 4 {
        return None;
    }
    let family = u16::from_be_bytes([data[0], data[1]]);
    let (source, scope) = (data[2], data[3]);
    let max_source = match family {
        1 => 32,
        2 => 128,
        _ => return None,
    };
    if source > max_source || scope != 0 || len != 4 + usize::from(source).div_ceil(8) {
        return None;
    }
    ClientSubnet::try_from(data).ok()
}

/// What goes into the answer besides the query's own parts.
pub struct AnswerParts<'a, I> {
    /// Answer addresses, in order; each becomes an A or AAAA record by its family.
    pub addresses: I,
    pub ttl: u32,
    /// Our EDNS payload size, sent when the query had EDNS.
    pub udp_max_payload: u16,
    /// The client subnet option to send back (scope already set).
    pub subnet: Option<&'a ClientSubnet>,
    /// Write the answer without its records and with TC set: the "slip" of response rate
    /// limiting, which tells a resolver to retry over TCP.
    pub truncated: bool,
}

/// Writes the answer to `query` into `out` (replacing its contents): what hickory would
/// encode for a NOERROR, authoritative response holding the question as asked, one record
/// per address with the lower-case name, and our OPT record when the query had one.
/// `None` when more addresses than hickory compresses names for (the caller answers
/// through the general path).
pub fn write_answer<'a>(
    query: &CommonQuery<'_>,
    parts: AnswerParts<'a, impl Iterator<Item = &'a IpAddr>>,
    out: &mut Vec<u8>,
) -> Option<()> {
    out.clear();
    out.extend_from_slice(&query.id.to_be_bytes());
    // QR, opcode QUERY, AA, TC for a slip, RD copied.
    let mut flags = 0x84 | u8::from(query.recursion_desired);
    if parts.truncated {
        flags |= 0x02;
    }
    out.push(flags);
    // RA 0, AD 0, CD copied, RCODE NOERROR.
    out.push(if query.checking_disabled { 0x10 } else { 0 });
    let additionals = u16::from(query.edns.is_some());
    for count in [1u16, 0, 0, additionals] {
        out.extend_from_slice(&count.to_be_bytes());
    }
    out.extend_from_slice(query.question);
    let mut answers: u16 = 0;
    if !parts.truncated {
        // hickory compresses each answer name against what it wrote before, byte for
        // byte (so case-sensitively): the question's suffix from `lower_from` on, then
        // the first answer's name for the rest.
        let mut first_name: Option<u16> = None;
        let lower_pointer = 0xc000 | query.lower_offset;
        for address in parts.addresses {
            if usize::from(answers) == MAX_ANSWERS {
                return None;
            }
            match first_name {
                _ if query.lower_from == 0 => {
                    out.extend_from_slice(&(0xc000 | QUESTION_OFFSET).to_be_bytes());
                }
                Some(offset) => out.extend_from_slice(&(0xc000 | offset).to_be_bytes()),
                None => {
                    first_name = Some(u16::try_from(out.len()).ok()?);
                    write_lower_labels(query, out);
                    if query.lower_from < query.labels {
                        out.extend_from_slice(&lower_pointer.to_be_bytes());
                    } else {
                        out.push(0);
                    }
                }
            }
            let (rtype, rdata): (u16, &[u8]) = match address {
                IpAddr::V4(v4) => (TYPE_A, &v4.octets()),
                IpAddr::V6(v6) => (TYPE_AAAA, &v6.octets()),
            };
            out.extend_from_slice(&rtype.to_be_bytes());
            out.extend_from_slice(&CLASS_IN.to_be_bytes());
            out.extend_from_slice(&parts.ttl.to_be_bytes());
            out.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
            out.extend_from_slice(rdata);
            answers += 1;
        }
        out[6..8].copy_from_slice(&answers.to_be_bytes());
    }
    if query.edns.is_some() {
        out.push(0);
        out.extend_from_slice(&TYPE_OPT.to_be_bytes());
        out.extend_from_slice(&parts.udp_max_payload.max(CLASSIC_UDP_PAYLOAD).to_be_bytes());
        // Extended RCODE 0, version 0, no flags.
        out.extend_from_slice(&0u32.to_be_bytes());
        match parts.subnet {
            None => out.extend_from_slice(&0u16.to_be_bytes()),
            Some(subnet) => {
                let (family, octets): (u16, &[u8]) = match subnet.addr() {
                    IpAddr::V4(v4) => (1, &v4.octets()),
                    IpAddr::V6(v6) => (2, &v6.octets()),
                };
                let address = octets.get(..usize::from(subnet.source_prefix()).div_ceil(8))?;
                let option_len = 4 + address.len() as u16;
                out.extend_from_slice(&(4 + option_len).to_be_bytes());
                out.extend_from_slice(&OPTION_CLIENT_SUBNET.to_be_bytes());
                out.extend_from_slice(&option_len.to_be_bytes());
                out.extend_from_slice(&family.to_be_bytes());
                out.push(subnet.source_prefix());
                out.push(subnet.scope_prefix());
                out.extend_from_slice(address);
            }
        }
    }
    Some(())
}

/// The asked name's labels before `lower_from`, in lower case.
fn write_lower_labels(query: &CommonQuery<'_>, out: &mut Vec<u8>) {
    for label in query.host().split('.').take(query.lower_from) {
        // Labels are at most 63 bytes (checked when parsed).
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    //! The fast path against the hickory path on the same handler: every query the fast
    //! path answers must come out byte for byte as [`DnsHandler::handle`] encodes it,
    //! and every other query must get exactly the hickory path's answer.

    use std::path::Path;

    use hickory_proto::op::{Edns as HickoryEdns, Message, Query};
    use hickory_proto::rr::rdata::opt::EdnsOption;
    use hickory_proto::rr::{DNSClass, Name, RecordType};

    use super::*;
    use crate::ServerConfig;
    use crate::dns::handler::{Common, DnsHandler, Transport};
    use crate::resolver::Resolver;

    /// Draws inside near-equal bands are random: both paths start from this seed.
    const SEED: u64 = 0x5eed;
    const TRANSPORTS: [Transport; 3] = [Transport::Udp, Transport::UdpSlip, Transport::Stream];

    /// The example config; with `test_zones`, the DNS test zones (an IPv4-only domain,
    /// one with 120 endpoints) under the same `example.com` apex.
    fn handler(test_zones: bool) -> DnsHandler {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut config = ServerConfig::load(&root.join("deploy/example/httpdns.toml")).unwrap();
        if test_zones {
            config.zones_dir = root.join("tests/data/dns-zones");
            config.limits.max_answer_ips = 200;
        }
        let snapshot = crate::snapshot::load(&config).unwrap();
        let state_dir = tempfile::tempdir().unwrap().keep();
        DnsHandler::new(Resolver::standalone(snapshot, &state_dir).unwrap())
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    struct Spec {
        name: &'static str,
        kind: RecordType,
        rd: bool,
        cd: bool,
        /// EDNS payload size, DO bit and client subnet.
        edns: Option<(u16, bool, Option<ClientSubnet>)>,
    }

    fn encode(spec: &Spec) -> Vec<u8> {
        let mut message = Message::query();
        message.metadata.id = 0xbeef;
        message.metadata.recursion_desired = spec.rd;
        message.metadata.checking_disabled = spec.cd;
        message.add_query(Query::query(
            Name::from_ascii(spec.name).unwrap(),
            spec.kind,
        ));
        if let Some((payload, dnssec_ok, subnet)) = spec.edns {
            let mut edns = HickoryEdns::new();
            edns.set_max_payload(payload);
            edns.set_dnssec_ok(dnssec_ok);
            if let Some(subnet) = subnet {
                edns.options_mut().insert(EdnsOption::Subnet(subnet));
            }
            message.set_edns(edns);
        }
        message.to_vec().unwrap()
    }

    /// What the hickory path sends for `transport`, from the same RNG state.
    fn slow(
        handler: &DnsHandler,
        query: &[u8],
        client: IpAddr,
        transport: Transport,
    ) -> Option<(Vec<u8>, Option<u32>)> {
        fastrand::seed(SEED);
        let reply = handler.handle(query, client)?;
        let bytes = match transport {
            Transport::Udp => reply.to_udp(),
            Transport::UdpSlip => reply.to_udp_slip(),
            Transport::Stream => reply.to_stream(),
        };
        Some((bytes, reply.min_ttl()))
    }

    /// `respond` (fast path first) sends exactly what the hickory path sends.
    fn assert_same(handler: &DnsHandler, query: &[u8], client: IpAddr, transport: Transport) {
        fastrand::seed(SEED);
        let mut out = vec![0xaa; 7];
        let fast = handler
            .respond(query, client, transport, &mut out)
            .map(|answered| (out, answered.min_ttl));
        assert_eq!(
            fast,
            slow(handler, query, client, transport),
            "query {query:02x?} from {client} over {transport:?}"
        );
    }

    /// Which way the fast path went for `query`.
    fn fast_path(
        handler: &DnsHandler,
        query: &[u8],
        client: IpAddr,
        transport: Transport,
    ) -> (&'static str, Vec<u8>) {
        fastrand::seed(SEED);
        let mut out = Vec::new();
        let Some(common) = CommonQuery::parse(query) else {
            return ("not common", out);
        };
        let request = handler.resolver().request();
        let way = match handler.answer_common(&request, &common, client, transport, &mut out) {
            Common::Written(_) => "written",
            Common::Decided(_) => "decided",
            Common::General => "general",
        };
        (way, out)
    }

    fn subnet(addr: &str, source: u8) -> Option<ClientSubnet> {
        Some(ClientSubnet::new(ip(addr), source, 0))
    }

    #[test]
    fn common_queries_are_written_byte_for_byte_as_hickory_encodes_them() {
        let handler = handler(false);
        let names = [
            "api.example.com.",
            "img.example.com",
            "IMG.Example.COM.",
            "Api.example.com.",
            "api.EXAMPLE.com.",
            "api.example.COM.",
            "API.EXAMPLE.COM",
            "img.exAmple.com.",
        ];
        let edns = [
            None,
            Some((512, false, None)),
            Some((1232, true, None)),
            Some((100, false, None)),
            Some((65535, false, None)),
            Some((1232, false, subnet("202.96.128.77", 24))),
            Some((1232, false, subnet("202.96.128.77", 22))),
            Some((4096, true, subnet("202.96.128.77", 32))),
            Some((1232, false, subnet("0.0.0.0", 0))),
            Some((1232, false, subnet("10.255.255.255", 9))),
            Some((1232, false, subnet("100.64.1.0", 24))),
            Some((1232, false, subnet("2001:db8:ff00::1", 56))),
            Some((1232, false, subnet("2001:db8:ffff::1", 48))),
            Some((1232, false, subnet("2001:db8:ffff::1", 128))),
            Some((1232, false, subnet("::", 0))),
            Some((1232, false, subnet("2001:db8::", 61))),
            Some((1232, false, subnet("::ffff:202.96.128.77", 120))),
        ];
        let clients = [
            "127.0.0.1",
            "::1",
            "::ffff:127.0.0.1",
            "198.51.100.7",
            "2001:db8:ff00::9",
        ];
        let mut case = 0usize;
        for name in names {
            for kind in [RecordType::A, RecordType::AAAA] {
                for &edns in &edns {
                    for client in clients {
                        case += 1;
                        let spec = Spec {
                            name,
                            kind,
                            rd: case % 2 == 0,
                            cd: case % 3 == 0,
                            edns,
                        };
                        let query = encode(&spec);
                        let client = ip(client);
                        for transport in TRANSPORTS {
                            let (way, written) = fast_path(&handler, &query, client, transport);
                            assert_eq!(way, "written", "{name} {kind} {edns:?} from {client}");
                            let (expected, _) = slow(&handler, &query, client, transport).unwrap();
                            assert_eq!(
                                written, expected,
                                "{name} {kind} {edns:?} from {client} over {transport:?}"
                            );
                            let parsed = Message::from_vec(&written).unwrap();
                            assert_eq!(parsed, Message::from_vec(&expected).unwrap());
                            assert_same(&handler, &query, client, transport);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn answers_name_the_host_in_lower_case_and_echo_the_steering_subnet() {
        let handler = handler(false);
        let spec = Spec {
            name: "IMG.Example.com.",
            kind: RecordType::A,
            rd: true,
            cd: false,
            edns: Some((1232, false, subnet("202.96.128.77", 22))),
        };
        let (way, written) = fast_path(&handler, &encode(&spec), ip("127.0.0.1"), Transport::Udp);
        assert_eq!(way, "written");
        let message = Message::from_vec(&written).unwrap();
        assert!(message.metadata.authoritative && message.metadata.recursion_desired);
        assert!(!message.answers.is_empty());
        let lower = Name::from_ascii("img.example.com.").unwrap();
        assert!(
            message
                .answers
                .iter()
                .all(|r| r.name.eq_case(&lower) && r.ttl == 300)
        );
        assert!(
            message.queries[0]
                .name()
                .eq_case(&Name::from_ascii("IMG.Example.com.").unwrap())
        );
        let edns = message.edns.unwrap();
        assert_eq!(edns.max_payload(), 1232);
        let Some(EdnsOption::Subnet(echo)) =
            edns.option(hickory_proto::rr::rdata::opt::EdnsCode::Subnet)
        else {
            panic!("no ECS echo");
        };
        assert_eq!(
            (echo.addr(), echo.source_prefix()),
            (ip("202.96.128.0"), 22)
        );
        assert!(echo.scope_prefix() >= 22, "{echo:?}");
    }

    /// A valid common query with ECS for the test zones, to break in every way the fast
    /// path refuses.
    fn common_query() -> Vec<u8> {
        encode(&Spec {
            name: "local.example.com.",
            kind: RecordType::A,
            rd: true,
            cd: false,
            edns: Some((1232, false, subnet("202.96.128.0", 24))),
        })
    }

    /// `local.example.com. 60 IN A 192.0.2.1`, its name a pointer to the question's.
    const A_RECORD: [u8; 16] = [0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1];

    /// Offset of the OPT record in [`common_query`]: header, name, type and class.
    const OPT_AT: usize = 12 + 19 + 4;

    fn with(mut query: Vec<u8>, edit: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        edit(&mut query);
        query
    }

    #[test]
    fn every_other_shape_gets_the_hickory_answer() {
        let handler = handler(true);
        let base = common_query();
        assert_eq!(
            fast_path(&handler, &base, ip("127.0.0.1"), Transport::Udp).0,
            "written"
        );
        let question = base[12..OPT_AT].to_vec();
        let opt = |options: &[u8], ttl: [u8; 4]| {
            let mut record = vec![0, 0, 41, 0x04, 0xd0];
            record.extend_from_slice(&ttl);
            record.extend_from_slice(&(options.len() as u16).to_be_bytes());
            record.extend_from_slice(options);
            record
        };
        let ecs = |data: &[u8]| {
            let mut option = vec![0, 8];
            option.extend_from_slice(&(data.len() as u16).to_be_bytes());
            option.extend_from_slice(data);
            option
        };
        let replace_opt =
            |record: Vec<u8>| with(base.clone(), |q| q.splice(OPT_AT.., record).for_each(drop));
        let named = |name: &'static str, kind: RecordType| {
            encode(&Spec {
                name,
                kind,
                rd: false,
                cd: false,
                edns: None,
            })
        };
        let mut chaos = Message::query();
        let mut question_ch = Query::query(
            Name::from_ascii("local.example.com.").unwrap(),
            RecordType::A,
        );
        question_ch.set_query_class(DNSClass::CH);
        chaos.add_query(question_ch);
        // One A record in the section whose count is at `count_at`.
        let record_before_opt = |count_at: usize| {
            with(base.clone(), |q| {
                q[count_at + 1] = 1;
                q.splice(OPT_AT..OPT_AT, A_RECORD).for_each(drop);
            })
        };
        let shapes: Vec<(&str, Vec<u8>)> = vec![
            (
                "two questions",
                with(base.clone(), |q| {
                    q[5] = 2;
                    q.splice(OPT_AT..OPT_AT, question.clone()).for_each(drop);
                }),
            ),
            ("an answer record", record_before_opt(6)),
            ("an authority record", record_before_opt(8)),
            (
                "two additional records",
                with(base.clone(), |q| {
                    q[11] = 2;
                    q.extend_from_slice(&opt(&[], [0; 4]));
                }),
            ),
            (
                "an additional record that is no OPT",
                with(base.clone(), |q| {
                    q.truncate(OPT_AT);
                    q.extend_from_slice(&A_RECORD);
                }),
            ),
            ("opcode STATUS", with(base.clone(), |q| q[2] |= 2 << 3)),
            ("opcode UPDATE", with(base.clone(), |q| q[2] |= 5 << 3)),
            ("a response", with(base.clone(), |q| q[2] |= 0x80)),
            (
                "EDNS version 1",
                replace_opt(opt(&ecs(&[0, 1, 24, 0, 202, 96, 128]), [0, 1, 0, 0])),
            ),
            ("extended RCODE bits", replace_opt(opt(&[], [1, 0, 0, 0]))),
            (
                "OPT owner not root",
                with(base.clone(), |q| {
                    q.splice(OPT_AT..OPT_AT + 1, [1, b'a', 0]).for_each(drop);
                }),
            ),
            (
                "an unknown EDNS option",
                replace_opt(opt(&[0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8], [0; 4])),
            ),
            (
                "ECS and a cookie",
                replace_opt(opt(
                    &[
                        ecs(&[0, 1, 24, 0, 202, 96, 128]),
                        vec![0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8],
                    ]
                    .concat(),
                    [0; 4],
                )),
            ),
            (
                "two ECS options",
                replace_opt(opt(
                    &[
                        ecs(&[0, 1, 24, 0, 202, 96, 128]),
                        ecs(&[0, 1, 16, 0, 10, 1]),
                    ]
                    .concat(),
                    [0; 4],
                )),
            ),
            (
                "ECS with a byte too many",
                replace_opt(opt(&ecs(&[0, 1, 24, 0, 202, 96, 128, 1]), [0; 4])),
            ),
            (
                "ECS with a byte too few",
                replace_opt(opt(&ecs(&[0, 1, 24, 0, 202, 96]), [0; 4])),
            ),
            (
                "ECS shorter than its header",
                replace_opt(opt(&ecs(&[0, 1, 24]), [0; 4])),
            ),
            (
                "ECS family 3",
                replace_opt(opt(&ecs(&[0, 3, 24, 0, 202, 96, 128]), [0; 4])),
            ),
            (
                "ECS with a scope",
                replace_opt(opt(&ecs(&[0, 1, 24, 24, 202, 96, 128]), [0; 4])),
            ),
            (
                "ECS IPv4 /33",
                replace_opt(opt(&ecs(&[0, 1, 33, 0, 202, 96, 128, 0, 0]), [0; 4])),
            ),
            (
                "ECS IPv6 /129",
                replace_opt(opt(
                    &ecs(&[[0, 2, 129, 0].as_slice(), &[0x20; 17]].concat()),
                    [0; 4],
                )),
            ),
            (
                "OPT rdata longer than the message",
                with(base.clone(), |q| {
                    let at = OPT_AT + 9;
                    q[at + 1] += 1;
                }),
            ),
            (
                "a compression pointer in the question",
                with(base.clone(), |q| {
                    // "local" + a pointer to "example.com", written again after the OPT record.
                    q.splice(18..31, [0xc0, 0]).for_each(drop);
                    q[19] = q.len() as u8;
                    q.extend_from_slice(&[
                        7, b'e', b'x', b'a', b'm', b'p', b'l', b'e', 3, b'c', b'o', b'm', 0,
                    ]);
                }),
            ),
            (
                "a label starting with '-'",
                with(named("local.example.com.", RecordType::A), |q| q[13] = b'-'),
            ),
            ("a label with '*'", named("*.example.com.", RecordType::A)),
            (
                "a label with a backslash",
                with(named("local.example.com.", RecordType::A), |q| {
                    q[14] = b'\\'
                }),
            ),
            (
                "a label with a space",
                with(named("local.example.com.", RecordType::A), |q| q[14] = b' '),
            ),
            (
                "a label with a dot",
                with(named("local.example.com.", RecordType::A), |q| q[14] = b'.'),
            ),
            ("the root", named(".", RecordType::A)),
            ("MX", named("local.example.com.", RecordType::MX)),
            ("SOA", named("local.example.com.", RecordType::SOA)),
            ("ANY", named("local.example.com.", RecordType::ANY)),
            ("TXT", named("local.example.com.", RecordType::TXT)),
            ("class CH", chaos.to_vec().unwrap()),
            ("the apex", named("example.com.", RecordType::A)),
            (
                "the apex, upper case",
                named("EXAMPLE.com.", RecordType::AAAA),
            ),
            (
                "an unknown name under the apex",
                named("nope.example.com.", RecordType::A),
            ),
            (
                "an empty non-terminal",
                named("deep.example.com.", RecordType::A),
            ),
            (
                "a name of nobody's",
                named("api.example.org.", RecordType::A),
            ),
            (
                "trailing bytes",
                with(base.clone(), |q| q.extend_from_slice(b"smuggled")),
            ),
            (
                "trailing bytes without EDNS",
                with(named("local.example.com.", RecordType::A), |q| q.push(0)),
            ),
            (
                "an empty answer (no IPv6 endpoints)",
                named("local.example.com.", RecordType::AAAA),
            ),
            ("too many answers", named("big.example.com.", RecordType::A)),
            ("header only", base[..12].to_vec()),
            ("a runt", base[..11].to_vec()),
            ("nothing", Vec::new()),
        ];
        for (shape, query) in &shapes {
            for client in [ip("127.0.0.1"), ip("198.51.100.7")] {
                for transport in TRANSPORTS {
                    let (way, _) = fast_path(&handler, query, client, transport);
                    match *shape {
                        // A slip carries no records: too many of them do not matter.
                        "too many answers" if transport == Transport::UdpSlip => {
                            assert_eq!(way, "written", "{shape}");
                        }
                        "an empty answer (no IPv6 endpoints)" | "too many answers" => {
                            assert_eq!(way, "decided", "{shape} over {transport:?}");
                        }
                        _ => assert!(matches!(way, "not common" | "general"), "{shape}: {way}"),
                    }
                    assert_same(&handler, query, client, transport);
                }
            }
        }
    }

    #[test]
    fn a_decided_answer_the_fast_path_cannot_send_is_not_decided_twice() {
        // 120 equal endpoints in random order: a second draw would reorder them.
        let handler = handler(true);
        let query = encode(&Spec {
            name: "big.example.com.",
            kind: RecordType::A,
            rd: false,
            cd: false,
            edns: Some((4096, false, None)),
        });
        let client = ip("198.51.100.7");
        assert_eq!(
            fast_path(&handler, &query, client, Transport::Stream).0,
            "decided"
        );
        fastrand::seed(SEED);
        let mut out = Vec::new();
        handler
            .respond(&query, client, Transport::Stream, &mut out)
            .unwrap();
        let message = Message::from_vec(&out).unwrap();
        assert_eq!(message.answers.len(), 120);
        assert_eq!(
            Some((out, Some(120))),
            slow(&handler, &query, client, Transport::Stream)
        );
        // Over UDP it does not fit: truncated, as the hickory path sends it.
        assert_same(&handler, &query, client, Transport::Udp);
        let mut out = Vec::new();
        handler
            .respond(&query, client, Transport::Udp, &mut out)
            .unwrap();
        assert!(Message::from_vec(&out).unwrap().metadata.truncation);
    }

    #[test]
    fn every_cut_of_a_common_query_gets_the_hickory_answer() {
        let handler = handler(true);
        let query = common_query();
        for len in 0..query.len() {
            for transport in TRANSPORTS {
                assert_same(&handler, &query[..len], ip("127.0.0.1"), transport);
            }
        }
    }

    #[test]
    fn mutated_and_random_queries_get_the_hickory_answer() {
        let handler = handler(true);
        let mut rng = fastrand::Rng::with_seed(0xd15ea5e);
        let seeds = [
            common_query(),
            encode(&Spec {
                name: "LOCAL.Example.com.",
                kind: RecordType::A,
                rd: false,
                cd: true,
                edns: None,
            }),
            encode(&Spec {
                name: "local.example.com.",
                kind: RecordType::AAAA,
                rd: true,
                cd: false,
                edns: Some((512, true, subnet("2001:db8::", 56))),
            }),
            encode(&Spec {
                name: "api.deep.example.com.",
                kind: RecordType::A,
                rd: true,
                cd: false,
                edns: Some((1232, false, subnet("0.0.0.0", 0))),
            }),
            encode(&Spec {
                name: "big.example.com.",
                kind: RecordType::A,
                rd: false,
                cd: false,
                edns: Some((4096, false, subnet("2001:db8::", 56))),
            }),
        ];
        let clients = [ip("127.0.0.1"), ip("::1"), ip("203.0.113.9")];
        let mut written = 0;
        for round in 0..3000 {
            let mut query = seeds[round % seeds.len()].clone();
            match rng.u8(0..4) {
                // Flip bits.
                0 => {
                    for _ in 0..rng.usize(1..4) {
                        let at = rng.usize(..query.len());
                        query[at] ^= 1 << rng.u8(0..8);
                    }
                }
                // Overwrite a byte with a value that matters to a parser.
                1 => {
                    let at = rng.usize(..query.len());
                    query[at] = [0, 1, 2, 8, 28, 41, 63, 64, 0xc0, 0xff, b'A'][rng.usize(..11)];
                }
                // Cut or extend.
                2 => {
                    let len = rng.usize(..query.len() + 4);
                    query.resize(len, rng.u8(..));
                }
                // Random bytes.
                _ => {
                    query = (0..rng.usize(0..80)).map(|_| rng.u8(..)).collect();
                }
            }
            let client = clients[round % clients.len()];
            let transport = TRANSPORTS[round % TRANSPORTS.len()];
            if fast_path(&handler, &query, client, transport).0 == "written" {
                written += 1;
            }
            assert_same(&handler, &query, client, transport);
        }
        // The loop also went through the fast path, not only around it.
        assert!(
            written > 100,
            "only {written} mutated queries took the fast path"
        );
    }
}
