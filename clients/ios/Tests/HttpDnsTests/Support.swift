import Foundation
import XCTest
@testable import HttpDns

/// Shared fixtures from clients/testdata (the same files the Android tests load).
enum Fixtures {
    static let dir: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent() // HttpDnsTests
        .deletingLastPathComponent() // Tests
        .deletingLastPathComponent() // ios
        .deletingLastPathComponent() // clients
        .appendingPathComponent("testdata")

    static func data(_ name: String) -> Data {
        return try! Data(contentsOf: dir.appendingPathComponent(name))
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
    private let lock = NSLock()
    private var now: Int64 = 1_764_089_000_000

    func nowMillis() -> Int64 {
        lock.lock()
        defer { lock.unlock() }
        return now
    }

    func advance(_ ms: Int64) {
        lock.lock()
        now += ms
        lock.unlock()
    }
}

final class FakeSystemDns: SystemDns {
    private let lock = NSLock()
    private var answers: [String: [String]] = [:]
    private(set) var lookups: [String] = []
    var delayMs = 0

    func put(_ host: String, _ ips: [String]) {
        lock.lock()
        answers[host] = ips
        lock.unlock()
    }

    func remove(_ host: String) {
        lock.lock()
        answers[host] = nil
        lock.unlock()
    }

    func lookup(_ host: String) throws -> [String] {
        lock.lock()
        lookups.append(host)
        let a = answers[host]
        lock.unlock()
        if delayMs > 0 { Thread.sleep(forTimeInterval: Double(delayMs) / 1000) }
        guard let ips = a else { throw HttpDnsError.transport("unknown host \(host)") }
        return ips
    }
}

final class FakeProber: TcpProber {
    let reachable: Set<String>
    init(reachable: Set<String>) { self.reachable = reachable }
    func probe(ip: String, port: Int, timeoutMs: Int) -> Bool { return reachable.contains(ip) }
}

/// A fake HTTPDNS server behind the transport protocol: records requests, answers through `handler`.
final class FakeTransport: HttpTransport {
    struct Request {
        let server: String
        let path: String
        let query: [String: String]
        let body: Data?
        let timeoutMs: Int
    }

    private let lock = NSLock()
    private var recorded: [Request] = []
    private var handlerValue: (Request) throws -> HttpResponse

    init(_ handler: @escaping (Request) throws -> HttpResponse) {
        handlerValue = handler
    }

    static func serving(_ fixture: String, epochHeader: String? = nil) -> FakeTransport {
        let body = Fixtures.data(fixture)
        return FakeTransport { req in
            req.path == "/report" ? HttpResponse(status: 200, body: Data("{\"accepted\": 1}".utf8))
                : HttpResponse(status: 200, body: body, epochHeader: epochHeader)
        }
    }

    var handler: (Request) throws -> HttpResponse {
        get { lock.lock(); defer { lock.unlock() }; return handlerValue }
        set { lock.lock(); handlerValue = newValue; lock.unlock() }
    }

    var requests: [Request] {
        lock.lock()
        defer { lock.unlock() }
        return recorded
    }

    var resolves: [Request] { return requests.filter { $0.path == "/resolve" } }
    var reports: [Request] { return requests.filter { $0.path == "/report" } }

    func exchange(method: String, url: URL, body: Data?, timeoutMs: Int) throws -> HttpResponse {
        let c = URLComponents(url: url, resolvingAgainstBaseURL: false)!
        var q: [String: String] = [:]
        for item in c.queryItems ?? [] { q[item.name] = item.value ?? "" }
        let req = Request(server: "\(c.host ?? ""):\(c.port ?? 0)", path: c.path, query: q, body: body,
                          timeoutMs: timeoutMs)
        lock.lock()
        recorded.append(req)
        let h = handlerValue
        lock.unlock()
        return try h(req)
    }
}

func waitUntil(_ what: String, timeout: TimeInterval = 3, _ cond: () -> Bool,
               file: StaticString = #filePath, line: UInt = #line) {
    let end = Date().addingTimeInterval(timeout)
    while Date() < end {
        if cond() { return }
        Thread.sleep(forTimeInterval: 0.01)
    }
    if !cond() { XCTFail("timed out waiting for \(what)", file: file, line: line) }
}

func elapsedMs(_ body: () -> Void) -> Int {
    let t0 = DispatchTime.now().uptimeNanoseconds
    body()
    return Int((DispatchTime.now().uptimeNanoseconds - t0) / 1_000_000)
}

func testConfig(_ servers: [String], clock: FakeClock, sys: FakeSystemDns) -> HttpDnsConfig {
    var c = HttpDnsConfig(servers: servers)
    c.clock = clock
    c.systemDns = sys
    c.tickIntervalMs = 0
    return c
}
