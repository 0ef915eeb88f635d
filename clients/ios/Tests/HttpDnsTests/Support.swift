import Foundation
import XCTest
@testable import HttpDns
#if canImport(Security)
import Security
#endif

/// Shared fixtures from clients/testdata (the same files the Android tests load).
enum Fixtures {
    static let dir: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent() // HttpDnsTests
        .deletingLastPathComponent() // Tests
        .deletingLastPathComponent() // ios
        .deletingLastPathComponent() // clients
        .appendingPathComponent("testdata")

    static func data(_ name: String) -> Data {
        return (try? Data(contentsOf: dir.appendingPathComponent(name))) ?? Data()
    }

    static func string(_ name: String) -> String {
        return String(decoding: data(name), as: UTF8.self)
    }

    static func withEpoch(_ json: String, _ epoch: Int64) -> String {
        guard let r = json.range(of: "\"epoch\": [0-9]+", options: .regularExpression) else { return json }
        return json.replacingCharacters(in: r, with: "\"epoch\": \(epoch)")
    }
}

final class FakeClock: HttpDnsClock {
    private let now = Locked<Int64>(1_764_089_000_000)

    func nowMillis() -> Int64 { now.with { $0 } }
    func advance(_ ms: Int64) { now.with { $0 += ms } }
    func set(_ ms: Int64) { now.with { $0 = ms } }
}

final class FakeSystemDns: SystemDns {
    private struct State {
        var answers: [String: [String]] = [:]
        var lookups: [String] = []
    }

    private let state = Locked(State())

    func put(_ host: String, _ ips: [String]) { state.with { $0.answers[host] = ips } }
    var lookups: [String] { state.with { $0.lookups } }

    func lookup(_ host: String) throws -> [String] {
        let a: [String]? = state.with { s in
            s.lookups.append(host)
            return s.answers[host]
        }
        guard let ips = a else { throw HttpDnsError.transport("unknown host \(host)") }
        return ips
    }
}

final class FixedStack: IpStackDetector {
    let type: String
    init(_ type: String) { self.type = type }
    func queryType() -> String { type }
}

/// Fake HTTPDNS servers behind the transport protocol, one behaviour per configured server. For
/// HTTPS servers with a `cert` (a name under testdata/tls) the real `ServerTrustEvaluator` checks that
/// certificate, as the URLSession delegate does.
final class FakeTransport: HttpTransport {
    struct Request: Sendable {
        let server: Int
        let path: String
        let query: [String: String]
    }

    struct Behaviour: Sendable {
        var status = 200
        var body = Data("{}".utf8)
        var anyHost = false
        var delayMs = 0
        var dateMs: Int64 = 0
        var cert: String?
        /// Signed requests whose `t` is below this are refused with 403 (the server's expiry check).
        var minT: Int64?
    }

    private struct State {
        var behaviours: [Behaviour]
        var requests: [Request] = []
        var invalidated = false
    }

    private let state: Locked<State>
    let policy: TlsPolicy?
    let endpoints: [ServerEndpoint]

    init(servers: Int, config: HttpDnsConfig? = nil) throws {
        state = Locked(State(behaviours: Array(repeating: Behaviour(), count: servers)))
        policy = try config.map { try TlsPolicy(config: $0) }
        endpoints = try config?.servers.map(ServerEndpoint.parse) ?? []
    }

    func set(_ server: Int, _ change: (inout Behaviour) -> Void) { state.with { change(&$0.behaviours[server]) } }
    func serve(_ server: Int, fixture: String, anyHost: Bool = false) {
        set(server) { b in
            b.status = 200
            b.body = Fixtures.data(fixture)
            b.anyHost = anyHost
        }
    }

    var requests: [Request] { state.with { $0.requests } }
    func resolveCount(_ server: Int) -> Int { requests.filter { $0.server == server && $0.path.hasSuffix("/resolve") }.count }
    var invalidated: Bool { state.with { $0.invalidated } }

    func invalidate() { state.with { $0.invalidated = true } }

    func exchange(server: Int, method: String, url: URL, body: Data?, timeoutMs: Int) async throws -> HttpResponse {
        let b = state.with { $0.behaviours[server] }
        #if canImport(Security)
        if let cert = b.cert, let policy = policy {
            let expected = policy.expectedName(for: endpoints[server])
            if let kind = FakeTransport.check(cert: cert, expectedName: expected, policy: policy) {
                throw HttpDnsError.tls(kind, "fake server \(server)")
            }
        }
        #endif
        let c = URLComponents(url: url, resolvingAgainstBaseURL: false)
        var q: [String: String] = [:]
        for item in c?.queryItems ?? [] { q[item.name] = item.value ?? "" }
        state.with { $0.requests.append(Request(server: server, path: c?.path ?? "", query: q)) }
        if b.delayMs > 0 { try await Task.sleep(nanoseconds: UInt64(b.delayMs) * 1_000_000) }
        var data = b.body
        if b.anyHost, let host = q["host"] {
            data = Data(String(decoding: data, as: UTF8.self).replacingOccurrences(of: "api.example.com", with: host).utf8)
        }
        var status = b.status
        if let minT = b.minT, (Int64(q["t"] ?? "") ?? 0) < minT { status = 403 }
        if status != 200 { data = Data("{\"error\":\"internal\",\"message\":\"fake failure\"}".utf8) }
        return HttpResponse(status: status, body: data, epochHeader: nil, dateMs: b.dateMs)
    }

    #if canImport(Security)
    /// The same evaluation the URLSession delegate runs, on a committed test certificate.
    static func check(cert: String, expectedName: String, policy: TlsPolicy) -> TlsFailureKind? {
        guard let der = (try? TlsPolicy.parsePem(Fixtures.string("tls/\(cert).pem")))?.first,
              let c = SecCertificateCreateWithData(nil, der as CFData) else { return .handshake }
        var trust: SecTrust?
        guard SecTrustCreateWithCertificates(c, SecPolicyCreateSSL(true, nil), &trust) == errSecSuccess,
              let t = trust else { return .handshake }
        return ServerTrustEvaluator.evaluate(t, expectedName: expectedName, policy: policy)
    }
    #endif
}

/// Polls until `cond` holds (tests wait on state, not on fixed sleeps).
func waitUntil(_ what: String, timeout: TimeInterval = 10, _ cond: () -> Bool,
               file: StaticString = #filePath, line: UInt = #line) async {
    let end = Date().addingTimeInterval(timeout)
    while Date() < end {
        if cond() { return }
        try? await Task.sleep(nanoseconds: 10_000_000)
    }
    if !cond() { XCTFail("timed out waiting for \(what)", file: file, line: line) }
}

func testConfig(_ servers: [String], clock: FakeClock, sys: FakeSystemDns) -> HttpDnsConfig {
    var c = HttpDnsConfig(servers: servers)
    c.clock = clock
    c.systemDns = sys
    c.tickIntervalMs = 0
    c.trustedCertificatesPem = Fixtures.string("tls/ca.pem")
    c.ipStackDetector = FixedStack("A,AAAA")
    c.logger = { _, _, _ in }
    return c
}
