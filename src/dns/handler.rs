//! One DNS query in, one DNS answer out: the message logic every DNS transport shares.
//!
//! DoH, UDP and TCP hand the raw query and the client's address to [`DnsHandler`]; it
//! parses the wire format (hickory-proto), applies ECS, asks the resolver's request
//! context for A/AAAA answers and the snapshot's apex policy for SOA/NS and negative
//! answers, and returns a
//! [`Reply`] that each transport encodes within its size limit. No steering happens here:
//! the decision is the scheduler's, identical to `/resolve`.
//!
//! [`DnsHandler::respond`] first tries the fast path: the common query (one A/AAAA
//! question for a configured name that is no apex, EDNS at most with a client subnet)
//! read and answered on bytes by [`super::wire`], with the same ECS policy and the same
//! decision call, so the answer is byte for byte the one the hickory path would send.
//! Everything else — and a decided answer that is empty or does not fit — goes the
//! hickory path, which stays the reference: [`DnsHandler::handle`] never takes the fast
//! path.

use std::net::IpAddr;
use std::sync::Arc;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
use hickory_proto::rr::rdata::{A, AAAA};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};

use super::ecs::{self, Steering};
use super::wire::{self, AnswerParts, CommonQuery, Family, HEADER_LEN};
use crate::model::{normalize_host, valid_host};
use crate::resolver::{Request, Resolver};
use crate::scheduler::{Decision, Families};

/// [`wire::CLASSIC_UDP_PAYLOAD`] as the size limits here count.
const CLASSIC_UDP_PAYLOAD: usize = wire::CLASSIC_UDP_PAYLOAD as usize;

/// Shared by the DoH handlers and the UDP/TCP listeners; cheap to clone.
#[derive(Clone)]
pub struct DnsHandler {
    inner: Arc<Inner>,
}

struct Inner {
    resolver: Resolver,
}

/// What an answer is for: the size it must fit, and whether it is the empty "slip"
/// a rate-limited UDP client gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// Within the client's UDP limit ([`Reply::to_udp`]).
    Udp,
    /// No records, TC set ([`Reply::to_udp_slip`]).
    UdpSlip,
    /// TCP and DoH: up to the 64 KiB a DNS message can carry ([`Reply::to_stream`]).
    Stream,
}

/// What [`DnsHandler::respond`] left in the caller's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answered {
    /// As [`Reply::min_ttl`]: what HTTP may cache the answer for.
    pub min_ttl: Option<u32>,
}

/// The fast path's outcome.
pub(super) enum Common {
    /// The answer is in the caller's buffer; its records' TTL.
    Written(u32),
    /// Decided, but the answer needs the hickory path (empty, or too big): answer with
    /// this decision rather than decide (and count) a second time. Boxed: rare, and
    /// the decision's inline addresses would make every outcome 400 bytes.
    Decided(Box<Decision>),
    /// Not a query the fast path answers; nothing was decided.
    General,
}

/// An answer ready for a transport.
#[derive(Debug, Clone)]
pub struct Reply {
    pub message: Message,
    /// Largest UDP answer this client takes: its EDNS payload size (512 without EDNS),
    /// capped by `dns.udp_max_payload`.
    pub udp_limit: usize,
}

impl Reply {
    /// For UDP: the answer, or a truncated one with TC set when it does not fit.
    pub fn to_udp(&self) -> Vec<u8> {
        encode(&self.message, self.udp_limit)
    }

    /// For a rate-limited UDP client: no records, TC set, so a real resolver retries over
    /// TCP (response rate limiting's "slip").
    pub fn to_udp_slip(&self) -> Vec<u8> {
        encode(&self.message.truncate(), CLASSIC_UDP_PAYLOAD)
    }

    /// For TCP and DoH: the whole answer (up to the 64 KiB a DNS message can carry).
    pub fn to_stream(&self) -> Vec<u8> {
        encode(&self.message, usize::from(u16::MAX))
    }

    /// Smallest TTL in the answer, else of the negative SOA; what HTTP may cache it for.
    pub fn min_ttl(&self) -> Option<u32> {
        let records = if self.message.answers.is_empty() {
            &self.message.authorities
        } else {
            &self.message.answers
        };
        records.iter().map(|r| r.ttl).min()
    }
}

impl DnsHandler {
    pub fn new(resolver: Resolver) -> Self {
        Self {
            inner: Arc::new(Inner { resolver }),
        }
    }

