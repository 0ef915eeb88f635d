package io.httpdns.sdk;

import static org.junit.Assert.fail;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpHandler;
import com.sun.net.httpserver.HttpServer;
import java.io.ByteArrayOutputStream;
import java.io.Closeable;
import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.URLDecoder;
import java.net.UnknownHostException;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

/** Fakes shared by the tests: fixtures from clients/testdata, an HTTP server, a clock, a system resolver. */
final class TestSupport {
    private TestSupport() {}

    static File testdataDir() {
        String p = System.getProperty("httpdns.testdata");
        File[] candidates = {p == null ? null : new File(p), new File("../testdata"), new File("clients/testdata"),
                new File("testdata")};
        for (File f : candidates) {
            if (f != null && new File(f, "resolve_single.json").isFile()) return f;
        }
        throw new IllegalStateException("clients/testdata not found; set -Dhttpdns.testdata=DIR");
    }

    static String fixture(String name) {
        try {
            return new String(Files.readAllBytes(new File(testdataDir(), name).toPath()), "UTF-8");
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    /** A fixture with its epoch replaced (body only). */
    static String withEpoch(String json, long epoch) {
        return json.replaceFirst("\"epoch\":\\s*\\d+", "\"epoch\": " + epoch);
    }

    static final class Reply {
        final int status;
        final String body;
        final Map<String, String> headers = new HashMap<String, String>();
        long delayMs;

        Reply(int status, String body) {
            this.status = status;
            this.body = body;
        }

        Reply header(String k, String v) {
            headers.put(k, v);
            return this;
        }

        Reply delay(long ms) {
            delayMs = ms;
            return this;
        }
    }

    interface Responder {
        Reply reply(Map<String, String> query);
    }

    /** A fake HTTPDNS server on 127.0.0.1 with an ephemeral port. */
    static final class FakeServer implements Closeable {
        final HttpServer server;
        final AtomicInteger resolveCount = new AtomicInteger();
        final List<Map<String, String>> resolveQueries = new CopyOnWriteArrayList<Map<String, String>>();
        final List<String> reportBodies = new CopyOnWriteArrayList<String>();
        volatile Responder responder;
        volatile int reportStatus = 200;

        FakeServer(Responder r) throws IOException {
            responder = r;
            server = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 50);
            server.setExecutor(Executors.newCachedThreadPool());
            server.createContext("/resolve", new HttpHandler() {
                @Override
                public void handle(HttpExchange ex) throws IOException {
                    Map<String, String> q = parseQuery(ex.getRequestURI().getRawQuery());
                    resolveQueries.add(q);
                    resolveCount.incrementAndGet();
                    Reply rep = responder.reply(q);
                    if (rep.delayMs > 0) sleep(rep.delayMs);
                    respond(ex, rep);
                }
            });
            server.createContext("/report", new HttpHandler() {
                @Override
                public void handle(HttpExchange ex) throws IOException {
                    reportBodies.add(readAll(ex.getRequestBody()));
                    respond(ex, new Reply(reportStatus, reportStatus == 200 ? "{\"accepted\": 1}"
                            : fixture("error_bad_request.json")));
                }
            });
            server.start();
        }

        /** Serves one fixture for every request. */
        static FakeServer serving(final String fixtureName) throws IOException {
            final String body = fixture(fixtureName);
            return new FakeServer(new Responder() {
                @Override
                public Reply reply(Map<String, String> q) {
                    return new Reply(200, body);
                }
            });
        }

        String address() {
            return "127.0.0.1:" + server.getAddress().getPort();
        }

        Map<String, String> lastQuery() {
            return resolveQueries.get(resolveQueries.size() - 1);
        }

        @Override
        public void close() {
            server.stop(0);
        }

        private static void respond(HttpExchange ex, Reply rep) throws IOException {
            byte[] b = rep.body.getBytes("UTF-8");
            ex.getResponseHeaders().set("Content-Type", "application/json");
            for (Map.Entry<String, String> h : rep.headers.entrySet()) ex.getResponseHeaders().set(h.getKey(), h.getValue());
            ex.sendResponseHeaders(rep.status, b.length);
            OutputStream os = ex.getResponseBody();
            os.write(b);
            os.close();
        }
    }

    static Map<String, String> parseQuery(String raw) {
        Map<String, String> out = new LinkedHashMap<String, String>();
        if (raw == null) return out;
        try {
            for (String kv : raw.split("&")) {
                int i = kv.indexOf('=');
                String k = URLDecoder.decode(i < 0 ? kv : kv.substring(0, i), "UTF-8");
                out.put(k, i < 0 ? "" : URLDecoder.decode(kv.substring(i + 1), "UTF-8"));
            }
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
        return out;
    }

    static String readAll(InputStream in) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        byte[] buf = new byte[4096];
        int n;
        while ((n = in.read(buf)) > 0) out.write(buf, 0, n);
        return out.toString("UTF-8");
    }

    static void sleep(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** A port on 127.0.0.1 where nothing listens (connections are refused at once). */
    static String closedPort() throws IOException {
        ServerSocket s = new ServerSocket(0, 1, java.net.InetAddress.getByName("127.0.0.1"));
        int port = s.getLocalPort();
        s.close();
        return "127.0.0.1:" + port;
    }

    /** Polls until {@code cond} holds or fails the test after {@code ms}. */
    static void await(String what, long ms, Cond cond) {
        long end = System.currentTimeMillis() + ms;
        while (System.currentTimeMillis() < end) {
            if (cond.ok()) return;
            sleep(10);
        }
        if (!cond.ok()) fail("timed out waiting for " + what);
    }

    interface Cond {
        boolean ok();
    }

    static final class FakeClock implements Clock {
        final AtomicLong now = new AtomicLong(1764089000000L);

        @Override
        public long nowMillis() {
            return now.get();
        }

        void advance(long ms) {
            now.addAndGet(ms);
        }
    }

    static final class FakeSystemDns implements SystemDns {
        final Map<String, List<String>> answers = new HashMap<String, List<String>>();
        final List<String> lookups = new CopyOnWriteArrayList<String>();
        volatile long delayMs;

        FakeSystemDns put(String host, String... ips) {
            List<String> l = new ArrayList<String>();
            Collections.addAll(l, ips);
            answers.put(host, l);
            return this;
        }

        @Override
        public List<String> lookup(String host) throws UnknownHostException {
            lookups.add(host);
            if (delayMs > 0) sleep(delayMs);
            List<String> l = answers.get(host);
            if (l == null) throw new UnknownHostException(host);
            return l;
        }
    }

    /** A config builder with test-friendly defaults: fake clock and system DNS, no background tick. */
    static HttpDnsConfig.Builder config(FakeClock clock, FakeSystemDns sys, String... servers) {
        return HttpDnsConfig.builder(servers).clock(clock).systemDns(sys).tickIntervalMs(0);
    }
}
