import Foundation
#if canImport(Darwin)
import Darwin
#elseif canImport(Glibc)
import Glibc
#endif

/// Wall-clock source for cache TTLs, staleness, refresh points, report intervals and signature expiry.
/// Injectable for tests. (Named `HttpDnsClock` rather than `Clock` to avoid Swift 5.7's `Clock` protocol.)
/// Blocking timeouts always use real monotonic time.
public protocol HttpDnsClock {
    /// Milliseconds since the Unix epoch.
    func nowMillis() -> Int64
}

public struct SystemClock: HttpDnsClock {
    public init() {}
    public func nowMillis() -> Int64 { return Int64(Date().timeIntervalSince1970 * 1000) }
}

/// The platform resolver (LocalDNS) used when HTTPDNS cannot answer. Pluggable for tests.
public protocol SystemDns {
    /// IP literals (IPv4 and/or IPv6) for `host`; throws when it cannot be resolved.
    func lookup(_ host: String) throws -> [String]
}

/// `getaddrinfo`-based system resolver.
public struct PosixSystemDns: SystemDns {
    public init() {}

    public func lookup(_ host: String) throws -> [String] {
        var res: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, nil, nil, &res)
        guard rc == 0, let first = res else { throw HttpDnsError.transport("getaddrinfo(\(host)) failed: \(rc)") }
        defer { freeaddrinfo(first) }
        var out: [String] = []
        var cur: UnsafeMutablePointer<addrinfo>? = first
        while let ai = cur {
            if let sa = ai.pointee.ai_addr, let ip = PosixSystemDns.ipString(sa), !out.contains(ip) {
                out.append(ip)
            }
            cur = ai.pointee.ai_next
        }
        return out
    }

    static func ipString(_ sa: UnsafeMutablePointer<sockaddr>) -> String? {
        var buf = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        let family = Int32(sa.pointee.sa_family)
        if family == AF_INET {
            var addr = sa.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_addr }
            guard inet_ntop(AF_INET, &addr, &buf, socklen_t(buf.count)) != nil else { return nil }
        } else if family == AF_INET6 {
            var addr = sa.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { $0.pointee.sin6_addr }
            guard inet_ntop(AF_INET6, &addr, &buf, socklen_t(buf.count)) != nil else { return nil }
        } else {
            return nil
        }
        return String(cString: buf)
    }
}

/// Supplies the request signature so the secret need not live in the app.
/// Arguments: the exact `host` query value (comma-joined for a batch) and `t` (Unix expiry seconds).
/// Returns lowercase hex HMAC-SHA256(secret, hostParam + "\n" + t), or nil to send unsigned.
public typealias TokenProvider = (_ hostParam: String, _ expiry: Int64) -> String?

/// Decides which hosts bypass HTTPDNS and always use the system resolver.
public typealias HostFilter = (_ host: String) -> Bool

/// Client settings; the same names and defaults as the Android SDK's `HttpDnsConfig`.
public struct HttpDnsConfig {
    /// Server addresses "IP:port" (or "[v6]:port", or a full "http(s)://..." base URL), tried in order.
    public var servers: [String]
    /// Budget for one server attempt. URLSession has no separate connect timeout: one attempt may take
    /// up to connectTimeoutMs + readTimeoutMs.
    public var connectTimeoutMs: Int = 800
    public var readTimeoutMs: Int = 1500
    /// Longest a `resolve*` call may block its caller.
    public var timeoutMs: Int = 2000
    /// Part of `timeoutMs` kept for the system resolver after HTTPDNS fails.
    public var systemDnsBudgetMs: Int = 500
    /// How long past its TTL a cached answer may still be served when the servers fail.
    public var maxStaleMs: Int64 = 60 * 60 * 1000
    /// Fraction of the TTL after which a cached answer is refreshed in the background.
    public var refreshRatio: Double = 0.75
    public var preResolveHosts: [String] = []
    /// "A", "AAAA" or "A,AAAA".
    public var queryType: String = "A,AAAA"
    /// Optional `ip=` override (normally nil: the server uses the peer address).
    public var clientIp: String?
    public var secret: String?
    /// Takes precedence over `secret`.
    public var tokenProvider: TokenProvider?
    public var signValiditySeconds: Int64 = 300
    public var systemDns: SystemDns = PosixSystemDns()
    public var systemDnsFilter: HostFilter = { _ in false }
    public var clock: HttpDnsClock = SystemClock()
    public var reportIntervalMs: Int64 = 60 * 1000
    public var maxPendingReports: Int = 256
    /// Period of the background housekeeping tick (refresh + report flush); 0 disables it.
    public var tickIntervalMs: Int = 1000
    /// When > 0, every fresh HTTPDNS answer is TCP-probed on this port and the timings reported.
    public var autoProbePort: Int = 0
    public var probeTimeoutMs: Int = 1000
    public var prober: TcpProber = PosixTcpProber()
    /// Most hosts in one batch request.
    public var maxBatchSize: Int = 10

    public init(servers: [String]) {
        self.servers = servers
    }

    /// Hosts that always use the system resolver: exact names or "*.suffix" patterns.
    public mutating func systemDnsHosts(_ patterns: [String]) {
        let lowered = patterns.map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        let exact = Set(lowered.filter { !$0.hasPrefix("*.") })
        let suffixes = lowered.filter { $0.hasPrefix("*.") }.map { String($0.dropFirst()) }
        systemDnsFilter = { host in exact.contains(host) || suffixes.contains { host.hasSuffix($0) } }
    }
}
