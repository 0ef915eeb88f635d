import Foundation
import XCTest
@testable import HttpDns

/// Mirrors the Android tests (CacheTest, ServerRotationTest, EpochTest, FallbackTest, SystemDnsTest,
/// ReportTest, SigningTest, ConcurrencyTest) against a fake transport instead of a socket server.
final class ClientTests: XCTestCase {
    let api = "api.example.com"
    let good = "127.0.0.1:8053"
    let dead = "127.0.0.1:1"
    var clock: FakeClock!
    var sys: FakeSystemDns!

    override func setUp() {
        super.setUp()
        clock = FakeClock()
        sys = FakeSystemDns()
        sys.put(api, ["192.0.2.1", "2001:db8:ffff::1"])
        sys.put("nope.example.com", ["192.0.2.2"])
        sys.put("a.internal.example.com", ["10.0.0.1"])
    }

    private func client(_ t: FakeTransport, servers: [String]? = nil,
                        _ tweak: (inout HttpDnsConfig) -> Void = { _ in }) -> HttpDnsClient {
        var c = testConfig(servers ?? [good], clock: clock, sys: sys)
        tweak(&c)
        return HttpDnsClient(config: c, transport: t)
    }

    /// Serves `fixture` from `good`; `dead` fails like a refused connection.
    private func transport(_ fixture: String = "resolve_single.json") -> FakeTransport {
        let body = Fixtures.data(fixture)
        let dead = self.dead
        return FakeTransport { req in
            if req.server == dead { throw HttpDnsError.transport("connection refused") }
            if req.path == "/report" { return HttpResponse(status: 200, body: Data("{\"accepted\": 1}".utf8)) }
            return HttpResponse(status: 200, body: body)
        }
    }

    // MARK: cache

    func testCacheHitThenExpiry() {
        let t = transport()
        let c = client(t)
        let first = c.resolve(api)
        XCTAssertEqual(first.source, HostAnswer.Source.httpdns)
        XCTAssertEqual(first.ips, ["203.0.113.10", "203.0.113.11"])
        clock.advance(30_000)
        let hit = c.resolve("API.Example.com.")
        XCTAssertEqual(hit.source, HostAnswer.Source.cache)
        XCTAssertEqual(t.resolves.count, 1)
        clock.advance(31_000)
        XCTAssertEqual(c.resolve(api).source, HostAnswer.Source.httpdns)
        XCTAssertEqual(t.resolves.count, 2)
        XCTAssertEqual(t.resolves.last?.query["type"], "A,AAAA")
        XCTAssertEqual(t.resolves.last?.query["host"], api)
    }

    func testStaleOnFailureWithinMaxStaleness() {
        let t = transport()
        let c = client(t) { $0.maxStaleMs = 10_000 }
        _ = c.resolve(api)
        t.handler = { _ in HttpResponse(status: 500, body: Data("{\"error\":\"internal\"}".utf8)) }
        clock.advance(65_000)
        let stale = c.resolve(api)
        XCTAssertEqual(stale.source, HostAnswer.Source.stale)
        XCTAssertEqual(stale.zone, "gz-telecom")
        XCTAssertEqual(t.resolves.count, 2)
        XCTAssertTrue(sys.lookups.isEmpty)
        clock.advance(6_000)
        let fromSystem = c.resolve(api)
        XCTAssertEqual(fromSystem.source, HostAnswer.Source.system)
        XCTAssertEqual(fromSystem.ips, ["192.0.2.1"])
        XCTAssertEqual(fromSystem.ipsv6, ["2001:db8:ffff::1"])
    }