    pub fn resolver(&self) -> &Resolver {
        &self.inner.resolver
    }

    /// Writes the answer to raw query bytes from `client` (the UDP/TCP peer, or the DoH
    /// client IP) for `transport` into `out`, replacing what it held: the fast path's
    /// bytes for the common query, else [`Self::handle`]'s reply encoded. `None`:
    /// nothing should be sent back (as for [`Self::handle`]).
    pub fn respond(
        &self,
        query: &[u8],
        client: IpAddr,
        transport: Transport,
        out: &mut Vec<u8>,
    ) -> Option<Answered> {
        self.respond_in(
            &self.inner.resolver.request(),
            query,
            client,
            transport,
            out,
        )
    }

    /// [`Self::respond`] within a request the caller already started (DoH, which needs
    /// the snapshot's trusted proxies to find the client first).
    pub fn respond_in(
        &self,
        request: &Request<'_>,
        query: &[u8],
        client: IpAddr,
        transport: Transport,
        out: &mut Vec<u8>,
    ) -> Option<Answered> {
        let decided = match CommonQuery::parse(query) {
            Some(common) => match self.answer_common(request, &common, client, transport, out) {
                Common::Written(ttl) => return Some(Answered { min_ttl: Some(ttl) }),
                Common::Decided(decision) => Some(*decision),
                Common::General => None,
            },
            None => None,
        };
        let reply = self.general(request, query, client, decided)?;
        let bytes = match transport {
            Transport::Udp => reply.to_udp(),
            Transport::UdpSlip => reply.to_udp_slip(),
            Transport::Stream => reply.to_stream(),
        };
        out.clear();
        out.extend_from_slice(&bytes);
        Some(Answered {
            min_ttl: reply.min_ttl(),
        })
    }

    /// The fast path: the common query answered on bytes, exactly as [`answer`] would,
    /// or why not.
    pub(super) fn answer_common(
        &self,
        started: &Request<'_>,
        query: &CommonQuery<'_>,
        client: IpAddr,
        transport: Transport,
        out: &mut Vec<u8>,
    ) -> Common {
        let snapshot = started.snapshot();
        let policy = &snapshot.dns;
        let host = query.host();
        // Apexes answer SOA/NS and lend negative answers their SOA: the general path's.
        if !valid_host(host)
            || snapshot.model.domain(host).is_none()
            || policy.authority.is_apex(host)
        {
            return Common::General;
        }
        let subnet = query.edns.and_then(|edns| edns.subnet);
        let steering = ecs::steering(subnet.as_ref(), client, &policy.ecs_trusted);
        let families = match query.family {
            Family::V4 => Families::V4,
            Family::V6 => Families::V6,
        };
        let context = started.for_client(steering.client_ip);
        let Some(decision) = context.decide(host, families) else {
            return Common::General;
        };
        // As `answer` adds them: the IPv4 list's IPv4 addresses, then the IPv6 list's.
        let addresses = decision
            .answer
            .v4
            .iter()
            .filter(|ip| ip.is_ipv4())
            .chain(decision.answer.v6.iter().filter(|ip| ip.is_ipv6()));
        let asked = |ip: &&IpAddr| match query.family {
            Family::V4 => ip.is_ipv4(),
            Family::V6 => ip.is_ipv6(),
        };
        if !addresses.clone().any(|ip| asked(&ip)) {
            return Common::Decided(Box::new(decision));
        }
        let limit = match transport {
            Transport::Udp => udp_limit(
                query.edns.map(|edns| edns.max_payload),
                policy.udp_max_payload,
            ),
            Transport::UdpSlip => CLASSIC_UDP_PAYLOAD,
            Transport::Stream => usize::from(u16::MAX),
        };
        let echo = steering.response_option(true, &snapshot.ecs_scopes);
        let parts = AnswerParts {
            addresses,
            ttl: decision.ttl,
            udp_max_payload: policy.udp_max_payload,
            subnet: echo.as_ref(),
            truncated: transport == Transport::UdpSlip,
        };
        match wire::write_answer(query, parts, out) {
            Some(()) if out.len() <= limit => Common::Written(decision.ttl),
            _ => Common::Decided(Box::new(decision)),
        }
    }

