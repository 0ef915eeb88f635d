package io.httpdns.sdk;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;

import io.httpdns.sdk.TestSupport.FakeClock;
import io.httpdns.sdk.TestSupport.FakeServer;
import io.httpdns.sdk.TestSupport.FakeSystemDns;
import io.httpdns.sdk.TestSupport.Reply;
import io.httpdns.sdk.TestSupport.Responder;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.util.Map;
import org.junit.After;
import org.junit.Before;
import org.junit.Test;

public class ServerRotationTest {
    private static final String API = "api.example.com";
    private final FakeClock clock = new FakeClock();
    private final FakeSystemDns sys = new FakeSystemDns().put(API, "192.0.2.1");
    private FakeServer good;
    private HttpDnsClient client;

    @Before
    public void setUp() throws Exception {
        good = FakeServer.serving("resolve_single.json");
    }

    @After
    public void tearDown() {
        if (client != null) client.close();
        good.close();
    }

    @Test
    public void refusedFirstServerRotatesToSecondAndIsRemembered() throws Exception {
        String dead = TestSupport.closedPort();
        client = new HttpDnsClient(TestSupport.config(clock, sys, dead, good.address()).build());
        long t0 = System.nanoTime();
        HostAnswer a = client.resolve(API);
        long ms = (System.nanoTime() - t0) / 1000000;
        assertEquals(HostAnswer.Source.HTTPDNS, a.source);
        assertTrue("took " + ms + " ms", ms < 3000);
        assertEquals(good.address(), client.preferredServer());
        assertTrue(sys.lookups.isEmpty());
    }

    /** A server that accepts TCP (kernel backlog) but never answers costs one read timeout, once. */
    @Test
    public void blackHoleFirstServerCostsOneReadTimeoutThenIsSkipped() throws Exception {
        ServerSocket hole = new ServerSocket(0, 50, InetAddress.getByName("127.0.0.1"));
        try {
            String dead = "127.0.0.1:" + hole.getLocalPort();
            client = new HttpDnsClient(TestSupport.config(clock, sys, dead, good.address())
                    .connectTimeoutMs(800).readTimeoutMs(1000).timeoutMs(3000).build());
            long t0 = System.nanoTime();
            HostAnswer a = client.resolve(API);
            long first = (System.nanoTime() - t0) / 1000000;
            assertEquals(HostAnswer.Source.HTTPDNS, a.source);
            assertTrue("first took " + first + " ms", first >= 900 && first < 3000);
            assertEquals(good.address(), client.preferredServer());

            client.clearCache();
            t0 = System.nanoTime();
            assertEquals(HostAnswer.Source.HTTPDNS, client.resolve(API).source);
            long second = (System.nanoTime() - t0) / 1000000;
            assertTrue("second took " + second + " ms", second < 800); // no read timeout spent
        } finally {
            hole.close();
        }
    }

    @Test
    public void allServersDeadDegradesWithinTimeout() throws Exception {
        client = new HttpDnsClient(TestSupport.config(clock, sys, TestSupport.closedPort(), TestSupport.closedPort())
                .build());
        long t0 = System.nanoTime();
        HostAnswer a = client.resolve(API);
        assertTrue((System.nanoTime() - t0) / 1000000 < 2000);
        assertEquals(HostAnswer.Source.SYSTEM, a.source);
        assertEquals("192.0.2.1", a.ips.get(0));
    }

    @Test
    public void slowServerNeverBlocksCallerPastTimeout() throws Exception {
        good.responder = new Responder() {
            final String body = TestSupport.fixture("resolve_single.json");

            @Override
            public Reply reply(Map<String, String> q) {
                return new Reply(200, body).delay(2000);
            }
        };
        client = new HttpDnsClient(TestSupport.config(clock, sys, good.address())
                .timeoutMs(800).systemDnsBudgetMs(200).readTimeoutMs(3000).build());
        long t0 = System.nanoTime();
        HostAnswer a = client.resolve(API);
        long ms = (System.nanoTime() - t0) / 1000000;
        assertTrue("took " + ms + " ms", ms < 1400); // timeoutMs + scheduling slack
        assertEquals(HostAnswer.Source.SYSTEM, a.source);
        // The request went on in the background and filled the cache.
        TestSupport.await("late answer cached", 5000, new TestSupport.Cond() {
            @Override
            public boolean ok() {
                return client.peek(API) != null;
            }
        });
        assertEquals(HostAnswer.Source.CACHE, client.resolve(API).source);
    }

    @Test
    public void clientErrorIsNotRetriedOnOtherServers() throws Exception {
        FakeServer bad = new FakeServer(new Responder() {
            @Override
            public Reply reply(Map<String, String> q) {
                return new Reply(400, TestSupport.fixture("error_bad_request.json"));
            }
        });
        try {
            client = new HttpDnsClient(TestSupport.config(clock, sys, bad.address(), good.address()).build());
            HostAnswer a = client.resolve(API);
            assertEquals(HostAnswer.Source.SYSTEM, a.source);
            assertEquals(1, bad.resolveCount.get());
            assertEquals(0, good.resolveCount.get());
            assertTrue(client.lastError() instanceof HttpDnsException);
            assertEquals(400, ((HttpDnsException) client.lastError()).status());
        } finally {
            bad.close();
        }
    }
}
