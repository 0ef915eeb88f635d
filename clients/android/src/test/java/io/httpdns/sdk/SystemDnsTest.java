package io.httpdns.sdk;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertTrue;

import io.httpdns.sdk.TestSupport.FakeClock;
import io.httpdns.sdk.TestSupport.FakeServer;
import io.httpdns.sdk.TestSupport.FakeSystemDns;
import io.httpdns.sdk.TestSupport.Reply;
import io.httpdns.sdk.TestSupport.Responder;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.After;
import org.junit.Test;

public class SystemDnsTest {
    private final FakeClock clock = new FakeClock();
    private final FakeSystemDns sys = new FakeSystemDns()
            .put("api.example.com", "192.0.2.1", "2001:db8:ffff::1")
            .put("nope.example.com", "192.0.2.2")
            .put("a.internal.example.com", "10.0.0.1")
            .put("legacy.example.com", "192.0.2.3");
    private FakeServer server;
    private HttpDnsClient client;

    @After
    public void tearDown() {
        if (client != null) client.close();
        if (server != null) server.close();
    }

    @Test
    public void everyServerDownUsesSystemDns() throws Exception {
        client = new HttpDnsClient(TestSupport.config(clock, sys, TestSupport.closedPort()).build());
        HostAnswer a = client.resolve("api.example.com");
        assertEquals(HostAnswer.Source.SYSTEM, a.source);
        assertEquals(Arrays.asList("192.0.2.1"), a.ips);
        assertEquals(Arrays.asList("2001:db8:ffff::1"), a.ipsv6);
        assertNull(client.peek("api.example.com")); // system answers are not cached by the SDK
    }

    @Test
    public void emptyAnswerUsesSystemDns() throws Exception {
        final String body = TestSupport.fixture("resolve_single.json")
                .replaceAll("\"ips\": \\[\"203[^]]*\\]", "\"ips\": []")
                .replace("\"ipsv6\": [\"2001:db8:10::1\"]", "\"ipsv6\": []");
        server = new FakeServer(new Responder() {
            @Override
            public Reply reply(Map<String, String> q) {
                return new Reply(200, body);
            }
        });
        client = new HttpDnsClient(TestSupport.config(clock, sys, server.address()).build());
        HostAnswer a = client.resolve("api.example.com");
        assertEquals(1, server.resolveCount.get());
        assertEquals(HostAnswer.Source.SYSTEM, a.source);
        assertEquals("192.0.2.1", a.ips.get(0));
    }

    @Test
    public void filteredHostsNeverQueryHttpDns() throws Exception {
        server = FakeServer.serving("resolve_single.json");
        client = new HttpDnsClient(TestSupport.config(clock, sys, server.address())
                .systemDnsHosts("*.internal.example.com", "legacy.example.com")
                .preResolve("legacy.example.com").build());
        assertEquals(HostAnswer.Source.SYSTEM, client.resolve("a.internal.example.com").source);
        assertEquals(Arrays.asList("192.0.2.3"), client.resolve("LEGACY.example.com").ips);
        assertEquals(HostAnswer.Source.HTTPDNS, client.resolve("api.example.com").source);
        Thread.sleep(100);
        assertEquals(1, server.resolveCount.get());
        assertEquals("api.example.com", server.lastQuery().get("host"));
    }

    @Test
    public void unknownHostSlotInBatch() throws Exception {
        server = FakeServer.serving("resolve_batch_unknown.json");
        client = new HttpDnsClient(TestSupport.config(clock, sys, server.address()).build());
        Map<String, HostAnswer> m = client.resolveBatch(
                Arrays.asList("api.example.com", "nope.example.com", "img.example.com"));
        assertEquals(1, server.resolveCount.get());
        assertEquals("api.example.com,nope.example.com,img.example.com", server.lastQuery().get("host"));
        assertEquals(Arrays.asList("api.example.com", "nope.example.com", "img.example.com"),
                new java.util.ArrayList<String>(m.keySet()));
        assertEquals(HostAnswer.Source.HTTPDNS, m.get("api.example.com").source);
        assertEquals(HostAnswer.Source.HTTPDNS, m.get("img.example.com").source);
        assertEquals(Arrays.asList("203.0.113.30"), m.get("img.example.com").ips);
        HostAnswer nope = m.get("nope.example.com");
        assertEquals(HostAnswer.Source.SYSTEM, nope.source); // degraded for that host only
        assertEquals(Arrays.asList("192.0.2.2"), nope.ips);
        assertNull(client.peek("nope.example.com"));

        // Cached hosts come from the cache; the unknown one is negatively cached: not asked again.
        sys.answers.remove("nope.example.com");
        Map<String, HostAnswer> again = client.resolveBatch(
                Arrays.asList("img.example.com", "nope.example.com"));
        assertEquals(HostAnswer.Source.CACHE, again.get("img.example.com").source);
        assertEquals(1, server.resolveCount.get());
        HostAnswer none = again.get("nope.example.com");
        assertEquals(HostAnswer.Source.NONE, none.source);
        assertEquals("unknown_host", none.error);
        assertTrue(none.isEmpty());

        // After the negative TTL (30 s by default) the resolver is asked again.
        clock.advance(31000);
        client.resolve("nope.example.com");
        assertEquals(2, server.resolveCount.get());
        assertEquals("nope.example.com", server.lastQuery().get("host"));
    }

    @Test
    public void slowSystemDnsNeverBlocksPastTimeout() throws Exception {
        sys.delayMs = 5000;
        client = new HttpDnsClient(TestSupport.config(clock, sys, TestSupport.closedPort())
                .timeoutMs(700).systemDnsBudgetMs(300).build());
        long t0 = System.nanoTime();
        List<HostAnswer> answers = new java.util.ArrayList<HostAnswer>(
                client.resolveBatch(Arrays.asList("api.example.com", "legacy.example.com")).values());
        long ms = (System.nanoTime() - t0) / 1000000;
        assertTrue("took " + ms + " ms", ms < 1300); // timeoutMs + scheduling slack
        for (HostAnswer a : answers) {
            assertEquals(HostAnswer.Source.NONE, a.source);
            assertTrue(a.isEmpty());
        }
    }
}
