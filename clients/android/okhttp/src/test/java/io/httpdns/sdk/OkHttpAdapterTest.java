package io.httpdns.sdk;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpHandler;
import com.sun.net.httpserver.HttpServer;
import io.httpdns.sdk.TestSupport.FakeClock;
import io.httpdns.sdk.TestSupport.FakeServer;
import io.httpdns.sdk.TestSupport.FakeSystemDns;
import io.httpdns.sdk.TestSupport.Reply;
import io.httpdns.sdk.TestSupport.Responder;
import io.httpdns.sdk.okhttp.HttpDnsEventListener;
import io.httpdns.sdk.okhttp.HttpDnsOkHttpDns;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Proxy;
import java.net.UnknownHostException;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import okhttp3.OkHttpClient;
import okhttp3.Request;
import okhttp3.Response;
import org.junit.After;
import org.junit.Before;
import org.junit.Test;

/** The OkHttp adapter: HTTPDNS addresses for OkHttp, connect reports, LocalDNS asked at most once. */
public class OkHttpAdapterTest {
    private final FakeClock clock = new FakeClock();
    private final FakeSystemDns sys = new FakeSystemDns();
    private final AtomicInteger appHits = new AtomicInteger();
    private FakeServer resolver;
    private HttpServer app;
    private HttpDnsClient client;
    private OkHttpClient ok;

    /** Every host resolves to 127.0.0.1, where the fake app server listens. */
    private static String answer(String host) {
        return "{\"client_ip\":\"127.0.0.1\",\"geo\":null,\"epoch\":1,\"answers\":[{\"host\":\"" + host
                + "\",\"zone\":\"local\",\"failover\":false,\"ttl\":60,\"ips\":[\"127.0.0.1\"],\"ipsv6\":[],\"fallback\":[]}]}";
    }

    @Before
    public void setUp() throws Exception {
        resolver = new FakeServer(new Responder() {
            @Override
            public Reply reply(Map<String, String> q) {
                return new Reply(200, answer(q.get("host")));
            }
        });
        app = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 10);
        app.createContext("/hello", new HttpHandler() {
            @Override
            public void handle(HttpExchange ex) throws IOException {
                appHits.incrementAndGet();
                byte[] b = "hi".getBytes("UTF-8");
                ex.sendResponseHeaders(200, b.length);
                OutputStream os = ex.getResponseBody();
                os.write(b);
                os.close();
            }
        });
        app.start();
    }

    private void start(String... servers) {
        client = new HttpDnsClient(TestSupport.config(clock, sys, servers).reportIntervalMs(3600000).build());
        ok = new OkHttpClient.Builder().proxy(Proxy.NO_PROXY).dns(new HttpDnsOkHttpDns(client))
                .eventListenerFactory(HttpDnsEventListener.factory(client))
                .connectTimeout(2, TimeUnit.SECONDS).readTimeout(5, TimeUnit.SECONDS).build();
    }

    @After
    public void tearDown() {
        if (ok != null) {
            ok.dispatcher().executorService().shutdown();
            ok.connectionPool().evictAll();
        }
        if (client != null) client.close();
        app.stop(0);
        resolver.close();
    }

    @Test
    public void okHttpConnectsToTheHttpDnsAddressAndReportsTheConnect() throws Exception {
        start(resolver.address());
        Response r = ok.newCall(new Request.Builder().url("http://app.test:" + app.getAddress().getPort() + "/hello")
                .build()).execute();
        try {
            assertEquals(200, r.code());
            assertEquals("hi", r.body().string());
        } finally {
            r.close();
        }
        assertEquals(1, appHits.get());
        assertTrue("never asked LocalDNS", sys.lookups.isEmpty());
        assertEquals(1, client.pendingReports());
        client.flushReports();
        TestSupport.await("report sent", 5000, new TestSupport.Cond() {
            @Override
            public boolean ok() {
                return !resolver.reportBodies.isEmpty();
            }
        });
        String body = resolver.reportBodies.get(0);
        assertTrue(body, body.contains("\"host\":\"app.test\"") && body.contains("\"ip\":\"127.0.0.1\"")
                && body.contains("\"ok\":true"));
    }

    @Test
    public void failedConnectIsReportedAsFailed() throws Exception {
        start(resolver.address());
        String closed = TestSupport.closedPort();
        try {
            ok.newCall(new Request.Builder().url("http://down.test:" + closed.split(":")[1] + "/").build()).execute();
            fail("connected to a closed port");
        } catch (IOException expected) {
            // connection refused
        }
        client.flushReports();
        TestSupport.await("report sent", 5000, new TestSupport.Cond() {
            @Override
            public boolean ok() {
                return !resolver.reportBodies.isEmpty();
            }
        });
        assertTrue(resolver.reportBodies.get(0), resolver.reportBodies.get(0).contains("\"ok\":false"));
    }

    @Test
    public void localDnsIsAskedOnceWhenHttpDnsIsDown() throws Exception {
        start(TestSupport.closedPort());
        try {
            ok.newCall(new Request.Builder().url("http://gone.test/").build()).execute();
            fail("resolved a host nobody knows");
        } catch (UnknownHostException expected) {
            // the SDK asked its SystemDns once and gave up
        }
        assertEquals(1, sys.lookups.size());
    }
}
