package io.httpdns.sdk;

import static org.junit.Assert.fail;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpHandler;
import com.sun.net.httpserver.HttpServer;
import com.sun.net.httpserver.HttpsConfigurator;
import com.sun.net.httpserver.HttpsServer;
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
import java.security.KeyFactory;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.security.spec.PKCS8EncodedKeySpec;
import java.net.Socket;
import java.security.Principal;
import java.security.cert.X509Certificate;
import javax.net.ssl.ExtendedSSLSession;
import javax.net.ssl.KeyManager;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SNIHostName;
import javax.net.ssl.SNIServerName;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLSession;
import javax.net.ssl.X509ExtendedKeyManager;
import javax.net.ssl.SSLContext;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Fakes shared by the tests: fixtures from clients/testdata, an HTTPS server on 127.0.0.1 with the
 * test certificates of clients/testdata/tls, a clock, a system resolver that never resolves real names.
 */
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

    /** PEM text of a test certificate or key under clients/testdata/tls. */
    static String tlsFile(String name) {
        return fixture("tls/" + name);
    }

    /** The test CA every test client trusts. */
    static String caPem() {
        return tlsFile("ca.pem");
    }

    /**
     * Server TLS context for clients/testdata/tls/{name}.pem and {name}-key.pem (EC P-256, PKCS#8);
     * the SNI names clients send are added to {@code sniSeen}.
     */
    static SSLContext serverTls(String name, final List<String> sniSeen) {
        try {
            String keyPem = tlsFile(name + "-key.pem").replaceAll("-----[A-Z ]+-----", "").replaceAll("\\s", "");
            PrivateKey key = KeyFactory.getInstance("EC")
                    .generatePrivate(new PKCS8EncodedKeySpec(java.util.Base64.getDecoder().decode(keyPem)));
            Certificate cert = CertificateFactory.getInstance("X.509")
                    .generateCertificate(new java.io.ByteArrayInputStream(tlsFile(name + ".pem").getBytes("US-ASCII")));
            KeyStore ks = KeyStore.getInstance("PKCS12");
            ks.load(null, null);
            ks.setKeyEntry("server", key, "pw".toCharArray(), new Certificate[] {cert});
            KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
            kmf.init(ks, "pw".toCharArray());
            final X509ExtendedKeyManager km = (X509ExtendedKeyManager) kmf.getKeyManagers()[0];
            X509ExtendedKeyManager recording = new X509ExtendedKeyManager() {
                @Override
                public String chooseEngineServerAlias(String keyType, Principal[] issuers, SSLEngine engine) {
                    SSLSession hs = engine.getHandshakeSession();
                    if (hs instanceof ExtendedSSLSession) {
                        for (SNIServerName n : ((ExtendedSSLSession) hs).getRequestedServerNames()) {
                            if (n instanceof SNIHostName) sniSeen.add(((SNIHostName) n).getAsciiName());
                        }
                    }
                    return km.chooseEngineServerAlias(keyType, issuers, engine);
                }

                @Override
                public String[] getClientAliases(String keyType, Principal[] issuers) {
                    return km.getClientAliases(keyType, issuers);
                }

                @Override
                public String chooseClientAlias(String[] keyType, Principal[] issuers, Socket socket) {
                    return km.chooseClientAlias(keyType, issuers, socket);
                }

                @Override
                public String[] getServerAliases(String keyType, Principal[] issuers) {
                    return km.getServerAliases(keyType, issuers);
                }

                @Override
                public String chooseServerAlias(String keyType, Principal[] issuers, Socket socket) {
                    return km.chooseServerAlias(keyType, issuers, socket);
                }

                @Override
                public X509Certificate[] getCertificateChain(String alias) {
                    return km.getCertificateChain(alias);
                }

                @Override
                public PrivateKey getPrivateKey(String alias) {
                    return km.getPrivateKey(alias);
                }
            };
            SSLContext ctx = SSLContext.getInstance("TLS");
            ctx.init(new KeyManager[] {recording}, null, null);
            return ctx;
        } catch (Exception e) {
            throw new IllegalStateException("test TLS setup failed", e);
        }
    }

    /**
     * A fake HTTPDNS server on 127.0.0.1 with an ephemeral port, over HTTPS with the given test
     * certificate ("server" by default: DNS:resolver.test, IP:127.0.0.1, signed by the test CA).
     */
    static final class FakeServer implements Closeable {
        final HttpServer server;
        final AtomicInteger resolveCount = new AtomicInteger();
        /** SNI host names clients sent. */
        final List<String> sniSeen = new CopyOnWriteArrayList<String>();
        /** Client ports seen: one per TCP connection (keep-alive reuses one). */
        final Set<Integer> clientPorts = Collections.newSetFromMap(new ConcurrentHashMap<Integer, Boolean>());

        final List<Map<String, String>> resolveQueries = new CopyOnWriteArrayList<Map<String, String>>();
        final List<String> reportBodies = new CopyOnWriteArrayList<String>();
        volatile Responder responder;
        volatile int reportStatus = 200;

        FakeServer(Responder r) throws IOException {
            this(r, "server");
        }

        /** {@code cert}: a certificate name under clients/testdata/tls, or null for plain HTTP. */
        FakeServer(Responder r, String cert) throws IOException {
            responder = r;
            if (cert == null) {
                server = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 50);
            } else {
                HttpsServer s = HttpsServer.create(new InetSocketAddress("127.0.0.1", 0), 50);
                s.setHttpsConfigurator(new HttpsConfigurator(serverTls(cert, sniSeen)));
                server = s;
            }
            server.setExecutor(Executors.newCachedThreadPool());
            server.createContext("/resolve", new HttpHandler() {
                @Override
                public void handle(HttpExchange ex) throws IOException {
                    Map<String, String> q = parseQuery(ex.getRequestURI().getRawQuery());
                    clientPorts.add(ex.getRemoteAddress().getPort());
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

        /** "127.0.0.1:port": no scheme, so the SDK uses https. */
        String address() {
            return "127.0.0.1:" + server.getAddress().getPort();
        }

        int port() {
            return server.getAddress().getPort();
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

    /**
     * A config builder with test-friendly defaults: fake clock and system DNS, no background tick,
     * the test CA as the only trust anchor, a fixed IP stack, quiet logs.
     */
    static HttpDnsConfig.Builder config(FakeClock clock, FakeSystemDns sys, String... servers) {
        // Generous budget: the first TLS handshake of a cold JVM on a loaded machine can take a second.
        return HttpDnsConfig.builder(servers).clock(clock).systemDns(sys).tickIntervalMs(0)
                .timeoutMs(5000).readTimeoutMs(4000).connectTimeoutMs(2000)
                .trustedCertificatesPem(caPem()).ipStackDetector(BOTH_STACKS).logger(Logger.NONE);
    }

    static final IpStackDetector BOTH_STACKS = new IpStackDetector() {
        @Override
        public String queryType() {
            return "A,AAAA";
        }
    };

    /** Records what the SDK logs. */
    static final class RecordingLogger implements Logger {
        final List<String> messages = new CopyOnWriteArrayList<String>();
        final List<Throwable> errors = new CopyOnWriteArrayList<Throwable>();

        @Override
        public void log(Level level, String message, Throwable error) {
            messages.add(level + " " + message);
            if (error != null) errors.add(error);
        }
    }

    /** Live threads of one client (workers and timer). */
    static int sdkThreads(HttpDnsClient client) {
        int n = 0;
        for (Thread t : Thread.getAllStackTraces().keySet()) {
            if (t.isAlive() && t.getName().startsWith(client.threadPrefix())) n++;
        }
        return n;
    }
}
