package io.httpdns.sdk;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;

import io.httpdns.sdk.TestSupport.FakeClock;
import io.httpdns.sdk.TestSupport.FakeServer;
import io.httpdns.sdk.TestSupport.FakeSystemDns;
import java.util.Arrays;
import org.junit.Test;

/** What is answered without asking the resolver: IP literals; and which families are asked for. */
public class LocalAnswersTest {
    @Test
    public void ipLiteralsAreNeverSentToTheServer() throws Exception {
        FakeServer server = FakeServer.serving("resolve_single.json");
        FakeSystemDns sys = new FakeSystemDns();
        HttpDnsClient client = new HttpDnsClient(TestSupport.config(new FakeClock(), sys, server.address()).build());
        try {
            HostAnswer v4 = client.resolve("203.0.113.7");
            assertEquals(Arrays.asList("203.0.113.7"), v4.ips);
            HostAnswer v6 = client.resolveNonBlocking("[2001:db8::7]");
            assertEquals(Arrays.asList("2001:db8::7"), v6.ipsv6);
            assertEquals(HostAnswer.Source.SYSTEM, v6.source);
            assertEquals(0, server.resolveCount.get());
            assertTrue(sys.lookups.isEmpty());
        } finally {
            client.close();
            server.close();
        }
    }

    @Test
    public void literalDetection() {
        for (String s : new String[] {"203.0.113.7", "0.0.0.0", "::1", "[2001:db8::1]", "::ffff:192.0.2.1"}) {
            assertTrue(s, IpLiteral.is(s));
        }
        for (String s : new String[] {"api.example.com", "256.1.1.1", "1.2.3", "1.2.3.4.5", "cafe", "a:b.example"}) {
            assertFalse(s, IpLiteral.is(s));
        }
    }

    @Test
    public void autoQueryTypeAsksOnlyForUsableFamilies() throws Exception {
        FakeServer server = FakeServer.serving("resolve_single.json");
        final String[] stack = {"A"};
        HttpDnsClient client = new HttpDnsClient(TestSupport.config(new FakeClock(), new FakeSystemDns(), server.address())
                .ipStackDetector(new IpStackDetector() {
                    @Override
                    public String queryType() {
                        return stack[0];
                    }
                }).build());
        try {
            client.resolve("api.example.com");
            assertEquals("A", server.lastQuery().get("type"));
            stack[0] = "AAAA";
            client.onNetworkChanged(); // the stack is detected again on the new network
            client.resolve("api.example.com");
            assertEquals("AAAA", server.lastQuery().get("type"));
        } finally {
            client.close();
            server.close();
        }
        assertEquals("A", IpStackDetector.typeFor(true, false));
        assertEquals("AAAA", IpStackDetector.typeFor(false, true));
        assertEquals("A,AAAA", IpStackDetector.typeFor(true, true));
        assertEquals("A,AAAA", IpStackDetector.typeFor(false, false));
    }
}
