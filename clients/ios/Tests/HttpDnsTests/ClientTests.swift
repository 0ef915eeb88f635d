import Foundation
import XCTest
@testable import HttpDns

/// Client behaviour beyond the shared scenarios; mirrors the Android tests of the same names.
final class ClientTests: XCTestCase {
    private let api = "api.example.com"

    private func client(_ servers: Int = 1, _ change: (inout HttpDnsConfig) -> Void = { _ in })
        throws -> (HttpDnsClient, FakeTransport, FakeClock, FakeSystemDns) {
        let clock = FakeClock()
        let sys = FakeSystemDns()
        var cfg = testConfig((0..<servers).map { "127.0.0.1:\(8443 + $0)" }, clock: clock, sys: sys)
        change(&cfg)
        let t = try FakeTransport(servers: servers, config: cfg)
        return (try HttpDnsClient(config: cfg, transport: t), t, clock, sys)
    }

    func testNonBlockingColdStaleAndFreshPathsReturnAtOnce() async throws {
        let (c, t, clock, _) = try client()
        defer { c.close() }
        t.serve(0, fixture: "resolve_single.json", anyHost: true)
        t.set(0) { $0.delayMs = 1000 } // a call that waited on the server could not be fast
        _ = c.resolveNonBlocking("warmup.example.com")
        func timed(_ source: HostAnswer.Source) {
            let t0 = DispatchTime.now().uptimeNanoseconds
            let a = c.resolveNonBlocking(api)
            let us = (DispatchTime.now().uptimeNanoseconds - t0) / 1000
            XCTAssertEqual(a.source, source)
            XCTAssertLessThan(us, 10_000, "\(source) path took \(us) us")
        }
        timed(.none)
        await waitUntil("cached") { c.peek(api)?.source == .cache }
        timed(.cache)
        clock.advance(61_000)
        timed(.stale)
        await waitUntil("refreshed") { c.peek(api)?.source == .cache }
    }

    func testAsyncResolveFallsBackToSystemDnsWithinTheBudget() async throws {
        let (c, t, _, sys) = try client { $0.timeoutMs = 800; $0.systemDnsBudgetMs = 300 }
        defer { c.close() }
        sys.put("slow.example.com", ["192.0.2.9"])
        t.serve(0, fixture: "resolve_single.json", anyHost: true)
        t.set(0) { $0.delayMs = 3000 }
        let t0 = Date()
        let a = await c.resolve("slow.example.com")
        XCTAssertEqual(a.source, .system)
        XCTAssertLessThan(Date().timeIntervalSince(t0), 2.5)
    }

    func testCompletionHandlerVariant() async throws {
        let (c, t, _, _) = try client()
        defer { c.close() }
        t.serve(0, fixture: "resolve_single.json")
        let a = await withCheckedContinuation { cont in c.resolve(api) { cont.resume(returning: $0) } }
        XCTAssertEqual(a.source, .httpdns)
    }

    func testIpLiteralsAreNeverSent() async throws {
        let (c, t, _, sys) = try client()
        defer { c.close() }
        let v4 = await c.resolve("203.0.113.7") // XCTAssert's autoclosures cannot await
        XCTAssertEqual(v4.ips, ["203.0.113.7"])
        XCTAssertEqual(c.resolveNonBlocking("[2001:db8::7]").ipsv6, ["2001:db8::7"])
        XCTAssertTrue(t.requests.isEmpty)
        XCTAssertTrue(sys.lookups.isEmpty)
        XCTAssertTrue(IpLiteral.isLiteral("::1"))
        XCTAssertFalse(IpLiteral.isLiteral("256.1.1.1"))
        XCTAssertFalse(IpLiteral.isLiteral("api.example.com"))
    }

    func testAutoQueryTypeAsksOnlyForUsableFamilies() async throws {
        let (c, t, _, _) = try client { $0.ipStackDetector = FixedStack("A") }
        defer { c.close() }
        t.serve(0, fixture: "resolve_single.json")
        _ = await c.resolve(api)
        XCTAssertEqual(t.requests.last?.query["type"], "A")
        XCTAssertEqual(LocalInterfacesDetector.typeFor(v4: false, v6: true), "AAAA")
    }

