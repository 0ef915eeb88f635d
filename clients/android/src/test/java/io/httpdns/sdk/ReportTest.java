package io.httpdns.sdk;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;

import io.httpdns.sdk.TestSupport.FakeClock;
import io.httpdns.sdk.TestSupport.FakeServer;
import io.httpdns.sdk.TestSupport.FakeSystemDns;
import io.httpdns.sdk.TestSupport.Reply;
import io.httpdns.sdk.TestSupport.Responder;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.json.JSONArray;
import org.json.JSONObject;
import org.junit.After;
import org.junit.Before;
import org.junit.Test;

public class ReportTest {
    private final FakeClock clock = new FakeClock();
    private FakeServer server;
    private HttpDnsClient client;

    @Before
    public void setUp() throws Exception {
        server = FakeServer.serving("resolve_single.json");
        client = new HttpDnsClient(TestSupport.config(clock, new FakeSystemDns(), server.address())
                .reportIntervalMs(30000).build());
    }

    @After
    public void tearDown() {
        client.close();
        server.close();
    }

    private void awaitReports(final int n) {
        TestSupport.await(n + " report POSTs", 3000, new TestSupport.Cond() {
            @Override
            public boolean ok() {
                return server.reportBodies.size() >= n;
            }
        });
    }

    @Test
    public void batchesAndSendsAtMostOncePerInterval() throws Exception {
        client.reportConnect("api.example.com", "203.0.113.10", 23, true);
        client.reportConnect("api.example.com", "203.0.113.11", 800, false);
        client.reportConnect("img.example.com", "203.0.113.30", 40, true);
        assertFalse(client.flushReportsIfDue());
        Thread.sleep(100);
        assertEquals(0, server.reportBodies.size());
        assertEquals(3, client.pendingReports());

        clock.advance(30000);
        client.reportConnect("API.example.com", "2001:db8:10::1", 31, true); // triggers the flush
        awaitReports(2); // one POST per host
        assertEquals(0, client.pendingReports());
        JSONObject api = new JSONObject(server.reportBodies.get(0));
        assertEquals("api.example.com", api.getString("host"));
        JSONArray r = api.getJSONArray("reports");
        assertEquals(3, r.length());
        assertEquals("203.0.113.10", r.getJSONObject(0).getString("ip"));
        assertEquals(23, r.getJSONObject(0).getLong("rtt_ms"));
        assertTrue(r.getJSONObject(0).getBoolean("ok"));
        assertFalse(r.getJSONObject(1).getBoolean("ok"));
        assertEquals("2001:db8:10::1", r.getJSONObject(2).getString("ip"));
        JSONObject img = new JSONObject(server.reportBodies.get(1));
        assertEquals("img.example.com", img.getString("host"));
        assertEquals(1, img.getJSONArray("reports").length());

        // Within the next interval nothing more is sent.
        clock.advance(29000);
        client.reportConnect("api.example.com", "203.0.113.10", 25, true);
        assertFalse(client.flushReportsIfDue());
        Thread.sleep(100);
        assertEquals(2, server.reportBodies.size());

        clock.advance(1000);
        client.tick();
        awaitReports(3);
        assertEquals(1, new JSONObject(server.reportBodies.get(2)).getJSONArray("reports").length());
    }

    @Test
    public void flushReportsSendsNow() throws Exception {
        client.reportConnect("api.example.com", "203.0.113.10", 23, true);
        assertTrue(client.flushReports());
        awaitReports(1);
        assertFalse(client.flushReports()); // nothing pending
    }

    @Test
    public void rejectedReportIsDroppedNotRetried() throws Exception {
        server.reportStatus = 400;
        client.reportConnect("api.example.com", "not-an-ip", 1, true);
        client.flushReports();
        awaitReports(1);
        Thread.sleep(100);
        assertEquals(1, server.reportBodies.size());
        assertEquals(0, client.pendingReports());
    }

    @Test
    public void probeMeasuresConnectTimeToReturnedAddresses() throws Exception {
        final String body = TestSupport.fixture("resolve_single.json")
                .replace("\"ips\": [\"203.0.113.10\", \"203.0.113.11\"]", "\"ips\": [\"127.0.0.1\"]")
                .replace("\"ipsv6\": [\"2001:db8:10::1\"]", "\"ipsv6\": []");
        server.responder = new Responder() {
            @Override
            public Reply reply(Map<String, String> q) {
                return new Reply(200, body);
            }
        };
        ServerSocket listening = new ServerSocket(0, 50, InetAddress.getByName("127.0.0.1"));
        try {
            assertEquals("127.0.0.1", client.resolve("api.example.com").ips.get(0));
            client.probe("api.example.com", listening.getLocalPort()).get(3, TimeUnit.SECONDS);
            client.probe("api.example.com", Integer.parseInt(TestSupport.closedPort().split(":")[1]))
                    .get(3, TimeUnit.SECONDS);
            assertEquals(2, client.pendingReports());
            client.flushReports();
            awaitReports(1);
            JSONArray r = new JSONObject(server.reportBodies.get(0)).getJSONArray("reports");
            assertEquals(2, r.length());
            assertEquals("127.0.0.1", r.getJSONObject(0).getString("ip"));
            assertTrue(r.getJSONObject(0).getBoolean("ok"));
            assertTrue(r.getJSONObject(0).getLong("rtt_ms") < 1000);
            assertFalse(r.getJSONObject(1).getBoolean("ok"));
        } finally {
            listening.close();
        }
    }
}