    func testBackgroundRefreshAtThreeQuartersOfTtl() {
        let t = transport()
        let c = client(t)
        _ = c.resolve(api)
        clock.advance(44_000) // 73 %
        XCTAssertEqual(c.resolve(api).source, HostAnswer.Source.cache)
        Thread.sleep(forTimeInterval: 0.15)
        XCTAssertEqual(t.resolves.count, 1)
        clock.advance(2_000) // 77 %
        XCTAssertEqual(c.resolve(api).source, HostAnswer.Source.cache)
        let refreshedExpiry = clock.nowMillis() + 60_000
        waitUntil("refreshed entry") { c.expiresAt(api) == refreshedExpiry }
        XCTAssertEqual(t.resolves.count, 2)
        clock.advance(20_000)
        XCTAssertEqual(c.resolve(api).source, HostAnswer.Source.cache)
        XCTAssertEqual(t.resolves.count, 2)
    }

    func testTickRefreshesOnlyUsedEntries() {
        let t = transport()
        let c = client(t)
        _ = c.resolve(api)
        clock.advance(46_000)
        XCTAssertEqual(c.refreshExpiring(), 0)
        clock.advance(-46_000)
        _ = c.resolve(api)
        clock.advance(46_000)
        XCTAssertEqual(c.refreshExpiring(), 1)
        waitUntil("tick refresh") { t.resolves.count == 2 }
    }

    func testPreResolveAndNetworkChange() {
        let t = transport("resolve_batch_unknown.json")
        let c = client(t) { $0.preResolveHosts = [self.api, "img.example.com"] }
        waitUntil("pre-resolve") { c.peek(self.api) != nil && c.peek("img.example.com") != nil }
        XCTAssertEqual(t.resolves.count, 1)
        XCTAssertEqual(t.resolves.last?.query["host"], "api.example.com,img.example.com")
        XCTAssertEqual(c.resolve(api).source, HostAnswer.Source.cache)
        c.onNetworkChanged()
        waitUntil("pre-resolve again") { t.resolves.count == 2 && c.peek(self.api) != nil }
        c.clearCache()
        XCTAssertNil(c.peek(api))
    }

    // MARK: servers

    func testDeadFirstServerRotatesAndIsRemembered() {
        let t = transport()
        let c = client(t, servers: [dead, good])
        var a: HostAnswer!
        let ms = elapsedMs { a = c.resolve(api) }
        XCTAssertEqual(a.source, HostAnswer.Source.httpdns)
        XCTAssertLessThan(ms, 3000)
        XCTAssertEqual(c.preferredServer, good)
        c.clearCache()
        _ = c.resolve(api)
        XCTAssertEqual(t.resolves.map { $0.server }, [dead, good, good])
    }

    func testBlackHoleServerCostsOneAttemptBudget() {
        let body = Fixtures.data("resolve_single.json")
        let dead = self.dead
        let t = FakeTransport { req in
            if req.server == dead {
                Thread.sleep(forTimeInterval: Double(req.timeoutMs) / 1000)
                throw HttpDnsError.timeout
            }
            return HttpResponse(status: 200, body: body)
        }
        let c = client(t, servers: [dead, good]) {
            $0.connectTimeoutMs = 100
            $0.readTimeoutMs = 200
            $0.timeoutMs = 3000
        }
        let first = elapsedMs { XCTAssertEqual(c.resolve(api).source, HostAnswer.Source.httpdns) }
        XCTAssertGreaterThanOrEqual(first, 250)
        XCTAssertLessThan(first, 3000)
        c.clearCache()
        let second = elapsedMs { XCTAssertEqual(c.resolve(api).source, HostAnswer.Source.httpdns) }
        XCTAssertLessThan(second, 250)
    }

    func testSlowServerNeverBlocksCallerPastTimeout() {
        let body = Fixtures.data("resolve_single.json")
        let t = FakeTransport { _ in
            Thread.sleep(forTimeInterval: 2.0)
            return HttpResponse(status: 200, body: body)
        }
        let c = client(t) {
            $0.timeoutMs = 800
            $0.systemDnsBudgetMs = 200
            $0.readTimeoutMs = 3000
        }
        var a: HostAnswer!
        let ms = elapsedMs { a = c.resolve(api) }
        XCTAssertLessThan(ms, 1400) // timeoutMs + scheduling slack
        XCTAssertEqual(a.source, HostAnswer.Source.system)
        waitUntil("late answer cached", timeout: 5) { c.peek(self.api) != nil }
    }

