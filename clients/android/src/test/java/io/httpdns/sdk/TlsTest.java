package io.httpdns.sdk;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import io.httpdns.sdk.TestSupport.FakeClock;
import io.httpdns.sdk.TestSupport.FakeServer;
import io.httpdns.sdk.TestSupport.FakeSystemDns;
import io.httpdns.sdk.TestSupport.RecordingLogger;
import io.httpdns.sdk.TestSupport.Reply;
import io.httpdns.sdk.TestSupport.Responder;
import java.io.IOException;
import java.util.Arrays;
import java.util.Map;
import org.junit.After;
import org.junit.Test;

/** HTTPS to resolvers addressed by IP: names, trust anchors, pins, and no cleartext fallback. */
public class TlsTest {
    private static final String API = "api.example.com";
    private final FakeClock clock = new FakeClock();
    private final FakeSystemDns sys = new FakeSystemDns().put(API, "192.0.2.1");
    private final RecordingLogger logger = new RecordingLogger();
    private FakeServer server;
    private HttpDnsClient client;

    @After
    public void tearDown() {
        if (client != null) client.close();
        if (server != null) server.close();
    }

    private FakeServer start(String cert) throws IOException {
        final String body = TestSupport.fixture("resolve_single.json");
        server = new FakeServer(new Responder() {
            @Override
            public Reply reply(Map<String, String> q) {
                return new Reply(200, body);
            }
        }, cert);
        return server;
    }

    private HttpDnsClient client(HttpDnsConfig.Builder b) {
        client = new HttpDnsClient(b.logger(logger).build());
        return client;
    }

    /** The resolver was never asked, the error says which check failed, the logger got it. */
    private void assertRejected(HttpDnsTlsException.Kind kind) {
        HostAnswer a = client.resolve(API);
        assertEquals(HostAnswer.Source.SYSTEM, a.source); // degraded, never an unverified answer
        assertEquals(Arrays.asList("192.0.2.1"), a.ips);
        assertEquals(0, server.resolveCount.get());
        Throwable e = client.lastError();
        assertTrue(String.valueOf(e), e instanceof HttpDnsTlsException);
        assertEquals(kind, ((HttpDnsTlsException) e).kind());
        boolean logged = false;
        for (Throwable t : logger.errors) logged |= t instanceof HttpDnsTlsException && ((HttpDnsTlsException) t).kind() == kind;
        assertTrue("logger got the TLS failure: " + logger.messages, logged);
    }

    @Test
    public void rightServerNameGivesHttpDnsAnswerAndIsSentAsSni() throws Exception {
        start("name-only"); // DNS:resolver.test only, no IP in the certificate
        client(TestSupport.config(clock, sys, "https://" + server.address()).tlsServerName("resolver.test"));
        HostAnswer a = client.resolve(API);
        assertEquals(String.valueOf(client.lastError()), HostAnswer.Source.HTTPDNS, a.source);
        assertEquals(1, server.resolveCount.get());
        assertEquals(Arrays.asList("resolver.test"), server.sniSeen);
    }

    @Test
    public void defaultChecksTheCertificateAgainstTheIp() throws Exception {
        start("server"); // carries IP:127.0.0.1
        client(TestSupport.config(clock, sys, server.address()));
        assertEquals(HostAnswer.Source.HTTPDNS, client.resolve(API).source);
        assertTrue("no SNI for an IP", server.sniSeen.isEmpty());
    }

    @Test
    public void certificateWithoutTheIpIsANameMismatchByDefault() throws Exception {
        start("name-only");
        client(TestSupport.config(clock, sys, server.address()));
        assertRejected(HttpDnsTlsException.Kind.NAME_MISMATCH);
    }

    @Test
    public void wrongServerNameIsRejected() throws Exception {
        start("server");
        client(TestSupport.config(clock, sys, server.address()).tlsServerName("other.test"));
        assertRejected(HttpDnsTlsException.Kind.NAME_MISMATCH);
    }

    @Test
    public void untrustedCertificateIsRejected() throws Exception {
        start("untrusted"); // right names, signed by a CA the client does not trust
        client(TestSupport.config(clock, sys, server.address()));
        assertRejected(HttpDnsTlsException.Kind.UNTRUSTED);
    }

    @Test
    public void wrongPinIsRejectedAndTheRightOneAccepted() throws Exception {
        start("server");
        client(TestSupport.config(clock, sys, server.address())
                .pinSha256("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="));
        assertRejected(HttpDnsTlsException.Kind.PIN_MISMATCH);
        client.close();

        String caPin = Tls.spkiSha256(Tls.parsePem(TestSupport.caPem()).get(0));
        client(TestSupport.config(clock, sys, server.address()).pinSha256(caPin));
        HostAnswer a = client.resolve(API);
        assertEquals(String.valueOf(client.lastError()), HostAnswer.Source.HTTPDNS, a.source);
    }

