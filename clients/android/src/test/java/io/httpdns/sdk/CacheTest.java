package io.httpdns.sdk;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNotNull;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertTrue;

import io.httpdns.sdk.TestSupport.FakeClock;
import io.httpdns.sdk.TestSupport.FakeServer;
import io.httpdns.sdk.TestSupport.FakeSystemDns;
import io.httpdns.sdk.TestSupport.Reply;
import io.httpdns.sdk.TestSupport.Responder;
import java.util.Arrays;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.After;
import org.junit.Before;
import org.junit.Test;

public class CacheTest {
    private static final String API = "api.example.com";
    private final FakeClock clock = new FakeClock();
    private final FakeSystemDns sys = new FakeSystemDns().put(API, "192.0.2.1");
    private FakeServer server;
    private HttpDnsClient client;
    private volatile int status = 200;

    @Before
    public void setUp() throws Exception {
        final String body = TestSupport.fixture("resolve_single.json");
        server = new FakeServer(new Responder() {
            @Override
            public Reply reply(Map<String, String> q) {
                return status == 200 ? new Reply(200, body) : new Reply(status, "{\"error\":\"internal\"}");
            }
        });
    }

    @After
    public void tearDown() {
        if (client != null) client.close();
        server.close();
    }

    private HttpDnsClient client(HttpDnsConfig.Builder b) {
        client = new HttpDnsClient(b.build());
        return client;
    }

    @Test
    public void cacheHitThenExpiry() {
        client(TestSupport.config(clock, sys, server.address()));
        HostAnswer first = client.resolve(API);
        assertEquals(HostAnswer.Source.HTTPDNS, first.source);
        assertEquals(Arrays.asList("203.0.113.10", "203.0.113.11"), first.ips);
        assertEquals(1, server.resolveCount.get());

        clock.advance(30000);
        HostAnswer hit = client.resolve("API.Example.com.");
        assertEquals(HostAnswer.Source.CACHE, hit.source);
        assertEquals(first.ips, hit.ips);
        assertEquals(1, server.resolveCount.get());

        clock.advance(31000); // past the 60 s TTL
        HostAnswer again = client.resolve(API);
        assertEquals(again + " " + client.lastError(), HostAnswer.Source.HTTPDNS, again.source);
        assertEquals(2, server.resolveCount.get());
        assertEquals("A,AAAA", server.lastQuery().get("type"));
        assertEquals(API, server.lastQuery().get("host"));
    }

    @Test
    public void staleOnServerFailureWithinMaxStaleness() {
        client(TestSupport.config(clock, sys, server.address()).maxStaleMs(10000));
        client.resolve(API);
        status = 500;
        clock.advance(65000); // expired 5 s ago
        HostAnswer stale = client.resolve(API);
        assertEquals(HostAnswer.Source.STALE, stale.source);
        assertEquals("gz-telecom", stale.zone);
        assertEquals(2, server.resolveCount.get()); // it did try the server first
        assertTrue(sys.lookups.isEmpty());

        clock.advance(6000); // now 11 s past expiry: too stale
        HostAnswer sysAnswer = client.resolve(API);
        assertEquals(HostAnswer.Source.SYSTEM, sysAnswer.source);
        assertEquals(Arrays.asList("192.0.2.1"), sysAnswer.ips);
    }

    @Test
    public void staleWhenServerIsGone() {
        client(TestSupport.config(clock, sys, server.address()));
        client.resolve(API);
        server.close();
        clock.advance(61000);
        long t0 = System.nanoTime();
        assertEquals(HostAnswer.Source.STALE, client.resolve(API).source);
        assertTrue(System.nanoTime() - t0 < TimeUnit.SECONDS.toNanos(3));
    }

    @Test
    public void backgroundRefreshAtThreeQuartersOfTtl() throws Exception {
        client(TestSupport.config(clock, sys, server.address()));
        client.resolve(API);
        clock.advance(44000); // 73 % of 60 s
        assertEquals(HostAnswer.Source.CACHE, client.resolve(API).source);
        Thread.sleep(150);
        assertEquals(1, server.resolveCount.get());

        clock.advance(2000); // 77 %: served from cache, refreshed behind the caller's back
        assertEquals(HostAnswer.Source.CACHE, client.resolve(API).source);
        TestSupport.await("background refresh", 3000, new TestSupport.Cond() {
            @Override
            public boolean ok() {
                return server.resolveCount.get() == 2;
            }
        });
        // The refreshed entry starts a new TTL: past the old expiry it is still a cache hit.
        final long refreshedExpiry = clock.nowMillis() + 60000;
        TestSupport.await("refreshed entry stored", 3000, new TestSupport.Cond() {
            @Override
            public boolean ok() {
                return client.expiresAt(API) == refreshedExpiry;
            }
        });
        clock.advance(20000); // 66 s after the first fetch, 20 s after the refresh
        assertEquals(HostAnswer.Source.CACHE, client.resolve(API).source);
        assertEquals(2, server.resolveCount.get());
    }

    @Test
    public void tickRefreshesOnlyUsedEntries() throws Exception {
        client(TestSupport.config(clock, sys, server.address()));
        client.resolve(API);
        clock.advance(46000);
        assertEquals(0, client.refreshExpiring()); // stored but never read since: not worth refreshing
        clock.advance(-46000);
        client.resolve(API); // a cache hit marks it used
        clock.advance(46000);
        assertEquals(1, client.refreshExpiring());
        TestSupport.await("tick refresh", 3000, new TestSupport.Cond() {
            @Override
            public boolean ok() {
                return server.resolveCount.get() == 2;
            }
        });
    }

    @Test
    public void preResolveBatchesAtStartAndAfterNetworkChange() throws Exception {
        server.responder = new Responder() {
            final String body = TestSupport.fixture("resolve_batch_unknown.json");

            @Override
            public Reply reply(Map<String, String> q) {
                return new Reply(200, body);
            }
        };
        client(TestSupport.config(clock, sys, server.address()).preResolve(API, "img.example.com"));
        TestSupport.await("pre-resolve", 3000, new TestSupport.Cond() {
            @Override
            public boolean ok() {
                return client.peek(API) != null && client.peek("img.example.com") != null;
            }
        });
        assertEquals(1, server.resolveCount.get());
        assertEquals("api.example.com,img.example.com", server.lastQuery().get("host"));
        assertEquals(HostAnswer.Source.CACHE, client.resolve(API).source);

        client.onNetworkChanged();
        TestSupport.await("pre-resolve again", 3000, new TestSupport.Cond() {
            @Override
            public boolean ok() {
                return server.resolveCount.get() == 2 && client.peek(API) != null;
            }
        });
    }

    @Test
    public void clearCacheForcesNewQuery() throws Exception {
        client(TestSupport.config(clock, sys, server.address()));
        client.resolve(API);
        client.clearCache();
        assertNull(client.peek(API));
        client.resolve(API);
        assertEquals(2, server.resolveCount.get());
        assertNotNull(client.peek(API));
        client.preResolve(Arrays.asList(API)).get(3, TimeUnit.SECONDS);
        assertEquals(3, server.resolveCount.get());
    }
}