    /// Answers raw query bytes from `client` (the UDP/TCP peer, or the DoH client IP),
    /// always through hickory: the reference the fast path must match.
    /// `None`: nothing should be sent back — too short to carry an ID, or a response
    /// rather than a query (answering those invites loops).
    pub fn handle(&self, query: &[u8], client: IpAddr) -> Option<Reply> {
        self.handle_in(&self.inner.resolver.request(), query, client)
    }

    /// [`Self::handle`] within a request the caller already started.
    pub fn handle_in(&self, request: &Request<'_>, query: &[u8], client: IpAddr) -> Option<Reply> {
        self.general(request, query, client, None)
    }

    /// The hickory path, with the steering decision already made when the fast path
    /// made it.
    fn general(
        &self,
        request: &Request<'_>,
        query: &[u8],
        client: IpAddr,
        decided: Option<Decision>,
    ) -> Option<Reply> {
        if query.len() < HEADER_LEN || query[2] & 0x80 != 0 {
            return None;
        }
        match parse_exact(query) {
            Ok(message) => Some(self.answer_decided(request, &message, client, decided)),
            Err(error) => {
                tracing::debug!(%error, %client, "malformed DNS query");
                let id = u16::from_be_bytes([query[0], query[1]]);
                let op_code = OpCode::from_u8((query[2] >> 3) & 0x0f);
                let mut message = Message::error_msg(id, op_code, ResponseCode::FormErr);
                message.metadata.recursion_desired = query[2] & 0x01 != 0;
                Some(Reply {
                    message,
                    udp_limit: CLASSIC_UDP_PAYLOAD,
                })
            }
        }
    }

    /// Answers a parsed query.
    pub fn handle_message(&self, request: &Message, client: IpAddr) -> Reply {
        self.answer_message(&self.inner.resolver.request(), request, client)
    }

    /// Answers a parsed query within `started`: one snapshot for the whole answer, so
    /// apexes, zones and steering agree.
    pub fn answer_message(
        &self,
        started: &Request<'_>,
        request: &Message,
        client: IpAddr,
    ) -> Reply {
        self.answer_decided(started, request, client, None)
    }

    /// [`Self::answer_message`], with the steering decision for the question when it
    /// was already made.
    fn answer_decided(
        &self,
        started: &Request<'_>,
        request: &Message,
        client: IpAddr,
        decided: Option<Decision>,
    ) -> Reply {
        let policy = &started.snapshot().dns;
        let udp_limit = udp_limit(
            request.edns.as_ref().map(Edns::max_payload),
            policy.udp_max_payload,
        );
        let mut response = Message::response(request.metadata.id, request.metadata.op_code);
        response.metadata.recursion_desired = request.metadata.recursion_desired;
        response.metadata.checking_disabled = request.metadata.checking_disabled;
        response.add_queries(request.queries.iter().cloned());
        let option = request
            .edns
            .as_ref()
            .and_then(|edns| match edns.option(EdnsCode::Subnet) {
                Some(EdnsOption::Subnet(subnet)) => Some(subnet),
                _ => None,
            });
        let steering = ecs::steering(option, client, &policy.ecs_trusted);
        let mut depends_on_client = false;
        let code = match request.edns.as_ref().map(Edns::version) {
            _ if request.metadata.message_type != MessageType::Query => ResponseCode::FormErr,
            _ if request.metadata.op_code != OpCode::Query => ResponseCode::NotImp,
            Some(version) if version > 0 => ResponseCode::BADVERS,
            _ if request.queries.len() != 1 => ResponseCode::FormErr,
            _ => {
                let (code, steered) = answer(started, request, &steering, &mut response, decided);
                depends_on_client = steered;
                code
            }
        };
        response.metadata.response_code = code;
        if request.edns.is_some() {
            let mut edns = Edns::new();
            edns.set_max_payload(policy.udp_max_payload);
            let scopes = &started.snapshot().ecs_scopes;
            if let Some(subnet) = steering.response_option(depends_on_client, scopes) {
                edns.options_mut().insert(EdnsOption::Subnet(subnet));
            }
            response.set_edns(edns);
        }
        Reply {
            message: response,
            udp_limit,
        }
    }
}

