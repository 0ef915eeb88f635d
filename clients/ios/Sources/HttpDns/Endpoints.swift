import Foundation

/// One configured resolver (same rules as Android's `ServerEndpoint`): no scheme means https,
/// "http://" only when written out.
struct ServerEndpoint: Sendable, Equatable {
    let entry: String
    let https: Bool
    /// Host as in a URL (IPv6 in brackets).
    let host: String
    let port: Int
    let baseUrl: String

    /// The host without IPv6 brackets: what the certificate must name when no tlsServerName is set.
    var bareHost: String { IpLiteral.strip(host) }

    static func parse(_ entry: String) throws -> ServerEndpoint {
        var s = entry.trimmingCharacters(in: .whitespaces)
        guard !s.isEmpty else { throw HttpDnsError.malformed("empty server entry") }
        if !s.contains("://") { s = "https://" + s }
        guard let u = URLComponents(string: s), let scheme = u.scheme?.lowercased(),
              scheme == "https" || scheme == "http" else {
            throw HttpDnsError.malformed("server entry \(entry): scheme must be https (or http, written out)")
        }
        guard let rawHost = u.host, !rawHost.isEmpty else { throw HttpDnsError.malformed("server entry \(entry) has no host") }
        guard u.query == nil, u.fragment == nil, u.user == nil else {
            throw HttpDnsError.malformed("server entry \(entry): only scheme, host, port and path are allowed")
        }
        let https = scheme == "https"
        let host = rawHost.contains(":") && !rawHost.hasPrefix("[") ? "[\(rawHost)]" : rawHost
        let port = u.port ?? (https ? 443 : 80)
        var path = u.percentEncodedPath
        while path.hasSuffix("/") { path.removeLast() }
        return ServerEndpoint(entry: entry, https: https, host: host, port: port, baseUrl: "\(scheme)://\(host):\(port)\(path)")
    }
}

/// IP literals, recognised without any lookup: answered locally, never sent to the resolver.
enum IpLiteral {
    static func isLiteral(_ s: String) -> Bool {
        let h = strip(s)
        if h.isEmpty { return false }
        if h.contains(":") {
            return h.count <= 45 && h.allSatisfy { $0.isHexDigit || $0 == ":" || $0 == "." }
        }
        let parts = h.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return false }
        return parts.allSatisfy { p in
            !p.isEmpty && p.count <= 3 && p.allSatisfy { $0.isASCII && $0.isNumber } && (Int(p) ?? 256) <= 255
        }
    }

    static func strip(_ s: String) -> String {
        return s.hasPrefix("[") && s.hasSuffix("]") ? String(s.dropFirst().dropLast()) : s
    }
}

/// Per-server failure memory (same rules as Android's `ServerBackoff`): skipped for base, 2x base, ...
/// up to max after failures; past the window one trial request decides. Not thread safe: the client
/// holds it inside its locked state.
struct ServerBackoff: Sendable {
    let baseMs: Int64
    let maxMs: Int64
    private var failures: [Int]
    private var until: [Int64]
    private var probing: [Bool]

    init(servers: Int, baseMs: Int64, maxMs: Int64) {
        self.baseMs = baseMs
        self.maxMs = maxMs
        failures = Array(repeating: 0, count: servers)
        until = Array(repeating: 0, count: servers)
        probing = Array(repeating: false, count: servers)
    }

    func healthy(_ i: Int) -> Bool { failures[i] == 0 }
    var anyHealthy: Bool { failures.contains(0) }
    func due(_ i: Int, now: Int64) -> Bool { failures[i] > 0 && now >= until[i] && !probing[i] }

    mutating func claimProbe(_ i: Int, now: Int64) -> Bool {
        guard due(i, now: now) else { return false }
        probing[i] = true
        return true
    }

    mutating func success(_ i: Int) {
        failures[i] = 0
        until[i] = 0
        probing[i] = false
    }

    @discardableResult
    mutating func failure(_ i: Int, now: Int64) -> Int64 {
        failures[i] = min(failures[i] + 1, 30)
        var d = baseMs
        var k = 1
        while k < failures[i] && d < maxMs {
            d *= 2
            k += 1
        }
        d = min(d, maxMs)
        until[i] = now + d
        probing[i] = false
        return d
    }

    mutating func reset() {
        for i in failures.indices {
            failures[i] = 0
            until[i] = 0
            probing[i] = false
        }
    }
}
