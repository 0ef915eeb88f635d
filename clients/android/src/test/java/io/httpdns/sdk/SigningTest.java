package io.httpdns.sdk;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertNotNull;

import io.httpdns.sdk.TestSupport.FakeClock;
import io.httpdns.sdk.TestSupport.FakeServer;
import io.httpdns.sdk.TestSupport.FakeSystemDns;
import java.util.Arrays;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;
import org.junit.After;
import org.junit.Before;
import org.junit.Test;

public class SigningTest {
    private final FakeClock clock = new FakeClock(); // 1764089000000 ms
    private FakeServer server;

    @Before
    public void setUp() throws Exception {
        server = FakeServer.serving("resolve_batch_unknown.json");
    }

    @After
    public void tearDown() {
        server.close();
    }

    /** Computed here with javax.crypto directly, independent of Signer. */
    private static String hmacHex(String key, String msg) throws Exception {
        Mac mac = Mac.getInstance("HmacSHA256");
        mac.init(new SecretKeySpec(key.getBytes("UTF-8"), "HmacSHA256"));
        StringBuilder sb = new StringBuilder();
        for (byte b : mac.doFinal(msg.getBytes("UTF-8"))) sb.append(String.format("%02x", b & 0xff));
        return sb.toString();
    }

    @Test
    public void knownVectors() throws Exception {
        // RFC 4231 test case 2.
        assertEquals("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
                Signer.hmacSha256Hex("Jefe", "what do ya want for nothing?"));
        assertEquals(hmacHex("s3cret", "api.example.com\n1764089300"),
                Signer.sign("s3cret", "api.example.com", 1764089300L));
        // Literal computed outside Java (Python hmac); also in clients/testdata/README.md for the other SDK.
        assertEquals("41fe5803bb23bcfbe9fe67216228baafc6d8d1dc645990de673f9ce5c9240d2d", Signer.sign("s3cret", "api.example.com", 1764089300L));
    }

    @Test
    public void signsBatchHostParamWithSecret() throws Exception {
        HttpDnsClient client = new HttpDnsClient(TestSupport.config(clock, new FakeSystemDns(), server.address())
                .secret("s3cret").build());
        try {
            client.resolveBatch(Arrays.asList("api.example.com", "img.example.com"));
            Map<String, String> q = server.lastQuery();
            assertEquals("api.example.com,img.example.com", q.get("host"));
            assertEquals("1764089300", q.get("t")); // now + 300 s
            assertEquals(hmacHex("s3cret", "api.example.com,img.example.com\n1764089300"), q.get("sign"));
        } finally {
            client.close();
        }
    }

    @Test
    public void anExplicitClientIpIsSignedToo() throws Exception {
        // The server signs host + "\n" + ip + "\n" + t when ip= is sent.
        HttpDnsClient client = new HttpDnsClient(TestSupport.config(clock, new FakeSystemDns(), server.address())
                .secret("s3cret").clientIp("202.96.128.86").build());
        try {
            client.resolveBatch(Arrays.asList("api.example.com"));
            Map<String, String> q = server.lastQuery();
            assertEquals("202.96.128.86", q.get("ip"));
            assertEquals(hmacHex("s3cret", "api.example.com\n202.96.128.86\n1764089300"), q.get("sign"));
        } finally {
            client.close();
        }
    }

    @Test
    public void tokenProviderSignsWithoutSecret() throws Exception {
        final CopyOnWriteArrayList<String> calls = new CopyOnWriteArrayList<String>();
        HttpDnsClient client = new HttpDnsClient(TestSupport.config(clock, new FakeSystemDns(), server.address())
                .signValiditySeconds(60)
                .tokenProvider(new TokenProvider() {
                    @Override
                    public String sign(String hostParam, long expiry) {
                        calls.add(hostParam + "|" + expiry);
                        return "abc123";
                    }
                }).build());
        try {
            assertNotNull(client.resolve("api.example.com"));
            assertEquals(Arrays.asList("api.example.com|1764089060"), calls);
            assertEquals("1764089060", server.lastQuery().get("t"));
            assertEquals("abc123", server.lastQuery().get("sign"));
        } finally {
            client.close();
        }
    }

    @Test
    public void unsignedWithoutSecret() throws Exception {
        HttpDnsClient client = new HttpDnsClient(TestSupport.config(clock, new FakeSystemDns(), server.address())
                .clientIp("198.51.100.200").build());
        try {
            client.resolve("api.example.com");
            Map<String, String> q = server.lastQuery();
            assertFalse(q.containsKey("t"));
            assertFalse(q.containsKey("sign"));
            assertEquals("198.51.100.200", q.get("ip"));
        } finally {
            client.close();
        }
    }
}