    func testClientErrorIsNotRetried() {
        let bad = "127.0.0.1:2"
        let body = Fixtures.data("resolve_single.json")
        let t = FakeTransport { req in
            req.server == bad ? HttpResponse(status: 400, body: Fixtures.data("error_bad_request.json"))
                : HttpResponse(status: 200, body: body)
        }
        let c = client(t, servers: [bad, good])
        XCTAssertEqual(c.resolve(api).source, HostAnswer.Source.system)
        XCTAssertEqual(t.resolves.map { $0.server }, [bad])
        if case .http(let status, _)? = c.lastError as? HttpDnsError {
            XCTAssertEqual(status, 400)
        } else {
            XCTFail("expected an HTTP error, got \(String(describing: c.lastError))")
        }
    }

    // MARK: epoch

    private func epochTransport(body bodyEpoch: @escaping () -> Int64, header: @escaping () -> Int64?) -> FakeTransport {
        let template = Fixtures.string("resolve_single.json")
        return FakeTransport { req in
            let host = req.query["host"] ?? ""
            let json = Fixtures.withEpoch(template.replacingOccurrences(of: "api.example.com", with: host), bodyEpoch())
            return HttpResponse(status: 200, body: Data(json.utf8), epochHeader: header().map { String($0) })
        }
    }

    func testNewerBodyEpochDropsAllCachedHosts() {
        var epoch: Int64 = 100
        let c = client(epochTransport(body: { epoch }, header: { nil }))
        _ = c.resolve("a.example.com")
        _ = c.resolve("b.example.com")
        XCTAssertEqual(c.currentEpoch, 100)
        epoch = 200
        _ = c.resolve("c.example.com")
        XCTAssertEqual(c.currentEpoch, 200)
        XCTAssertNil(c.peek("a.example.com"))
        XCTAssertNil(c.peek("b.example.com"))
        XCTAssertEqual(c.peek("c.example.com")?.epoch, 200)
    }

    func testNewerHeaderEpochDropsAllCachedHosts() {
        var header: Int64? = nil
        let c = client(epochTransport(body: { 100 }, header: { header }))
        _ = c.resolve("a.example.com")
        header = 300
        _ = c.resolve("c.example.com")
        XCTAssertEqual(c.currentEpoch, 300)
        XCTAssertNil(c.peek("a.example.com"))
        XCTAssertNotNil(c.peek("c.example.com"))
    }

    func testOlderEpochKeepsCache() {
        var epoch: Int64 = 100
        let c = client(epochTransport(body: { epoch }, header: { nil }))
        _ = c.resolve("a.example.com")
        epoch = 50
        _ = c.resolve("c.example.com")
        XCTAssertEqual(c.currentEpoch, 100)
        XCTAssertNotNil(c.peek("a.example.com"))
    }

    // MARK: fallback tiers

    func testNextAddresses() {
        let t = transport()
        let c = client(t)
        XCTAssertEqual(c.nextAddresses(host: api, failedIp: "203.0.113.10"), [])
        _ = c.resolve(api)
        XCTAssertEqual(c.nextAddresses(host: api, failedIp: "203.0.113.10"),
                       ["203.0.113.11", "2001:db8:10::1", "198.51.100.10", "2001:db8:20::1",
                        "198.51.100.20", "198.51.100.21"])
        XCTAssertEqual(c.nextAddresses(host: "API.EXAMPLE.COM", failedIp: "2001:db8:20::1"),
                       ["198.51.100.20", "198.51.100.21"])
        XCTAssertEqual(c.nextAddresses(host: api, failedIp: "198.51.100.21"), [])
        XCTAssertEqual(c.nextAddresses(host: api, failedIp: "192.0.2.99").count, 7)
        XCTAssertEqual(t.resolves.count, 1)
    }

    func testFailoverAnswer() {
        let c = client(transport("resolve_failover.json"))
        let a = c.resolve(api)
        XCTAssertTrue(a.failover)
        XCTAssertEqual(c.nextAddresses(host: api, failedIp: "198.51.100.10"),
                       ["2001:db8:20::1", "198.51.100.20", "2001:db8:30::1"])
        XCTAssertEqual(c.lastResponse?.geo?.carrier, "mobile")
    }