    @Test
    public void explicitHttpWorksAndWarnsOnce() throws Exception {
        start(null);
        client(TestSupport.config(clock, sys, "http://" + server.address()));
        assertEquals(HostAnswer.Source.HTTPDNS, client.resolve(API).source);
        client.clearCache();
        assertEquals(HostAnswer.Source.HTTPDNS, client.resolve(API).source);
        int warnings = 0;
        for (String m : logger.messages) if (m.startsWith("WARN") && m.contains("cleartext")) warnings++;
        assertEquals(1, warnings);
    }

    @Test
    public void entryWithoutSchemeMeansHttpsAndNeverFallsBackToHttp() throws Exception {
        start(null); // a cleartext server: an https client must fail, not downgrade
        client(TestSupport.config(clock, sys, server.address()).readTimeoutMs(500).timeoutMs(1500));
        HostAnswer a = client.resolve(API);
        assertEquals(HostAnswer.Source.SYSTEM, a.source);
        // The cleartext server never saw a request: the client only ever spoke TLS to it.
        assertEquals(0, server.resolveCount.get());
        assertTrue(client.lastError() != null);
    }

    @Test
    public void serverEntries() {
        assertEquals("https://203.0.113.53:443", ServerEndpoint.parse("https://203.0.113.53").baseUrl);
        assertEquals("https://203.0.113.53:8443", ServerEndpoint.parse("https://203.0.113.53:8443/").baseUrl);
        assertEquals("https://203.0.113.53:443", ServerEndpoint.parse("203.0.113.53").baseUrl);
        assertEquals("https://[2001:db8::53]:8443", ServerEndpoint.parse("[2001:db8::53]:8443").baseUrl);
        assertEquals("2001:db8::53", ServerEndpoint.parse("[2001:db8::53]:8443").bareHost());
        assertFalse(ServerEndpoint.parse("http://203.0.113.53").https);
        for (String bad : new String[] {"ftp://203.0.113.53", "", "https://", "https://203.0.113.53/?x=1"}) {
            try {
                ServerEndpoint.parse(bad);
                fail("accepted " + bad);
            } catch (IllegalArgumentException expected) {
                // a clear message, not a later failure
            }
        }
    }

    @Test
    public void badTlsSettingsAreRejectedAtBuildTime() {
        String[][] cases = {{"pin", "not-a-pin"}, {"pem", "not pem"}, {"name", "203.0.113.53"}};
        for (String[] c : cases) {
            HttpDnsConfig.Builder b = HttpDnsConfig.builder("203.0.113.53");
            if (c[0].equals("pin")) b.pinSha256(c[1]);
            if (c[0].equals("pem")) b.trustedCertificatesPem(c[1]);
            if (c[0].equals("name")) b.tlsServerName(c[1]);
            try {
                b.build();
                fail("accepted " + c[0] + " " + c[1]);
            } catch (IllegalArgumentException expected) {
                // rejected with a message
            }
        }
    }

    @Test
    public void spkiPinsMatchTheSharedVectors() throws Exception {
        org.json.JSONObject pins = new org.json.JSONObject(TestSupport.tlsFile("pins.json"));
        for (String cert : new String[] {"ca.pem", "server.pem"}) {
            assertEquals(cert, pins.getString(cert), Tls.spkiSha256(Tls.parsePem(TestSupport.tlsFile(cert)).get(0)));
        }
    }

    @Test
    public void wildcardNamesMatchOneLabel() {
        assertTrue(Tls.dnsMatches("*.example.com", "dns.example.com"));
        assertFalse(Tls.dnsMatches("*.example.com", "a.b.example.com"));
        assertFalse(Tls.dnsMatches("*.example.com", "example.com"));
        assertFalse(Tls.dnsMatches("*.com", "example.com"));
        assertTrue(Tls.dnsMatches("Resolver.Test", "resolver.test"));
    }

    @Test
    public void connectionIsKeptAlive() throws Exception {
        start("server");
        client(TestSupport.config(clock, sys, server.address()));
        for (int i = 0; i < 5; i++) {
            client.clearCache();
            assertEquals(HostAnswer.Source.HTTPDNS, client.resolve(API).source);
        }
        assertEquals(5, server.resolveCount.get());
        assertEquals("one TCP connection for five requests", 1, server.clientPorts.size());
    }
}
