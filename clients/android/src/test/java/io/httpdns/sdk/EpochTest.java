package io.httpdns.sdk;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNotNull;
import static org.junit.Assert.assertNull;

import io.httpdns.sdk.TestSupport.FakeClock;
import io.httpdns.sdk.TestSupport.FakeServer;
import io.httpdns.sdk.TestSupport.FakeSystemDns;
import io.httpdns.sdk.TestSupport.Reply;
import io.httpdns.sdk.TestSupport.Responder;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.After;
import org.junit.Before;
import org.junit.Test;

public class EpochTest {
    private final FakeClock clock = new FakeClock();
    private final AtomicLong bodyEpoch = new AtomicLong(100);
    private final AtomicLong headerEpoch = new AtomicLong(0);
    private FakeServer server;
    private HttpDnsClient client;

    @Before
    public void setUp() throws Exception {
        final String template = TestSupport.fixture("resolve_single.json");
        // Answers for whichever host is asked, with the current epochs.
        server = new FakeServer(new Responder() {
            @Override
            public Reply reply(Map<String, String> q) {
                String body = TestSupport.withEpoch(template.replace("api.example.com", q.get("host")), bodyEpoch.get());
                Reply r = new Reply(200, body);
                long h = headerEpoch.get();
                return r.header("X-Httpdns-Epoch", String.valueOf(h > 0 ? h : bodyEpoch.get()));
            }
        });
        client = new HttpDnsClient(TestSupport.config(clock, new FakeSystemDns(), server.address()).build());
    }

    @After
    public void tearDown() {
        client.close();
        server.close();
    }

    @Test
    public void newerBodyEpochDropsAllCachedHosts() {
        client.resolve("a.example.com");
        client.resolve("b.example.com");
        assertEquals(100, client.currentEpoch());
        assertNotNull(client.peek("a.example.com"));

        bodyEpoch.set(200);
        assertEquals(HostAnswer.Source.HTTPDNS, client.resolve("c.example.com").source);
        assertEquals(200, client.currentEpoch());
        assertNull(client.peek("a.example.com"));
        assertNull(client.peek("b.example.com"));
        assertNotNull(client.peek("c.example.com"));
        assertEquals(200, client.peek("c.example.com").epoch);

        client.resolve("a.example.com");
        assertEquals(4, server.resolveCount.get());
    }

    @Test
    public void newerHeaderEpochDropsAllCachedHosts() {
        client.resolve("a.example.com");
        headerEpoch.set(300); // body still says 100
        client.resolve("c.example.com");
        assertEquals(300, client.currentEpoch());
        assertNull(client.peek("a.example.com"));
        assertNotNull(client.peek("c.example.com"));
    }

    @Test
    public void sameOrOlderEpochKeepsCache() {
        client.resolve("a.example.com");
        client.resolve("b.example.com");
        bodyEpoch.set(50); // a lagging server
        client.resolve("c.example.com");
        assertEquals(100, client.currentEpoch());
        assertNotNull(client.peek("a.example.com"));
        assertNotNull(client.peek("b.example.com"));
    }
}
