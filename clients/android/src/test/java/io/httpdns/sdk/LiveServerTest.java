package io.httpdns.sdk;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertNotNull;
import static org.junit.Assert.assertTrue;
import static org.junit.Assume.assumeTrue;

import org.junit.Test;

/** Runs against a real httpdns server only when HTTPDNS_URL (e.g. http://127.0.0.1:8053) is set. */
public class LiveServerTest {
    @Test
    public void resolvesApiExampleComFromRealServer() {
        String url = System.getenv("HTTPDNS_URL");
        assumeTrue("HTTPDNS_URL not set", url != null && !url.isEmpty());
        HttpDnsClient client = new HttpDnsClient(HttpDnsConfig.builder(url).timeoutMs(5000)
                .readTimeoutMs(4000).systemDnsBudgetMs(100).tickIntervalMs(0).build());
        try {
            HostAnswer a = client.resolve("api.example.com");
            assertEquals(String.valueOf(client.lastError()), HostAnswer.Source.HTTPDNS, a.source);
            assertFalse(a.ips.isEmpty());
            assertTrue(a.ttl > 0);
            assertNotNull(a.zone);
            assertTrue(a.epoch > 0);
            assertTrue(client.currentEpoch() > 0);
        } finally {
            client.close();
        }
    }
}