    func testDeviceClockTenMinutesBehindStillGetsSignedAnswers() async throws {
        let (c, t, clock, _) = try client { $0.secret = "s3cret" }
        defer { c.close() }
        let serverNow = clock.nowMillis() + 600_000
        t.serve(0, fixture: "resolve_single.json")
        t.set(0) { b in
            b.dateMs = serverNow
            b.minT = serverNow / 1000
        }
        let a = await c.resolve(api)
        XCTAssertEqual(a.source, .httpdns, String(describing: c.lastError))
        XCTAssertEqual(t.resolveCount(0), 2) // one refused, one re-signed
        XCTAssertEqual(c.clockSkewMs, 600_000)
    }

    func testPersistentCacheSurvivesARestart() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent(UUID().uuidString)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let store = FileCacheStore(url: dir.appendingPathComponent("cache.json"))
        let (first, t, clock, sys) = try client { $0.cacheStore = store; $0.maxStaleMs = 600_000 }
        t.serve(0, fixture: "resolve_single.json")
        let fetched = await first.resolve(api)
        XCTAssertEqual(fetched.source, .httpdns)
        first.close()

        var cfg = testConfig(["127.0.0.1:8443"], clock: clock, sys: sys)
        cfg.cacheStore = store
        cfg.maxStaleMs = 600_000
        let t2 = try FakeTransport(servers: 1, config: cfg)
        let second = try HttpDnsClient(config: cfg, transport: t2)
        defer { second.close() }
        XCTAssertEqual(second.resolveNonBlocking(api).source, .cache)
        XCTAssertTrue(t2.requests.isEmpty)
    }

    func testCloseInvalidatesTheSession() throws {
        let (c, t, _, _) = try client()
        c.close()
        XCTAssertTrue(t.invalidated)
    }

    func testBadSettingsAreRejected() {
        XCTAssertThrowsError(try HttpDnsClient(config: HttpDnsConfig(servers: ["ftp://203.0.113.53"])))
        var pin = HttpDnsConfig(servers: ["203.0.113.53"])
        pin.pinSha256 = ["not-a-pin"]
        XCTAssertThrowsError(try HttpDnsClient(config: pin))
        var name = HttpDnsConfig(servers: ["203.0.113.53"])
        name.tlsServerName = "203.0.113.53"
        XCTAssertThrowsError(try HttpDnsClient(config: name))
    }

    func testServerEntries() throws {
        XCTAssertEqual(try ServerEndpoint.parse("203.0.113.53").baseUrl, "https://203.0.113.53:443")
        XCTAssertEqual(try ServerEndpoint.parse("https://203.0.113.53:8443/").baseUrl, "https://203.0.113.53:8443")
        XCTAssertFalse(try ServerEndpoint.parse("http://203.0.113.53").https)
    }

    #if canImport(Security)
    func testSpkiPinsMatchTheSharedVectors() throws {
        let pins = try XCTUnwrap(JSONSerialization.jsonObject(with: Fixtures.data("tls/pins.json")) as? [String: String])
        for (file, pin) in pins {
            let der = try XCTUnwrap(TlsPolicy.parsePem(Fixtures.string("tls/\(file)")).first)
            let cert = try XCTUnwrap(SecCertificateCreateWithData(nil, der as CFData))
            XCTAssertEqual(ServerTrustEvaluator.spkiSha256(cert), pin, file)
        }
    }

    func testUntrustedAndPinnedCertificates() throws {
        var cfg = HttpDnsConfig(servers: ["127.0.0.1:8443"])
        cfg.trustedCertificatesPem = Fixtures.string("tls/ca.pem")
        let policy = try TlsPolicy(config: cfg)
        XCTAssertNil(FakeTransport.check(cert: "server", expectedName: "127.0.0.1", policy: policy))
        XCTAssertEqual(FakeTransport.check(cert: "untrusted", expectedName: "127.0.0.1", policy: policy), .untrusted)
        XCTAssertEqual(FakeTransport.check(cert: "name-only", expectedName: "127.0.0.1", policy: policy), .nameMismatch)
        cfg.pinSha256 = ["AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="]
        XCTAssertEqual(FakeTransport.check(cert: "server", expectedName: "127.0.0.1", policy: try TlsPolicy(config: cfg)), .pinMismatch)
    }
    #endif
}