/// Fills the answer for the one question; returns the code and whether the answer was
/// steered by the client's address.
fn answer(
    started: &Request<'_>,
    request: &Message,
    steering: &Steering,
    response: &mut Message,
    decided: Option<Decision>,
) -> (ResponseCode, bool) {
    let snapshot = started.snapshot();
    let question = &request.queries[0];
    if question.query_class() != DNSClass::IN {
        return (ResponseCode::Refused, false);
    }
    let qname = question.name().to_lowercase();
    let qtype = question.query_type();
    let host = normalize_host(&qname.to_ascii());
    let apex = snapshot.dns.authority.apex_of(&qname);
    let is_domain = valid_host(&host) && snapshot.model.domain(&host).is_some();
    if apex.is_none() && !is_domain {
        return (ResponseCode::Refused, false);
    }
    response.metadata.authoritative = true;
    let at_apex = apex.filter(|a| a.name == qname);
    if let Some(apex) = at_apex {
        if matches!(qtype, RecordType::SOA | RecordType::ANY) {
            response.add_answer(apex.soa());
        }
        if matches!(qtype, RecordType::NS | RecordType::ANY) {
            response.add_answers(apex.ns().iter().cloned());
        }
    }
    let mut steered = false;
    if is_domain {
        let families = match qtype {
            RecordType::A => Some(Families::V4),
            RecordType::AAAA => Some(Families::V6),
            RecordType::ANY => Some(Families::Both),
            _ => None,
        };
        if let Some(families) = families {
            let decision = decided.or_else(|| {
                started
                    .for_client(steering.client_ip)
                    .decide(&host, families)
            });
            if let Some(decision) = decision {
                steered = true;
                let ttl = decision.ttl;
                let record = |rdata| Record::from_rdata(qname.clone(), ttl, rdata);
                response.add_answers(decision.answer.v4.iter().filter_map(|ip| match ip {
                    IpAddr::V4(v4) => Some(record(RData::A(A(*v4)))),
                    IpAddr::V6(_) => None,
                }));
                response.add_answers(decision.answer.v6.iter().filter_map(|ip| match ip {
                    IpAddr::V6(v6) => Some(record(RData::AAAA(AAAA(*v6)))),
                    IpAddr::V4(_) => None,
                }));
            }
        }
    }
    let exists = is_domain || at_apex.is_some() || snapshot.model.has_subdomains(&host);
    if let Some(apex) = apex.filter(|_| response.answers.is_empty()) {
        response.add_authority(apex.negative_soa());
    }
    if exists {
        (ResponseCode::NoError, steered)
    } else {
        (ResponseCode::NXDomain, false)
    }
}

/// The largest UDP answer for a query advertising `max_payload` (`None`: no EDNS):
/// never under 512, never over our `cap` (which the config keeps at 512 or more).
fn udp_limit(max_payload: Option<u16>, cap: u16) -> usize {
    match max_payload {
        Some(payload) => usize::from(payload.min(cap).max(wire::CLASSIC_UDP_PAYLOAD)),
        None => CLASSIC_UDP_PAYLOAD,
    }
}

/// Parses a whole query: bytes left after the message make it malformed (FORMERR), so a
/// query cannot smuggle data past what we parsed.
fn parse_exact(query: &[u8]) -> Result<Message, String> {
    use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};
    let mut decoder = BinDecoder::new(query);
    let message = Message::read(&mut decoder).map_err(|e| e.to_string())?;
    match decoder.len() {
        0 => Ok(message),
        trailing => Err(format!("{trailing} bytes after the message")),
    }
}

/// Encodes `message` within `limit` bytes: whole, else truncated with TC set (question
/// and OPT kept), else a bare SERVFAIL.
fn encode(message: &Message, limit: usize) -> Vec<u8> {
    match message.to_vec() {
        Ok(bytes) if bytes.len() <= limit => return bytes,
        Ok(_) => match message.truncate().to_vec() {
            Ok(bytes) if bytes.len() <= limit => return bytes,
            _ => {}
        },
        Err(error) => tracing::warn!(%error, "cannot encode DNS answer"),
    }
    let failure = Message::error_msg(
        message.metadata.id,
        message.metadata.op_code,
        ResponseCode::ServFail,
    );
    failure.to_vec().unwrap_or_default()
}

