//! Property tests for the DNS message path shared by DoH, UDP and TCP: whatever bytes
//! arrive, the handler never panics, and what it sends back parses, carries the query's
//! ID and fits the transport's limit. A bounded number of cases runs in `cargo test`.

mod common;

use std::net::IpAddr;

use hickory_proto::op::{Edns, Message, Query};
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsOption};
use hickory_proto::rr::{Name, RecordType};
use httpdns::dns::DnsHandler;
use httpdns::resolver::Resolver;
use proptest::prelude::*;

fn handler() -> DnsHandler {
    let state = tempfile::tempdir().unwrap();
    let config = common::dns_config(state.path(), true);
    let snapshot = httpdns::snapshot::load(&config).unwrap();
    let resolver = Resolver::standalone(snapshot, &state.path().join("state")).unwrap();
    DnsHandler::new(resolver)
}

/// Every reply must encode to a message that parses back with the query's ID, and the
/// UDP form must fit the client's limit.
fn check_reply(handler: &DnsHandler, bytes: &[u8], client: IpAddr) -> Result<(), TestCaseError> {
    let Some(reply) = handler.handle(bytes, client) else {
        prop_assert!(bytes.len() < 12 || bytes[2] & 0x80 != 0);
        return Ok(());
    };
    let id = u16::from_be_bytes([bytes[0], bytes[1]]);
    for (wire, limit) in [
        (reply.to_udp(), reply.udp_limit),
        (reply.to_stream(), usize::from(u16::MAX)),
    ] {
        prop_assert!(wire.len() <= limit);
        let parsed = Message::from_vec(&wire);
        prop_assert!(parsed.is_ok(), "reply does not parse: {parsed:?}");
        prop_assert_eq!(parsed.unwrap().metadata.id, id);
    }
    Ok(())
}

fn names() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("api.example.com.".to_string()),
        Just("img.example.com.".to_string()),
        Just("example.com.".to_string()),
        "[a-z0-9]([a-z0-9-]{0,18}[a-z0-9])?\\.example\\.com\\.",
        "[a-z0-9]{1,10}\\.[a-z]{2,5}\\.",
    ]
}

prop_compose! {
    /// A well-formed query with random type, flags, EDNS and ECS.
    fn queries()(
        id in any::<u16>(),
        name in names(),
        kind in prop_oneof![Just(1u16), Just(28), Just(6), Just(2), Just(255), any::<u16>()],
        rd in any::<bool>(),
        edns in proptest::option::of((512u16..=65535, any::<u8>())),
        subnet in proptest::option::of((any::<[u8; 16]>(), any::<bool>(), 0u8..=128)),
    ) -> Vec<u8> {
        let mut message = Message::query();
        message.metadata.id = id;
        message.metadata.recursion_desired = rd;
        message.add_query(Query::query(Name::from_ascii(&name).unwrap(), RecordType::from(kind)));
        if let Some((payload, version)) = edns {
            let mut edns = Edns::new();
            edns.set_max_payload(payload);
            edns.set_version(version % 2);
            if let Some((octets, v4, prefix)) = subnet {
                let addr: IpAddr = if v4 {
                    IpAddr::from([octets[0], octets[1], octets[2], octets[3]])
                } else {
                    IpAddr::from(octets)
                };
                let prefix = if v4 { prefix % 33 } else { prefix };
                edns.options_mut().insert(EdnsOption::Subnet(ClientSubnet::new(addr, prefix, 0)));
            }
            message.set_edns(edns);
        }
        message.to_vec().unwrap()
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 400,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let handler = handler();
        check_reply(&handler, &bytes, "127.0.0.1".parse().unwrap())?;
    }

    #[test]
    fn valid_and_mutated_queries_get_well_formed_replies(
        query in queries(),
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..4),
        trusted in any::<bool>(),
    ) {
        let handler = handler();
        let client: IpAddr = if trusted { "127.0.0.1" } else { "203.0.113.99" }.parse().unwrap();
        check_reply(&handler, &query, client)?;
        let mut mutated = query.clone();
        for (at, value) in flips {
            let len = mutated.len();
            mutated[at % len] ^= value;
        }
        check_reply(&handler, &mutated, client)?;
    }
}
