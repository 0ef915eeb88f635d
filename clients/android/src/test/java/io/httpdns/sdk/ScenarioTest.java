package io.httpdns.sdk;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNotNull;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertTrue;

import io.httpdns.sdk.TestSupport.FakeClock;
import io.httpdns.sdk.TestSupport.FakeServer;
import io.httpdns.sdk.TestSupport.FakeSystemDns;
import io.httpdns.sdk.TestSupport.Reply;
import io.httpdns.sdk.TestSupport.Responder;
import java.io.File;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import org.json.JSONArray;
import org.json.JSONObject;
import org.junit.Test;
import org.junit.runner.RunWith;
import org.junit.runners.Parameterized;
import org.junit.runners.Parameterized.Parameters;

/**
 * Replays the behaviour scenarios in clients/testdata/scenarios (the iOS tests replay the same
 * files), so the two SDKs cannot drift. The format is described in clients/testdata/README.md.
 */
@RunWith(Parameterized.class)
public class ScenarioTest {
    private final String name;

    public ScenarioTest(String name) {
        this.name = name;
    }

    @Parameters(name = "{0}")
    public static Collection<Object[]> scenarios() {
        File dir = new File(TestSupport.testdataDir(), "scenarios");
        String[] files = dir.list();
        assertNotNull("no scenarios in " + dir, files);
        Arrays.sort(files);
        List<Object[]> out = new ArrayList<Object[]>();
        for (String f : files) if (f.endsWith(".json")) out.add(new Object[] {f});
        assertTrue("expected the six parity scenarios", out.size() >= 6);
        return out;
    }

    /** What one fake server currently answers. */
    private static final class Behaviour {
        volatile int status = 200;
        volatile String body = "{}";
        volatile boolean anyHost;
    }

    @Test
    public void replay() throws Exception {
        JSONObject sc = new JSONObject(new String(Files.readAllBytes(
                new File(new File(TestSupport.testdataDir(), "scenarios"), name).toPath()), "UTF-8"));
        FakeClock clock = new FakeClock();
        FakeSystemDns sys = new FakeSystemDns();
        JSONObject sd = sc.getJSONObject("system_dns");
        for (Iterator<?> it = sd.keys(); it.hasNext();) {
            String h = (String) it.next();
            JSONArray ips = sd.getJSONArray(h);
            String[] arr = new String[ips.length()];
            for (int i = 0; i < arr.length; i++) arr[i] = ips.getString(i);
            sys.put(h, arr);
        }
        JSONArray serverSpecs = sc.getJSONArray("servers");
        List<FakeServer> servers = new ArrayList<FakeServer>();
        final List<Behaviour> behaviours = new ArrayList<Behaviour>();
        HttpDnsClient client = null;
        try {
            String[] addrs = new String[serverSpecs.length()];
            for (int i = 0; i < serverSpecs.length(); i++) {
                final Behaviour b = new Behaviour();
                behaviours.add(b);
                FakeServer s = new FakeServer(new Responder() {
                    @Override
                    public Reply reply(Map<String, String> q) {
                        String body = b.anyHost ? b.body.replace("api.example.com", q.get("host")) : b.body;
                        return new Reply(b.status, body);
                    }
                }, serverSpecs.getJSONObject(i).getString("cert"));
                servers.add(s);
                addrs[i] = s.address();
            }
            client = new HttpDnsClient(configure(TestSupport.config(clock, sys, addrs), sc.getJSONObject("config")).build());
            JSONArray steps = sc.getJSONArray("steps");
            for (int i = 0; i < steps.length(); i++) {
                step(name + " step " + i, steps.getJSONObject(i), client, clock, servers, behaviours);
            }
        } finally {
            if (client != null) client.close();
            for (FakeServer s : servers) s.close();
        }
    }

    static HttpDnsConfig.Builder configure(HttpDnsConfig.Builder b, JSONObject c) throws Exception {
        if (c.has("max_stale_ms")) b.maxStaleMs(c.getLong("max_stale_ms"));
        if (c.has("negative_ttl_ms")) b.negativeTtlMs(c.getLong("negative_ttl_ms"));
        if (c.has("tls_server_name")) b.tlsServerName(c.getString("tls_server_name"));
        if (c.has("backoff_base_ms")) b.backoffMs(c.getLong("backoff_base_ms"), c.getLong("backoff_max_ms"));
        return b;
    }