/// Names for the JSON DoH front: a fully qualified name from user text.
pub(super) fn parse_name(text: &str) -> Option<Name> {
    let host = normalize_host(text);
    if host.is_empty() || host.len() > 253 {
        return None;
    }
    Name::from_ascii(format!("{host}.")).ok()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use hickory_proto::op::Query;

    use super::*;
    use crate::ServerConfig;

    fn handler() -> DnsHandler {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let config = ServerConfig::load(&root.join("deploy/example/httpdns.toml")).unwrap();
        let snapshot = crate::snapshot::load(&config).unwrap();
        let state_dir = tempfile::tempdir().unwrap().keep();
        let resolver = Resolver::standalone(snapshot, &state_dir).unwrap();
        DnsHandler::new(resolver)
    }

    fn query(name: &str, kind: RecordType) -> Message {
        let mut message = Message::query();
        message.add_query(Query::query(Name::from_ascii(name).unwrap(), kind));
        message
    }

    fn local() -> IpAddr {
        "127.0.0.1".parse().unwrap()
    }

    #[test]
    fn runts_and_responses_get_no_reply() {
        let handler = handler();
        assert!(handler.handle(&[0; 11], local()).is_none());
        let mut response = query("api.example.com.", RecordType::A);
        response.metadata.message_type = MessageType::Response;
        assert!(
            handler
                .handle(&response.to_vec().unwrap(), local())
                .is_none()
        );
    }

    #[test]
    fn trailing_bytes_after_a_valid_question_are_formerr() {
        let handler = handler();
        let mut wire = query("api.example.com.", RecordType::A).to_vec().unwrap();
        let answered = handler.handle(&wire, local()).unwrap();
        assert_eq!(
            answered.message.metadata.response_code,
            ResponseCode::NoError
        );
        wire.extend_from_slice(b"smuggled");
        let reply = handler.handle(&wire, local()).unwrap();
        assert_eq!(reply.message.metadata.response_code, ResponseCode::FormErr);
        assert!(reply.message.answers.is_empty());
    }

    #[test]
    fn unknown_opcode_is_notimp_and_edns_version_1_is_badvers() {
        let handler = handler();
        let mut update = query("api.example.com.", RecordType::A);
        update.metadata.op_code = OpCode::Update;
        let reply = handler.handle_message(&update, local());
        assert_eq!(reply.message.metadata.response_code, ResponseCode::NotImp);

        let mut future = query("api.example.com.", RecordType::A);
        let mut edns = Edns::new();
        edns.set_version(1);
        future.set_edns(edns);
        let wire = handler.handle_message(&future, local()).to_udp();
        let parsed = Message::from_vec(&wire).unwrap();
        // 16 is BADVERS in an OPT context (hickory names the shared code BADSIG).
        assert_eq!(u16::from(parsed.metadata.response_code), 16);
        assert!(parsed.answers.is_empty());
    }

    #[test]
    fn two_questions_are_formerr_and_chaos_class_is_refused() {
        let handler = handler();
        let mut two = query("api.example.com.", RecordType::A);
        two.add_query(Query::query(
            Name::from_ascii("img.example.com.").unwrap(),
            RecordType::A,
        ));
        let reply = handler.handle_message(&two, local());
        assert_eq!(reply.message.metadata.response_code, ResponseCode::FormErr);

        let mut chaos = Message::query();
        let mut question =
            Query::query(Name::from_ascii("version.bind.").unwrap(), RecordType::TXT);
        question.set_query_class(DNSClass::CH);
        chaos.add_query(question);
        let reply = handler.handle_message(&chaos, local());
        assert_eq!(reply.message.metadata.response_code, ResponseCode::Refused);
    }

    #[test]
    fn udp_limit_follows_edns_within_our_cap() {
        let handler = handler();
        let plain = query("api.example.com.", RecordType::A);
        assert_eq!(handler.handle_message(&plain, local()).udp_limit, 512);
        let mut big = query("api.example.com.", RecordType::A);
        let mut edns = Edns::new();
        edns.set_max_payload(65000);
        big.set_edns(edns);
        assert_eq!(handler.handle_message(&big, local()).udp_limit, 1232);
    }

    #[test]
    fn answers_carry_the_domain_ttl_and_mixed_case_names_match() {
        let handler = handler();
        let reply = handler.handle_message(&query("IMG.Example.COM.", RecordType::A), local());
        assert_eq!(reply.message.metadata.response_code, ResponseCode::NoError);
        assert!(reply.message.metadata.authoritative);
        assert!(!reply.message.answers.is_empty());
        assert!(reply.message.answers.iter().all(|r| r.ttl == 300));
        assert_eq!(reply.min_ttl(), Some(300));
    }
}
