package io.httpdns.sdk;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;

import io.httpdns.sdk.TestSupport.FakeClock;
import io.httpdns.sdk.TestSupport.FakeServer;
import io.httpdns.sdk.TestSupport.FakeSystemDns;
import java.util.Arrays;
import org.junit.Test;

public class FallbackTest {
    private static final String API = "api.example.com";

    @Test
    public void nextAddressesWalksPrimaryThenFallbackZonesWithoutNewQuery() throws Exception {
        FakeServer server = FakeServer.serving("resolve_single.json");
        HttpDnsClient client = new HttpDnsClient(TestSupport.config(new FakeClock(), new FakeSystemDns(),
                server.address()).build());
        try {
            assertTrue(client.nextAddresses(API, "203.0.113.10").isEmpty()); // nothing cached yet
            HostAnswer a = client.resolve(API);
            assertEquals(Arrays.asList("sh-bgp", "bj-unicom"),
                    Arrays.asList(a.fallback.get(0).zone, a.fallback.get(1).zone));
            assertEquals(Arrays.asList("203.0.113.10", "203.0.113.11", "2001:db8:10::1", "198.51.100.10",
                    "2001:db8:20::1", "198.51.100.20", "198.51.100.21"), a.allAddresses());

            assertEquals(Arrays.asList("203.0.113.11", "2001:db8:10::1", "198.51.100.10", "2001:db8:20::1",
                    "198.51.100.20", "198.51.100.21"), client.nextAddresses(API, "203.0.113.10"));
            assertEquals(Arrays.asList("198.51.100.10", "2001:db8:20::1", "198.51.100.20", "198.51.100.21"),
                    client.nextAddresses(API, "2001:db8:10::1"));
            assertEquals(Arrays.asList("198.51.100.20", "198.51.100.21"),
                    client.nextAddresses("API.EXAMPLE.COM", "2001:db8:20::1"));
            assertTrue(client.nextAddresses(API, "198.51.100.21").isEmpty());
            assertEquals(7, client.nextAddresses(API, "192.0.2.99").size()); // unknown ip: everything
            assertEquals(1, server.resolveCount.get());
        } finally {
            client.close();
            server.close();
        }
    }

    @Test
    public void failoverAnswerKeepsRemainingZones() throws Exception {
        FakeServer server = FakeServer.serving("resolve_failover.json");
        HttpDnsClient client = new HttpDnsClient(TestSupport.config(new FakeClock(), new FakeSystemDns(),
                server.address()).build());
        try {
            HostAnswer a = client.resolve(API);
            assertTrue(a.failover);
            assertEquals("sh-bgp", a.zone);
            assertEquals(30, a.ttl);
            assertEquals(Arrays.asList("2001:db8:20::1", "198.51.100.20", "2001:db8:30::1"),
                    client.nextAddresses(API, "198.51.100.10"));
            assertEquals("198.51.100.200", client.lastResponse().clientIp);
            assertEquals("mobile", client.lastResponse().geo.carrier);
        } finally {
            client.close();
            server.close();
        }
    }
}
