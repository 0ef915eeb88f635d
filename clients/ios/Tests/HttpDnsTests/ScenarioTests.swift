import Foundation
import XCTest
@testable import HttpDns

/// Replays clients/testdata/scenarios/*.json, the same files the Android `ScenarioTest` replays, so
/// the two SDKs cannot drift. Format: clients/testdata/README.md.
final class ScenarioTests: XCTestCase {
    func testCache() async throws { try await replay("cache.json") }
    func testStale() async throws { try await replay("stale.json") }
    func testEpoch() async throws { try await replay("epoch.json") }
    func testBackoff() async throws { try await replay("backoff.json") }
    func testNegativeCache() async throws { try await replay("negative_cache.json") }

    func testTlsNameMismatch() async throws {
        #if canImport(Security)
        try await replay("tls_name_mismatch.json")
        #else
        throw XCTSkip("certificate checks need the Security framework")
        #endif
    }

    func testEveryScenarioFileIsReplayed() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: Fixtures.dir.appendingPathComponent("scenarios").path)
        XCTAssertEqual(Set(files.filter { $0.hasSuffix(".json") }),
                       ["cache.json", "stale.json", "epoch.json", "backoff.json", "negative_cache.json", "tls_name_mismatch.json"])
    }

    private func replay(_ name: String) async throws {
        let sc = try XCTUnwrap(JSONSerialization.jsonObject(with: Fixtures.data("scenarios/\(name)")) as? [String: Any])
        let clock = FakeClock()
        let sys = FakeSystemDns()
        for (h, ips) in sc["system_dns"] as? [String: [String]] ?? [:] { sys.put(h, ips) }
        let specs = sc["servers"] as? [[String: Any]] ?? []
        let servers = specs.indices.map { "127.0.0.1:\(8443 + $0)" }
        var cfg = testConfig(servers, clock: clock, sys: sys)
        let c = sc["config"] as? [String: Any] ?? [:]
        if let v = c["max_stale_ms"] as? Int { cfg.maxStaleMs = Int64(v) }
        if let v = c["negative_ttl_ms"] as? Int { cfg.negativeTtlMs = Int64(v) }
        if let v = c["tls_server_name"] as? String { cfg.tlsServerName = v }
        if let b = c["backoff_base_ms"] as? Int, let m = c["backoff_max_ms"] as? Int {
            cfg.backoffBaseMs = Int64(b)
            cfg.backoffMaxMs = Int64(m)
        }
        let transport = try FakeTransport(servers: specs.count, config: cfg)
        for (i, spec) in specs.enumerated() { transport.set(i) { $0.cert = spec["cert"] as? String } }
        let client = try HttpDnsClient(config: cfg, transport: transport)
        defer { client.close() }

        for (i, st) in (sc["steps"] as? [[String: Any]] ?? []).enumerated() {
            let at = "\(name) step \(i)"
            if let s = st["serve"] as? [String: Any], let server = s["server"] as? Int {
                transport.set(server) { b in
                    b.status = s["status"] as? Int ?? 200
                    b.anyHost = s["any_host"] as? Bool ?? false
                    if let f = s["fixture"] as? String {
                        var body = Fixtures.string(f)
                        if let e = s["epoch"] as? Int { body = Fixtures.withEpoch(body, Int64(e)) }
                        b.body = Data(body.utf8)
                    }
                }
            } else if let ms = st["advance_ms"] as? Int {
                clock.advance(Int64(ms))
            } else if let h = st["resolve"] as? String {
                check(at, st["expect"], await client.resolve(h), client, transport)
            } else if let h = st["resolve_non_blocking"] as? String {
                check(at, st["expect"], client.resolveNonBlocking(h), client, transport)
            } else if let h = st["peek"] as? String {
                check(at, st["expect"], client.peek(h), client, transport)
            } else if let h = st["await_peek"] as? String {
                let want = (st["expect"] as? [String: Any])?["source"] as? String
                await waitUntil("\(at): peek \(h)") { client.peek(h)?.source.rawValue.uppercased() == want }
            } else if let want = st["await_requests"] as? [Int] {
                await waitUntil("\(at): requests \(want)") { want.indices.map(transport.resolveCount) == want }
            } else if let i = st["await_preferred_server"] as? Int {
                await waitUntil("\(at): preferred server \(i)") { client.preferredServer == servers[i] }
            } else {
                XCTFail("\(at): unknown step \(st)")
            }
        }
    }

    private func check(_ at: String, _ expect: Any?, _ a: HostAnswer?, _ client: HttpDnsClient, _ t: FakeTransport) {
        guard let e = expect as? [String: Any] else { return }
        let ctx = "\(at) (\(String(describing: a)), last error \(String(describing: client.lastError)))"
        if e.keys.contains("source") {
            if let s = e["source"] as? String {
                XCTAssertEqual(a?.source.rawValue.uppercased(), s, ctx)
            } else {
                XCTAssertNil(a, ctx)
            }
        }
        if let ips = e["ips"] as? [String] { XCTAssertEqual(a?.ips, ips, ctx) }
        if let err = e["error"] as? String { XCTAssertEqual(a?.error, err, ctx) }
        if let epoch = e["epoch"] as? Int { XCTAssertEqual(client.currentEpoch, Int64(epoch), ctx) }
        if let reqs = e["requests"] as? [Int] { XCTAssertEqual(reqs.indices.map(t.resolveCount), reqs, ctx) }
        if let kind = e["error_kind"] as? String {
            guard case let HttpDnsError.tls(k, _)? = client.lastError as? HttpDnsError else {
                return XCTFail("\(ctx): expected a TLS error")
            }
            XCTAssertEqual(k.rawValue, kind, ctx)
        }
    }
}
