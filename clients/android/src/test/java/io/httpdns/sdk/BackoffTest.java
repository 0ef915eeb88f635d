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
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.Test;

/** Per-server backoff: a failed resolver is skipped for a growing time, then probed in the background. */
public class BackoffTest {
    private final FakeClock clock = new FakeClock();
    private final FakeSystemDns sys = new FakeSystemDns();

    private static long ms(long t0) {
        return (System.nanoTime() - t0) / 1000000;
    }

    @Test
    public void blackholedOnlyServerCostsTheTimeoutOnceNotOnEveryCall() throws Exception {
        ServerSocket hole = new ServerSocket(0, 50, InetAddress.getByName("127.0.0.1"));
        for (int i = 0; i < 6; i++) sys.put("h" + i + ".example.com", "192.0.2." + (i + 1));
        HttpDnsClient client = new HttpDnsClient(TestSupport.config(clock, sys, "127.0.0.1:" + hole.getLocalPort())
                .connectTimeoutMs(800).readTimeoutMs(800).timeoutMs(1200).systemDnsBudgetMs(300).build());
        try {
            long t0 = System.nanoTime();
            HostAnswer first = client.resolve("h0.example.com");
            long firstMs = ms(t0);
            assertEquals(HostAnswer.Source.SYSTEM, first.source);
            assertTrue("first took " + firstMs + " ms", firstMs >= 750); // the 800 ms handshake read timeout
            TestSupport.await("the server to enter backoff", 5000, new TestSupport.Cond() {
                @Override
                public boolean ok() {
                    return client.lastError() instanceof java.net.SocketTimeoutException;
                }
            });

            // Uncached lookups no longer wait on the dead server at all.
            t0 = System.nanoTime();
            for (int i = 1; i < 6; i++) {
                assertEquals(HostAnswer.Source.SYSTEM, client.resolve("h" + i + ".example.com").source);
            }
            long fiveMs = ms(t0);
            assertTrue("five lookups took " + fiveMs + " ms", fiveMs < 500);
        } finally {
            client.close();
            hole.close();
        }
    }

    @Test
    public void failedServerIsSkippedThenProbedInTheBackgroundAndPreferredAgain() throws Exception {
        final AtomicInteger firstStatus = new AtomicInteger(503);
        final String body = TestSupport.fixture("resolve_single.json");
        FakeServer first = new FakeServer(new Responder() {
            @Override
            public Reply reply(Map<String, String> q) {
                int s = firstStatus.get();
                return s == 200 ? new Reply(200, body.replace("api.example.com", q.get("host")))
                        : new Reply(s, "{\"error\":\"unavailable\"}");
            }
        });
        FakeServer second = new FakeServer(new Responder() {
            @Override
            public Reply reply(Map<String, String> q) {
                return new Reply(200, body.replace("api.example.com", q.get("host")));
            }
        });
        final HttpDnsClient client = new HttpDnsClient(TestSupport.config(clock, sys, first.address(), second.address())
                .backoffMs(2000, 8000).build());
        try {
            assertEquals(HostAnswer.Source.HTTPDNS, client.resolve("a.example.com").source);
            assertEquals(1, first.resolveCount.get());
            assertEquals(1, second.resolveCount.get());

            // Within the backoff window the failed server is not asked.
            clock.advance(1999);
            assertEquals(HostAnswer.Source.HTTPDNS, client.resolve("b.example.com").source);
            assertEquals(1, first.resolveCount.get());
            assertEquals(2, second.resolveCount.get());

            // Past it, the next request still goes to the healthy server; the failed one gets a background probe.
            clock.advance(2);
            assertEquals(HostAnswer.Source.HTTPDNS, client.resolve("c.example.com").source);
            assertEquals(3, second.resolveCount.get());
            TestSupport.await("background probe", 5000, new TestSupport.Cond() {
                @Override
                public boolean ok() {
                    return first.resolveCount.get() == 2;
                }
            });

            // It failed again: the window doubled (4 s), so 3 s later it is still skipped.
            clock.advance(3000);
            client.resolve("d.example.com");
            assertEquals(2, first.resolveCount.get());

            // Back: after the doubled window the probe succeeds and the first server is preferred again.
            firstStatus.set(200);
            clock.advance(1001);
            client.resolve("e.example.com");
            TestSupport.await("second probe", 5000, new TestSupport.Cond() {
                @Override
                public boolean ok() {
                    return first.resolveCount.get() == 3 && client.preferredServer().equals(first.address());
                }
            });
            assertEquals(HostAnswer.Source.HTTPDNS, client.resolve("f.example.com").source);
            assertEquals(4, first.resolveCount.get());
        } finally {
            client.close();
            first.close();
            second.close();
        }
    }

    @Test
    public void backoffGrowsExponentiallyUpToTheCap() {
        ServerBackoff b = new ServerBackoff(1, 1000, 5000);
        assertEquals(1000, b.failure(0, 0));
        assertEquals(2000, b.failure(0, 0));
        assertEquals(4000, b.failure(0, 0));
        assertEquals(5000, b.failure(0, 0));
        assertEquals(5000, b.failure(0, 0));
        assertTrue(!b.healthy(0) && !b.due(0, 4999) && b.due(0, 5000));
        assertTrue(b.claimProbe(0, 5000));
        assertTrue("one probe at a time", !b.claimProbe(0, 5000));
        b.success(0);
        assertTrue(b.healthy(0));
    }
}