    // MARK: system DNS

    func testAllServersDeadUsesSystemDns() {
        let c = client(transport(), servers: [dead])
        let a = c.resolve(api)
        XCTAssertEqual(a.source, HostAnswer.Source.system)
        XCTAssertEqual(a.ips, ["192.0.2.1"])
        XCTAssertNil(c.peek(api))
    }

    func testEmptyAnswerUsesSystemDns() {
        let json = Fixtures.string("resolve_single.json")
            .replacingOccurrences(of: "\"ips\": [\"203.0.113.10\", \"203.0.113.11\"]", with: "\"ips\": []")
            .replacingOccurrences(of: "\"ipsv6\": [\"2001:db8:10::1\"]", with: "\"ipsv6\": []")
        let t = FakeTransport { _ in HttpResponse(status: 200, body: Data(json.utf8)) }
        let c = client(t)
        XCTAssertEqual(c.resolve(api).source, HostAnswer.Source.system)
        XCTAssertEqual(t.resolves.count, 1)
    }

    func testFilteredHostsNeverQueryHttpDns() {
        let t = transport()
        let c = client(t) { $0.systemDnsHosts(["*.internal.example.com", "legacy.example.com"]) }
        XCTAssertEqual(c.resolve("a.internal.example.com").source, HostAnswer.Source.system)
        XCTAssertEqual(c.resolve(api).source, HostAnswer.Source.httpdns)
        XCTAssertEqual(t.resolves.count, 1)
    }

    func testUnknownHostSlotInBatch() {
        let t = transport("resolve_batch_unknown.json")
        let c = client(t)
        let m = c.resolveBatch([api, "nope.example.com", "img.example.com"])
        XCTAssertEqual(t.resolves.count, 1)
        XCTAssertEqual(t.resolves.last?.query["host"], "api.example.com,nope.example.com,img.example.com")
        XCTAssertEqual(m[api]?.source, HostAnswer.Source.httpdns)
        XCTAssertEqual(m["img.example.com"]?.ips, ["203.0.113.30"])
        XCTAssertEqual(m["nope.example.com"]?.source, HostAnswer.Source.system)
        XCTAssertEqual(m["nope.example.com"]?.ips, ["192.0.2.2"])
        sys.remove("nope.example.com")
        let again = c.resolveBatch(["img.example.com", "nope.example.com"])
        XCTAssertEqual(again["img.example.com"]?.source, HostAnswer.Source.cache)
        XCTAssertEqual(t.resolves.last?.query["host"], "nope.example.com")
        XCTAssertEqual(again["nope.example.com"]?.source, HostAnswer.Source.none)
        XCTAssertEqual(again["nope.example.com"]?.error, "unknown_host")
    }

    func testSlowSystemDnsNeverBlocksPastTimeout() {
        sys.delayMs = 5000
        let c = client(transport(), servers: [dead]) {
            $0.timeoutMs = 700
            $0.systemDnsBudgetMs = 300
        }
        var m: [String: HostAnswer] = [:]
        let ms = elapsedMs { m = c.resolveBatch([api, "legacy.example.com"]) }
        XCTAssertLessThan(ms, 1300)
        XCTAssertEqual(m.count, 2)
        for a in m.values { XCTAssertEqual(a.source, HostAnswer.Source.none) }
    }

    // MARK: reports

