package io.httpdns.sdk;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertNotNull;

import io.httpdns.sdk.TestSupport.FakeClock;
import io.httpdns.sdk.TestSupport.FakeServer;
import io.httpdns.sdk.TestSupport.FakeSystemDns;
import io.httpdns.sdk.TestSupport.Reply;
import io.httpdns.sdk.TestSupport.Responder;
import java.util.Map;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.After;
import org.junit.Before;
import org.junit.Test;

public class EpochTest {
    private final FakeClock clock = new FakeClock();
    private final AtomicLong bodyEpoch = new AtomicLong(100);
    private final AtomicLong headerEpoch = new AtomicLong(0);
    private final AtomicBoolean failing = new AtomicBoolean();
    private FakeServer server;
    private HttpDnsClient client;

    @Before
    public void setUp() throws Exception {
        final String template = TestSupport.fixture("resolve_single.json");
        // Answers for whichever host is asked, with the current epochs.
        server = new FakeServer(new Responder() {
            @Override
            public Reply reply(Map<String, String> q) {
                if (failing.get()) return new Reply(500, "{\"error\":\"internal\"}");
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
    public void newerBodyEpochMarksCachedHostsForRefreshWithoutDroppingThem() {
        client.resolve("a.example.com");
        client.resolve("b.example.com");
        assertEquals(100, client.currentEpoch());
        assertEquals(HostAnswer.Source.CACHE, client.peek("a.example.com").source);

        bodyEpoch.set(200);
        assertEquals(HostAnswer.Source.HTTPDNS, client.resolve("c.example.com").source);
        assertEquals(200, client.currentEpoch());
        // Older answers are due for refresh but still there as fallbacks.
        assertEquals(HostAnswer.Source.STALE, client.peek("a.example.com").source);
        assertEquals(HostAnswer.Source.STALE, client.peek("b.example.com").source);
        assertEquals(HostAnswer.Source.CACHE, client.peek("c.example.com").source);
        assertEquals(200, client.peek("c.example.com").epoch);

        // The next lookup refreshes instead of serving the old answer as fresh.
        assertEquals(HostAnswer.Source.HTTPDNS, client.resolve("a.example.com").source);
        assertEquals(4, server.resolveCount.get());
        assertEquals(HostAnswer.Source.CACHE, client.peek("a.example.com").source);
    }

    @Test
    public void newerEpochKeepsStaleFallbacksWhenTheRefreshFails() {
        client.resolve("a.example.com");
        bodyEpoch.set(200);
        client.resolve("c.example.com");
        failing.set(true);
        HostAnswer a = client.resolve("a.example.com");
        assertEquals(HostAnswer.Source.STALE, a.source);
        assertFalse(a.ips.isEmpty());
        assertEquals(3, server.resolveCount.get());
        // resolveNonBlocking serves the same fallback at once and starts a refresh in the background.
        assertEquals(HostAnswer.Source.STALE, client.resolveNonBlocking("a.example.com").source);
    }

    @Test
    public void newerHeaderEpochMarksCachedHostsForRefresh() {
        client.resolve("a.example.com");
        headerEpoch.set(300); // body still says 100
        client.resolve("c.example.com");
        assertEquals(300, client.currentEpoch());
        assertEquals(HostAnswer.Source.STALE, client.peek("a.example.com").source);
        assertEquals(HostAnswer.Source.CACHE, client.peek("c.example.com").source);
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
