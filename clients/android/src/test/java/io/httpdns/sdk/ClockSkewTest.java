package io.httpdns.sdk;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;

import io.httpdns.sdk.TestSupport.FakeClock;
import io.httpdns.sdk.TestSupport.FakeServer;
import io.httpdns.sdk.TestSupport.FakeSystemDns;
import io.httpdns.sdk.TestSupport.Reply;
import io.httpdns.sdk.TestSupport.Responder;
import java.util.Map;
import org.junit.Test;

/** Signatures use the server's time (Date header), so a device clock 10 minutes off still gets answers. */
public class ClockSkewTest {
    @Test
    public void deviceClockTenMinutesBehindStillGetsSignedAnswers() throws Exception {
        final String body = TestSupport.fixture("resolve_single.json");
        // The server checks expiry against its own (real) time, like httpdns does.
        FakeServer server = new FakeServer(new Responder() {
            @Override
            public Reply reply(Map<String, String> q) {
                long now = System.currentTimeMillis() / 1000;
                long t = Long.parseLong(q.get("t"));
                boolean ok = t >= now && t <= now + 3600
                        && Signer.sign("s3cret", q.get("host"), t).equals(q.get("sign"));
                return ok ? new Reply(200, body) : new Reply(403, "{\"error\":\"forbidden\",\"message\":\"signature expired\"}");
            }
        });
        FakeClock clock = new FakeClock();
        clock.now.set(System.currentTimeMillis() - 10 * 60 * 1000L);
        HttpDnsClient client = new HttpDnsClient(TestSupport.config(clock, new FakeSystemDns(), server.address())
                .secret("s3cret").signValiditySeconds(300).build());
        try {
            HostAnswer a = client.resolve("api.example.com");
            assertEquals(String.valueOf(client.lastError()), HostAnswer.Source.HTTPDNS, a.source);
            // One rejected request taught the client the server's time; the re-signed retry passed.
            assertEquals(2, server.resolveCount.get());
            long skew = client.clockSkewMs();
            assertTrue("skew " + skew, skew > 590000 && skew < 610000);

            client.clearCache();
            assertEquals(HostAnswer.Source.HTTPDNS, client.resolve("api.example.com").source);
            assertEquals("no retry once the skew is known", 3, server.resolveCount.get());
        } finally {
            client.close();
            server.close();
        }
    }
}