    func testReportsBatchedAtMostOncePerInterval() throws {
        let t = transport()
        let c = client(t) { $0.reportIntervalMs = 30_000 }
        c.reportConnect(host: api, ip: "203.0.113.10", rttMs: 23, ok: true)
        c.reportConnect(host: api, ip: "203.0.113.11", rttMs: 800, ok: false)
        c.reportConnect(host: "img.example.com", ip: "203.0.113.30", rttMs: 40, ok: true)
        XCTAssertFalse(c.flushReportsIfDue())
        XCTAssertEqual(c.pendingReports, 3)
        clock.advance(30_000)
        c.reportConnect(host: "API.example.com", ip: "2001:db8:10::1", rttMs: 31, ok: true)
        waitUntil("two report POSTs") { t.reports.count == 2 }
        let body = try JSONSerialization.jsonObject(with: t.reports[0].body!) as! [String: Any]
        XCTAssertEqual(body["host"] as? String, api)
        XCTAssertEqual((body["reports"] as! [[String: Any]]).count, 3)
        clock.advance(29_000)
        c.reportConnect(host: api, ip: "203.0.113.10", rttMs: 25, ok: true)
        XCTAssertFalse(c.flushReportsIfDue())
        clock.advance(1_000)
        c.tick()
        waitUntil("third report POST") { t.reports.count == 3 }
    }

    func testProbeReportsConnectTimes() throws {
        let t = transport()
        let c = client(t) { $0.prober = FakeProber(reachable: ["203.0.113.10"]) }
        _ = c.resolve(api)
        let done = expectation(description: "probe")
        c.probe(host: api, port: 443) { done.fulfill() }
        wait(for: [done], timeout: 3)
        XCTAssertEqual(c.pendingReports, 3)
        XCTAssertTrue(c.flushReports())
        waitUntil("report POST") { t.reports.count == 1 }
        let body = try JSONSerialization.jsonObject(with: t.reports[0].body!) as! [String: Any]
        let items = body["reports"] as! [[String: Any]]
        XCTAssertEqual(items.map { $0["ip"] as? String }, ["203.0.113.10", "203.0.113.11", "2001:db8:10::1"])
        XCTAssertEqual(items.map { ($0["ok"] as? NSNumber)?.boolValue }, [true, false, false])
    }

    // MARK: signing

    func testSignsBatchWithSecret() {
        let t = transport("resolve_batch_unknown.json")
        let c = client(t) { $0.secret = "s3cret" }
        _ = c.resolveBatch([api, "img.example.com"])
        let q = t.resolves.last!.query
        XCTAssertEqual(q["host"], "api.example.com,img.example.com")
        XCTAssertEqual(q["t"], "1764089300")
        XCTAssertEqual(q["sign"], "8759d325b0b48a933b835b3863c989943297ab75279d85e871bc4f5e675dcc29")
    }

    func testTokenProvider() {
        let t = transport()
        var calls: [String] = []
        let c = client(t) {
            $0.signValiditySeconds = 60
            $0.tokenProvider = { host, expiry in
                calls.append("\(host)|\(expiry)")
                return "abc123"
            }
        }
        _ = c.resolve(api)
        XCTAssertEqual(calls, ["api.example.com|1764089060"])
        XCTAssertEqual(t.resolves.last?.query["sign"], "abc123")
        XCTAssertEqual(t.resolves.last?.query["t"], "1764089060")
    }

    func testUnsignedWithoutSecret() {
        let t = transport()
        let c = client(t) { $0.clientIp = "198.51.100.200" }
        _ = c.resolve(api)
        let q = t.resolves.last!.query
        XCTAssertNil(q["t"])
        XCTAssertNil(q["sign"])
        XCTAssertEqual(q["ip"], "198.51.100.200")
    }

    // MARK: concurrency

    func testConcurrentCallersShareOneRequest() {
        let body = Fixtures.data("resolve_single.json")
        let t = FakeTransport { _ in
            Thread.sleep(forTimeInterval: 0.3)
            return HttpResponse(status: 200, body: body)
        }
        let c = client(t)
        let lock = NSLock()
        var zones: [String?] = []
        DispatchQueue.concurrentPerform(iterations: 16) { _ in
            let a = c.resolve(self.api)
            lock.lock()
            zones.append(a.zone)
            lock.unlock()
        }
        XCTAssertEqual(zones.count, 16)
        XCTAssertTrue(zones.allSatisfy { $0 == "gz-telecom" })
        XCTAssertEqual(t.resolves.count, 1)
    }
}
