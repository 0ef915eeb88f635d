package io.httpdns.sdk;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertNotNull;
import static org.junit.Assert.assertTrue;

import io.httpdns.sdk.TestSupport.FakeClock;
import io.httpdns.sdk.TestSupport.FakeServer;
import io.httpdns.sdk.TestSupport.FakeSystemDns;
import io.httpdns.sdk.TestSupport.RecordingLogger;
import java.io.File;
import java.nio.file.Files;
import org.junit.After;
import org.junit.Before;
import org.junit.Test;

/** The cache survives a client restart through a CacheStore; old entries are dropped on load. */
public class PersistentCacheTest {
    private static final String API = "api.example.com";
    private final FakeClock clock = new FakeClock();
    private final FakeSystemDns sys = new FakeSystemDns();
    private FakeServer server;
    private File dir;
    private File file;

    @Before
    public void setUp() throws Exception {
        server = FakeServer.serving("resolve_single.json");
        dir = Files.createTempDirectory("httpdns-cache").toFile();
        file = new File(dir, "httpdns-cache.json");
    }

    @After
    public void tearDown() {
        server.close();
        File[] files = dir.listFiles();
        if (files != null) for (File f : files) f.delete();
        dir.delete();
    }

    private HttpDnsClient client(RecordingLogger logger) {
        return new HttpDnsClient(TestSupport.config(clock, sys, server.address()).maxStaleMs(600000)
                .cacheStore(new FileCacheStore(file)).logger(logger).build());
    }

    @Test
    public void cacheSurvivesAClientRestart() {
        HttpDnsClient first = client(new RecordingLogger());
        assertEquals(HostAnswer.Source.HTTPDNS, first.resolve(API).source);
        first.close();
        assertTrue(file.isFile());
        assertEquals(1, server.resolveCount.get());

        clock.advance(10000);
        HttpDnsClient second = client(new RecordingLogger());
        try {
            HostAnswer a = second.resolveNonBlocking(API);
            assertEquals(HostAnswer.Source.CACHE, a.source);
            assertEquals("gz-telecom", a.zone);
            assertEquals(2, a.fallback.size());
            assertEquals(1, server.resolveCount.get());
            assertTrue(second.currentEpoch() > 0);
            // TTL counts from when it was fetched, not from the restart.
            clock.advance(51000);
            assertEquals(HostAnswer.Source.STALE, second.peek(API).source);
        } finally {
            second.close();
        }
    }

    @Test
    public void entriesPastMaxStalenessAreDroppedOnLoad() {
        HttpDnsClient first = client(new RecordingLogger());
        first.resolve(API);
        first.close();

        clock.advance(60000 + 600000 + 1); // TTL + maxStaleMs
        HttpDnsClient second = client(new RecordingLogger());
        try {
            assertEquals(HostAnswer.Source.NONE, second.resolveNonBlocking(API).source);
        } finally {
            second.close();
        }
    }

    @Test
    public void corruptSnapshotStartsEmptyAndSaysSo() throws Exception {
        Files.write(file.toPath(), "{not json".getBytes("UTF-8"));
        RecordingLogger logger = new RecordingLogger();
        HttpDnsClient c = client(logger);
        try {
            assertEquals(HostAnswer.Source.NONE, c.resolveNonBlocking("x.example.com").source);
            assertNotNull(c.lastError());
            assertFalse(logger.messages.isEmpty());
        } finally {
            c.close();
        }
    }
}