    private static void step(String where, JSONObject st, final HttpDnsClient client, FakeClock clock,
                             final List<FakeServer> servers, List<Behaviour> behaviours) throws Exception {
        if (st.has("serve")) {
            JSONObject s = st.getJSONObject("serve");
            Behaviour b = behaviours.get(s.getInt("server"));
            b.status = s.optInt("status", 200);
            b.anyHost = s.optBoolean("any_host", false);
            if (s.has("fixture")) {
                String body = TestSupport.fixture(s.getString("fixture"));
                b.body = s.has("epoch") ? TestSupport.withEpoch(body, s.getLong("epoch")) : body;
            } else {
                b.body = "{\"error\":\"internal\",\"message\":\"scenario failure\"}";
            }
        } else if (st.has("advance_ms")) {
            clock.advance(st.getLong("advance_ms"));
        } else if (st.has("resolve")) {
            check(where, st.getJSONObject("expect"), client.resolve(st.getString("resolve")), client, servers);
        } else if (st.has("resolve_non_blocking")) {
            check(where, st.getJSONObject("expect"), client.resolveNonBlocking(st.getString("resolve_non_blocking")),
                    client, servers);
        } else if (st.has("peek")) {
            check(where, st.getJSONObject("expect"), client.peek(st.getString("peek")), client, servers);
        } else if (st.has("await_peek")) {
            final String host = st.getString("await_peek");
            final String source = st.getJSONObject("expect").getString("source");
            TestSupport.await(where + ": peek " + host + " = " + source, 10000, new TestSupport.Cond() {
                @Override
                public boolean ok() {
                    HostAnswer a = client.peek(host);
                    return a != null && a.source.name().equals(source);
                }
            });
        } else if (st.has("await_preferred_server")) {
            final String want = client.config().servers.get(st.getInt("await_preferred_server"));
            TestSupport.await(where + ": preferred server " + want, 10000, new TestSupport.Cond() {
                @Override
                public boolean ok() {
                    return client.preferredServer().equals(want);
                }
            });
        } else if (st.has("await_requests")) {
            final JSONArray want = st.getJSONArray("await_requests");
            TestSupport.await(where + ": requests " + want, 10000, new TestSupport.Cond() {
                @Override
                public boolean ok() {
                    return requests(servers).equals(list(want));
                }
            });
        } else {
            throw new IllegalArgumentException(where + ": unknown step " + st);
        }
    }

    private static void check(String where, JSONObject e, HostAnswer a, HttpDnsClient client, List<FakeServer> servers)
            throws Exception {
        String ctx = where + " (" + a + ", last error " + client.lastError() + ")";
        if (e.has("source")) {
            if (e.isNull("source")) assertNull(ctx, a); else assertEquals(ctx, e.getString("source"), a.source.name());
        }
        if (e.has("ips")) assertEquals(ctx, list(e.getJSONArray("ips")), new ArrayList<Object>(a.ips));
        if (e.has("error")) assertEquals(ctx, e.getString("error"), a.error);
        if (e.has("epoch")) assertEquals(ctx, e.getLong("epoch"), client.currentEpoch());
        if (e.has("requests")) assertEquals(ctx, list(e.getJSONArray("requests")), requests(servers));
        if (e.has("error_kind")) {
            Throwable t = client.lastError();
            assertTrue(ctx, t instanceof HttpDnsTlsException);
            assertEquals(ctx, e.getString("error_kind"), ((HttpDnsTlsException) t).kind().name());
        }
    }

    private static List<Object> requests(List<FakeServer> servers) {
        List<Object> out = new ArrayList<Object>();
        for (FakeServer s : servers) out.add(String.valueOf(s.resolveCount.get()));
        return out;
    }

    private static List<Object> list(JSONArray a) {
        List<Object> out = new ArrayList<Object>();
        for (int i = 0; i < a.length(); i++) out.add(String.valueOf(a.opt(i)));
        return out;
    }
}
