import Foundation
import XCTest
@testable import HttpDns

final class ParsingTests: XCTestCase {
    func testParsesSingleFixture() throws {
        let r = try ResolveResponse.parse(Fixtures.data("resolve_single.json"))
        XCTAssertEqual(r.clientIp, "203.0.113.77")
        XCTAssertEqual(r.geo, Geo(country: "CN", province: "CN-GD", city: "Guangzhou", carrier: "telecom", asn: 4134))
        XCTAssertEqual(r.epoch, 1_764_089_000_123)
        XCTAssertEqual(r.answers.count, 1)
        let a = r.answers[0]
        XCTAssertEqual(a.host, "api.example.com")
        XCTAssertEqual(a.zone, "gz-telecom")
        XCTAssertFalse(a.failover)
        XCTAssertEqual(a.ttl, 60)
        XCTAssertEqual(a.ips, ["203.0.113.10", "203.0.113.11"])
        XCTAssertEqual(a.ipsv6, ["2001:db8:10::1"])
        XCTAssertEqual(a.fallback.map { $0.zone }, ["sh-bgp", "bj-unicom"])
        XCTAssertEqual(a.fallback[0].ips, ["198.51.100.10"])
        XCTAssertNil(a.error)
        XCTAssertEqual(a.source, HostAnswer.Source.httpdns)
    }

    func testParsesUnknownHostSlot() throws {
        let r = try ResolveResponse.parse(Fixtures.data("resolve_batch_unknown.json"))
        XCTAssertEqual(r.answers.count, 3)
        XCTAssertEqual(r.answers[1].host, "nope.example.com")
        XCTAssertEqual(r.answers[1].error, "unknown_host")
        XCTAssertTrue(r.answers[1].isEmpty)
        XCTAssertEqual(r.answers[2].ttl, 300)
    }

    func testParsesFailoverFixture() throws {
        let a = try ResolveResponse.parse(Fixtures.data("resolve_failover.json")).answers[0]
        XCTAssertTrue(a.failover)
        XCTAssertEqual(a.zone, "sh-bgp")
        XCTAssertEqual(a.fallback.first?.zone, "bj-unicom")
    }

    func testUnknownGeoFieldsAreNil() throws {
        let json = "{\"client_ip\":\"203.0.113.1\",\"geo\":{\"country\":null,\"asn\":null},\"epoch\":5,\"answers\":[]}"
        let r = try ResolveResponse.parse(Data(json.utf8))
        XCTAssertNil(r.geo?.country)
        XCTAssertNil(r.geo?.province)
        XCTAssertNil(r.geo?.asn)
        XCTAssertEqual(r.epoch, 5)
    }

    func testRejectsErrorBodyAndGarbage() {
        XCTAssertThrowsError(try ResolveResponse.parse(Fixtures.data("error_bad_request.json")))
        XCTAssertThrowsError(try ResolveResponse.parse(Data("<html>".utf8)))
    }

    /// The SDK's POST /report body has exactly the shape of report_request.json.
    func testReportBodyMatchesFixture() throws {
        let fixture = try JSONSerialization.jsonObject(with: Fixtures.data("report_request.json")) as! [String: Any]
        let items = fixture["reports"] as! [[String: Any]]
        let reports = items.map {
            ReportBuffer.Report(ip: $0["ip"] as! String, rtt_ms: ($0["rtt_ms"] as! NSNumber).int64Value,
                                ok: ($0["ok"] as! NSNumber).boolValue)
        }
        let ours = try JSONSerialization.jsonObject(
            with: ReportBuffer.json(host: fixture["host"] as! String, reports: reports)) as! [String: Any]
        XCTAssertEqual(Set(ours.keys), Set(fixture.keys))
        XCTAssertEqual(ours["host"] as? String, "api.example.com")
        let ourItems = ours["reports"] as! [[String: Any]]
        XCTAssertEqual(ourItems.count, items.count)
        for (a, b) in zip(items, ourItems) {
            XCTAssertEqual(Set(a.keys), Set(b.keys))
            XCTAssertEqual(a["ip"] as? String, b["ip"] as? String)
            XCTAssertEqual((a["rtt_ms"] as? NSNumber)?.int64Value, (b["rtt_ms"] as? NSNumber)?.int64Value)
            XCTAssertEqual((a["ok"] as? NSNumber)?.boolValue, (b["ok"] as? NSNumber)?.boolValue)
        }
    }
}
