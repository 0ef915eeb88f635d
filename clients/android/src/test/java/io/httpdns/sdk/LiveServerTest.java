package io.httpdns.sdk;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertNotNull;
import static org.junit.Assert.assertTrue;
import static org.junit.Assume.assumeTrue;

import io.httpdns.sdk.TestSupport.FakeSystemDns;
import java.io.File;
import java.nio.file.Files;
import org.junit.Test;

/**
 * Runs against the real httpdns server over TLS when .ci/test starts one: HTTPDNS_URL
 * (https://127.0.0.1:PORT), HTTPDNS_TLS_NAME (the name in its `httpdns tls self-signed --name`
 * certificate, which holds no IP) and HTTPDNS_CA (that certificate, trusted as the anchor).
 */
public class LiveServerTest {
    private static HttpDnsConfig.Builder live(String tlsName) throws Exception {
        String url = System.getenv("HTTPDNS_URL");
        assumeTrue("HTTPDNS_URL not set", url != null && !url.isEmpty());
        String ca = new String(Files.readAllBytes(new File(System.getenv("HTTPDNS_CA")).toPath()), "US-ASCII");
        return HttpDnsConfig.builder(url).tlsServerName(tlsName).trustedCertificatesPem(ca)
                .systemDns(new FakeSystemDns()).timeoutMs(5000).readTimeoutMs(4000).systemDnsBudgetMs(100)
                .tickIntervalMs(0).logger(Logger.NONE);
    }

    @Test
    public void resolvesApiExampleComOverTlsFromRealServer() throws Exception {
        HttpDnsClient client = new HttpDnsClient(live(System.getenv("HTTPDNS_TLS_NAME")).build());
        try {
            assertTrue(client.config().servers.get(0).startsWith("https://"));
            HostAnswer a = client.resolve("api.example.com");
            assertEquals(String.valueOf(client.lastError()), HostAnswer.Source.HTTPDNS, a.source);
            assertFalse(a.ips.isEmpty());
            assertTrue(a.ttl > 0);
            assertNotNull(a.zone);
            assertTrue(a.epoch > 0);
            assertTrue(client.currentEpoch() > 0);
            // The real server sends Date; this machine's clock agrees with it.
            assertEquals(0, client.clockSkewMs());
            // A host the server does not serve is remembered as such.
            assertEquals(HostAnswer.Source.NONE, client.resolve("not-served.example.org").source);
        } finally {
            client.close();
        }
    }

    @Test
    public void realServerWithAnotherNameIsRejected() throws Exception {
        HttpDnsClient client = new HttpDnsClient(live("wrong.test").build());
        try {
            HostAnswer a = client.resolve("api.example.com");
            assertEquals(HostAnswer.Source.NONE, a.source);
            assertTrue(String.valueOf(client.lastError()), client.lastError() instanceof HttpDnsTlsException);
            assertEquals(HttpDnsTlsException.Kind.NAME_MISMATCH, ((HttpDnsTlsException) client.lastError()).kind());
        } finally {
            client.close();
        }
    }
}
