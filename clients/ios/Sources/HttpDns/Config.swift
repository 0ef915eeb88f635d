import Foundation
#if canImport(Darwin)
import Darwin
#elseif canImport(Glibc)
import Glibc
#endif

/// Wall-clock source for cache TTLs, staleness, backoff windows, report intervals and signature expiry.
/// Injectable for tests. (Named `HttpDnsClock` to avoid Swift's own `Clock` protocol.)
public protocol HttpDnsClock: Sendable {
    /// Milliseconds since the Unix epoch.
    func nowMillis() -> Int64
}

public struct SystemClock: HttpDnsClock {
    public init() {}
    public func nowMillis() -> Int64 { return Int64(Date().timeIntervalSince1970 * 1000) }
}

/// The platform resolver (LocalDNS) used when HTTPDNS cannot answer. Pluggable for tests.
/// Called on SDK tasks only, never on the caller's thread.
public protocol SystemDns: Sendable {
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

/// Which IP families the device can use, for `queryType = "auto"`. Pluggable (e.g. `NWPathMonitor`).
public protocol IpStackDetector: Sendable {
    /// "A", "AAAA" or "A,AAAA".
    func queryType() -> String
}

/// Default detector: addresses of the interfaces that are up (`getifaddrs`); loopback, link-local
/// and ULA IPv6 do not count. Reads local state only.
public struct LocalInterfacesDetector: IpStackDetector {
    public init() {}

    public func queryType() -> String {
        var v4 = false
        var v6 = false
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0, let first = list else { return "A,AAAA" }
        defer { freeifaddrs(first) }
        var cur: UnsafeMutablePointer<ifaddrs>? = first
        while let ifa = cur {
            defer { cur = ifa.pointee.ifa_next }
            let flags = Int32(truncatingIfNeeded: ifa.pointee.ifa_flags)
            guard let sa = ifa.pointee.ifa_addr, flags & Int32(IFF_UP) != 0, flags & Int32(IFF_LOOPBACK) == 0,
                  let ip = PosixSystemDns.ipString(sa) else { continue }
            if ip.contains(":") {
                let lower = ip.lowercased()
                if !lower.hasPrefix("fe80") && !lower.hasPrefix("fc") && !lower.hasPrefix("fd") { v6 = true }
            } else {
                v4 = true
            }
        }
        return LocalInterfacesDetector.typeFor(v4: v4, v6: v6)
    }

    /// The query type for the usable families; neither known means ask for both.
    public static func typeFor(v4: Bool, v6: Bool) -> String {
        if v4 && !v6 { return "A" }
        if v6 && !v4 { return "AAAA" }
        return "A,AAAA"
    }
}

public enum LogLevel: String, Sendable { case debug, info, warn, error }

/// Logging hook for the SDK's own events (TLS failures, backoff, cleartext servers).
public typealias HttpDnsLogger = @Sendable (_ level: LogLevel, _ message: String, _ error: Error?) -> Void

/// Supplies the request signature so the secret need not live in the app.
/// Arguments: the exact `host` query value (comma-joined for a batch) and `t` (Unix expiry seconds).
/// Returns lowercase hex HMAC-SHA256(secret, hostParam + "\n" + t), or nil to send unsigned.
public typealias TokenProvider = @Sendable (_ hostParam: String, _ expiry: Int64) -> String?

/// Decides which hosts bypass HTTPDNS and always use the system resolver.
public typealias HostFilter = @Sendable (_ host: String) -> Bool

/// Client settings; the same names and defaults as the Android SDK's `HttpDnsConfig`.
public struct HttpDnsConfig: Sendable {
    /// "https://203.0.113.53", "https://203.0.113.53:8443", "203.0.113.53" (no scheme means https).
    /// "http://..." only when written out (a warning is logged once).
    public var servers: [String]
    /// Name required in the server certificate when connecting by IP; nil: the certificate must name the IP.
    /// URLSession cannot send SNI for an IP URL, so on Apple platforms this name is verified but not sent.
    public var tlsServerName: String?
    /// PEM certificates used as the only trust anchors (a private CA or a self-signed certificate).
    public var trustedCertificatesPem: String?
    /// Base64 SHA-256 SPKI pins checked on top of the chain.
    public var pinSha256: [String] = []
    public var logger: HttpDnsLogger = { level, message, _ in
        if level == .warn || level == .error { FileHandle.standardError.write(Data("httpdns: \(message)\n".utf8)) }
    }
    /// Timeout of one attempt on one server (URLSession has no separate connect timeout).
    public var connectTimeoutMs: Int = 500
    public var readTimeoutMs: Int = 1000
    /// Total budget of one `resolve` call.
    public var timeoutMs: Int = 1500
    /// Part of `timeoutMs` kept for the system resolver after HTTPDNS fails.
    public var systemDnsBudgetMs: Int = 400
    public var maxStaleMs: Int64 = 60 * 60 * 1000
    public var refreshRatio: Double = 0.75
    public var backoffBaseMs: Int64 = 2000
    public var backoffMaxMs: Int64 = 5 * 60 * 1000
    public var negativeTtlMs: Int64 = 30 * 1000
    public var maxCacheEntries: Int = 512
    public var preResolveHosts: [String] = []
    /// "auto" (the families `ipStackDetector` reports), "A", "AAAA" or "A,AAAA".
    public var queryType: String = "auto"
    public var ipStackDetector: IpStackDetector = LocalInterfacesDetector()
    public var clientIp: String?
    public var secret: String?
    /// Takes precedence over `secret`.
    public var tokenProvider: TokenProvider?
    public var signValiditySeconds: Int64 = 300
    public var systemDns: SystemDns = PosixSystemDns()
    public var systemDnsFilter: HostFilter = { _ in false }
    public var clock: HttpDnsClock = SystemClock()
    /// Where the cache survives restarts; nil: memory only.
    public var cacheStore: CacheStore?
    public var reportIntervalMs: Int64 = 60 * 1000
    public var maxPendingReports: Int = 256
    /// Period of the background housekeeping tick (refresh + report flush); 0 disables it.
    public var tickIntervalMs: Int = 1000
    public var probeTimeoutMs: Int = 1000
    public var prober: TcpProber = PosixTcpProber()
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

/// Where the answer cache is kept across launches (apps can back it with their own storage).
public protocol CacheStore: Sendable {
    func load() throws -> String?
    func save(_ snapshot: String) throws
}

/// `CacheStore` in one file, replaced atomically.
public struct FileCacheStore: CacheStore {
    public let url: URL

    public init(url: URL) {
        self.url = url
    }

    public func load() throws -> String? {
        guard FileManager.default.fileExists(atPath: url.path) else { return nil }
        return String(decoding: try Data(contentsOf: url), as: UTF8.self)
    }

    public func save(_ snapshot: String) throws {
        try Data(snapshot.utf8).write(to: url, options: .atomic)
    }
}
