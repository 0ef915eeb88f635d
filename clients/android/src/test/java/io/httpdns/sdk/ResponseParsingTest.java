package io.httpdns.sdk;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertTrue;

import java.util.Arrays;
import java.util.Iterator;
import org.json.JSONArray;
import org.json.JSONObject;
import org.junit.Test;

public class ResponseParsingTest {
    @Test
    public void parsesSingleFixture() throws Exception {
        ResolveResponse r = ResolveResponse.parse(TestSupport.fixture("resolve_single.json"));
        assertEquals("203.0.113.77", r.clientIp);
        assertEquals("CN", r.geo.country);
        assertEquals("CN-GD", r.geo.province);
        assertEquals("Guangzhou", r.geo.city);
        assertEquals("telecom", r.geo.carrier);
        assertEquals(Long.valueOf(4134), r.geo.asn);
        assertEquals(1764089000123L, r.epoch);
        assertEquals(1, r.answers.size());
        HostAnswer a = r.answers.get(0);
        assertEquals("api.example.com", a.host);
        assertEquals("gz-telecom", a.zone);
        assertFalse(a.failover);
        assertEquals(60, a.ttl);
        assertEquals(Arrays.asList("203.0.113.10", "203.0.113.11"), a.ips);
        assertEquals(Arrays.asList("2001:db8:10::1"), a.ipsv6);
        assertEquals(2, a.fallback.size());
        assertEquals("sh-bgp", a.fallback.get(0).zone);
        assertEquals(Arrays.asList("198.51.100.10"), a.fallback.get(0).ips);
        assertEquals(Arrays.asList("2001:db8:20::1"), a.fallback.get(0).ipsv6);
        assertNull(a.error);
        assertEquals(1764089000123L, a.epoch);
        assertEquals(HostAnswer.Source.HTTPDNS, a.source);
    }

    @Test
    public void parsesUnknownHostSlot() throws Exception {
        ResolveResponse r = ResolveResponse.parse(TestSupport.fixture("resolve_batch_unknown.json"));
        assertEquals(3, r.answers.size());
        HostAnswer nope = r.answers.get(1);
        assertEquals("nope.example.com", nope.host);
        assertEquals("unknown_host", nope.error);
        assertTrue(nope.isEmpty());
        assertTrue(nope.fallback.isEmpty());
        assertEquals(300, r.answers.get(2).ttl);
    }

    @Test
    public void parsesFailoverFixture() throws Exception {
        HostAnswer a = ResolveResponse.parse(TestSupport.fixture("resolve_failover.json")).answers.get(0);
        assertTrue(a.failover);
        assertEquals("sh-bgp", a.zone);
        assertEquals("bj-unicom", a.fallback.get(0).zone);
    }

    @Test
    public void unknownGeoFieldsAreNull() throws Exception {
        ResolveResponse r = ResolveResponse.parse("{\"client_ip\":\"203.0.113.1\",\"geo\":{\"country\":null,"
                + "\"carrier\":null,\"asn\":null},\"epoch\":5,\"answers\":[]}");
        assertNull(r.geo.country);
        assertNull(r.geo.province);
        assertNull(r.geo.carrier);
        assertNull(r.geo.asn);
        assertEquals(5, r.epoch);
    }

    @Test(expected = HttpDnsException.class)
    public void rejectsErrorBody() throws Exception {
        ResolveResponse.parse(TestSupport.fixture("error_bad_request.json"));
    }

    @Test(expected = HttpDnsException.class)
    public void rejectsGarbage() throws Exception {
        ResolveResponse.parse("<html>");
    }

    /** The fixtures are complete examples of the contract: every key, with the right JSON type. */
    @Test
    public void fixturesCarryEveryContractKey() throws Exception {
        for (String name : new String[] {"resolve_single.json", "resolve_batch_unknown.json", "resolve_failover.json"}) {
            JSONObject o = new JSONObject(TestSupport.fixture(name));
            assertKeys(name, o, "client_ip", "geo", "epoch", "answers");
            assertTrue(o.get("client_ip") instanceof String);
            assertTrue(o.get("epoch") instanceof Number);
            assertKeys(name, o.getJSONObject("geo"), "country", "province", "city", "carrier", "asn");
            JSONArray answers = o.getJSONArray("answers");
            assertTrue(answers.length() > 0);
            for (int i = 0; i < answers.length(); i++) {
                JSONObject a = answers.getJSONObject(i);
                if (a.has("error")) {
                    assertKeys(name, a, "host", "error");
                    continue;
                }
                assertKeys(name, a, "host", "zone", "failover", "ttl", "ips", "ipsv6", "fallback");
                assertTrue(a.get("failover") instanceof Boolean);
                assertTrue(a.get("ttl") instanceof Number);
                JSONArray fb = a.getJSONArray("fallback");
                for (int j = 0; j < fb.length(); j++) assertKeys(name, fb.getJSONObject(j), "zone", "ips", "ipsv6");
            }
        }
        assertKeys("error_bad_request.json", new JSONObject(TestSupport.fixture("error_bad_request.json")),
                "error", "message");
        assertKeys("report_response.json", new JSONObject(TestSupport.fixture("report_response.json")), "accepted");
    }

    /** The SDK's POST /report body has exactly the shape of report_request.json. */
    @Test
    public void reportBodyMatchesFixture() throws Exception {
        JSONObject fixture = new JSONObject(TestSupport.fixture("report_request.json"));
        JSONArray fr = fixture.getJSONArray("reports");
        java.util.List<ReportBuffer.Report> reports = new java.util.ArrayList<ReportBuffer.Report>();
        for (int i = 0; i < fr.length(); i++) {
            JSONObject r = fr.getJSONObject(i);
            reports.add(new ReportBuffer.Report(r.getString("ip"), r.getLong("rtt_ms"), r.getBoolean("ok")));
        }
        JSONObject ours = new JSONObject(ReportBuffer.toJson(fixture.getString("host"), reports));
        assertEquals(keys(fixture), keys(ours));
        assertEquals(fixture.getString("host"), ours.getString("host"));
        JSONArray or = ours.getJSONArray("reports");
        assertEquals(fr.length(), or.length());
        for (int i = 0; i < fr.length(); i++) {
            JSONObject a = fr.getJSONObject(i);
            JSONObject b = or.getJSONObject(i);
            assertEquals(keys(a), keys(b));
            assertEquals(a.getString("ip"), b.getString("ip"));
            assertEquals(a.getLong("rtt_ms"), b.getLong("rtt_ms"));
            assertEquals(a.getBoolean("ok"), b.getBoolean("ok"));
            assertTrue(b.get("rtt_ms") instanceof Number);
            assertTrue(b.get("ok") instanceof Boolean);
        }
    }

    private static java.util.Set<String> keys(JSONObject o) {
        java.util.Set<String> s = new java.util.TreeSet<String>();
        Iterator<?> it = o.keys();
        while (it.hasNext()) s.add((String) it.next());
        return s;
    }

    private static void assertKeys(String where, JSONObject o, String... expected) {
        assertEquals(where, new java.util.TreeSet<String>(Arrays.asList(expected)), keys(o));
    }
}
