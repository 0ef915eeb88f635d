package io.httpdns.sdk;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;

import io.httpdns.sdk.TestSupport.FakeClock;
import io.httpdns.sdk.TestSupport.FakeServer;
import io.httpdns.sdk.TestSupport.FakeSystemDns;
import io.httpdns.sdk.TestSupport.Reply;
import io.httpdns.sdk.TestSupport.Responder;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.Test;

public class ConcurrencyTest {
    @Test
    public void concurrentCallersShareOneRequest() throws Exception {
        final String body = TestSupport.fixture("resolve_single.json");
        FakeServer server = new FakeServer(new Responder() {
            @Override
            public Reply reply(Map<String, String> q) {
                return new Reply(200, body).delay(300);
            }
        });
        final HttpDnsClient client = new HttpDnsClient(TestSupport.config(new FakeClock(), new FakeSystemDns(),
                server.address()).build());
        ExecutorService pool = Executors.newFixedThreadPool(16);
        try {
            List<Future<HostAnswer>> fs = new ArrayList<Future<HostAnswer>>();
            for (int i = 0; i < 16; i++) {
                fs.add(pool.submit(new Callable<HostAnswer>() {
                    @Override
                    public HostAnswer call() {
                        return client.resolve("api.example.com");
                    }
                }));
            }
            for (Future<HostAnswer> f : fs) {
                HostAnswer a = f.get();
                assertFalse(a.isEmpty());
                assertEquals("gz-telecom", a.zone);
            }
            assertEquals(1, server.resolveCount.get());
        } finally {
            pool.shutdownNow();
            client.close();
            server.close();
        }
    }
}
