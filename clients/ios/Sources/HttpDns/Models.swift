import Foundation

/// Where the server located the client. Every field may be nil when unknown.
public struct Geo: Equatable, Sendable {
    public let country: String?
    public let province: String?
    public let city: String?
    public let carrier: String?
    public let asn: Int64?
}

/// A lower-priority zone the client may use when the primary addresses fail.
public struct FallbackZone: Equatable, Sendable {
    public let zone: String
    public let ips: [String]
    public let ipsv6: [String]

    /// IPv4 then IPv6 addresses of this zone.
    public var addresses: [String] { return ips + ipsv6 }
}

/// The addresses for one host, and where they came from.
public struct HostAnswer: Equatable, Sendable {
    public enum Source: String, Sendable {
        /// Fresh from an HTTPDNS server.
        case httpdns
        /// From the cache, within its TTL.
        case cache
        /// From the cache past its TTL (servers failed), within the maximum staleness.
        case stale
        /// From the system resolver.
        case system
        /// Nothing could resolve the host; the address lists are empty.
        case none
    }

    public let host: String
    /// Zone of the primary addresses; nil for system/none answers.
    public let zone: String?
    /// True when the server already failed over from the client's preferred zone.
    public let failover: Bool
    /// Seconds the answer may be cached; 0 for answers not from HTTPDNS.
    public let ttl: Int
    public let ips: [String]
    public let ipsv6: [String]
    public let fallback: [FallbackZone]
    /// Per-host error from the server (e.g. "unknown_host") or a local reason; nil when fine.
    public let error: String?
    /// Configuration epoch of the response that carried this answer (0 if none).
    public let epoch: Int64
    public internal(set) var source: Source

    /// True when there is no primary address at all.
    public var isEmpty: Bool { return ips.isEmpty && ipsv6.isEmpty }

    /// Primary addresses: IPv4 first, then IPv6.
    public var addresses: [String] { return ips + ipsv6 }

    /// Every address in the order to try: primary, then each fallback zone in order (no duplicates).
    public var allAddresses: [String] {
        var seen = Set<String>()
        var out: [String] = []
        for a in addresses + fallback.flatMap({ $0.addresses }) where !seen.contains(a) {
            seen.insert(a)
            out.append(a)
        }
        return out
    }

    /// Addresses to try after `failedIp` failed: the rest of the primary addresses, then the fallback
    /// zones in order. If `failedIp` is not part of this answer, every address is returned.
    public func nextAddresses(after failedIp: String?) -> [String] {
        let all = allAddresses
        guard let failed = failedIp, let i = all.firstIndex(of: failed) else { return all }
        return Array(all[(i + 1)...])
    }

    func withSource(_ s: Source) -> HostAnswer {
        var copy = self
        copy.source = s
        return copy
    }

    static func fromSystem(host: String, addresses: [String]) -> HostAnswer {
        return HostAnswer(host: host, zone: nil, failover: false, ttl: 0,
                          ips: addresses.filter { !$0.contains(":") },
                          ipsv6: addresses.filter { $0.contains(":") },
                          fallback: [], error: nil, epoch: 0, source: .system)
    }

    /// An IP literal answered locally (never sent to the resolver).
    static func literal(_ host: String) -> HostAnswer {
        let ip = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        return fromSystem(host: host, addresses: [ip])
    }

    static func unresolved(host: String, error: String) -> HostAnswer {
        return HostAnswer(host: host, zone: nil, failover: false, ttl: 0, ips: [], ipsv6: [],
                          fallback: [], error: error, epoch: 0, source: .none)
    }
}

/// Which TLS check failed (same names as Android's `HttpDnsTlsException.Kind`).
public enum TlsFailureKind: String, Sendable {
    case nameMismatch = "NAME_MISMATCH"
    case untrusted = "UNTRUSTED"
    case pinMismatch = "PIN_MISMATCH"
    case handshake = "HANDSHAKE"
}

public enum HttpDnsError: Error, Equatable, Sendable {
    case malformed(String)
    /// A TLS check failed; never retried in cleartext.
    case tls(TlsFailureKind, String)
    /// Every server is in backoff.
    case unavailable
    case http(status: Int, body: String)
    case transport(String)
    case timeout
    case closed
}

/// A parsed `GET /resolve` response body.
public struct ResolveResponse: Equatable, Sendable {
    public let clientIp: String?
    public let geo: Geo?
    public let epoch: Int64
    public let answers: [HostAnswer]

    /// Parses a 200 body. Answers get source `.httpdns`.
    public static func parse(_ data: Data) throws -> ResolveResponse {
        let w: Wire
        do {
            w = try JSONDecoder().decode(Wire.self, from: data)
        } catch {
            throw HttpDnsError.malformed(String(describing: error))
        }
        guard let wireAnswers = w.answers else { throw HttpDnsError.malformed("response has no answers array") }
        let epoch = w.epoch ?? 0
        let answers = wireAnswers.map { (a: WireAnswer) -> HostAnswer in
            HostAnswer(host: a.host.lowercased(), zone: a.zone, failover: a.failover ?? false, ttl: a.ttl ?? 0,
                       ips: a.ips ?? [], ipsv6: a.ipsv6 ?? [],
                       fallback: (a.fallback ?? []).map { FallbackZone(zone: $0.zone ?? "", ips: $0.ips ?? [], ipsv6: $0.ipsv6 ?? []) },
                       error: a.error, epoch: epoch, source: .httpdns)
        }
        let geo = w.geo.map { Geo(country: $0.country, province: $0.province, city: $0.city, carrier: $0.carrier, asn: $0.asn) }
        return ResolveResponse(clientIp: w.client_ip, geo: geo, epoch: epoch, answers: answers)
    }

    // Wire format; snake_case names as sent by the server.
    private struct Wire: Decodable {
        let client_ip: String?
        let geo: WireGeo?
        let epoch: Int64?
        let answers: [WireAnswer]?
    }

    private struct WireGeo: Decodable {
        let country: String?
        let province: String?
        let city: String?
        let carrier: String?
        let asn: Int64?
    }

    private struct WireAnswer: Decodable {
        let host: String
        let zone: String?
        let failover: Bool?
        let ttl: Int?
        let ips: [String]?
        let ipsv6: [String]?
        let fallback: [WireZone]?
        let error: String?
    }

    private struct WireZone: Decodable {
        let zone: String?
        let ips: [String]?
        let ipsv6: [String]?
    }
}
