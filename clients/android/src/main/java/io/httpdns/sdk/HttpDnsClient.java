package io.httpdns.sdk;

import java.io.Closeable;
import java.io.IOException;
import java.io.UnsupportedEncodingException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.URLEncoder;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.FutureTask;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * HTTPDNS client: resolves host names through {@code GET /resolve} on a list of HTTPDNS servers
 * (addressed by IP, so it never needs LocalDNS itself), caches answers, refreshes them in the
 * background, serves stale answers when the servers fail, and falls back to the system resolver.
 *
 * <p>Thread safe. {@code resolve*} never blocks its caller longer than
 * {@link HttpDnsConfig#timeoutMs}; network work runs on SDK daemon threads.
 */
public final class HttpDnsClient implements Closeable {
    private static final long NS_PER_MS = 1000000L;

    private final HttpDnsConfig cfg;
    private final Clock clock;
    private final ConcurrentHashMap<String, CacheEntry> cache = new ConcurrentHashMap<String, CacheEntry>();
    private final ConcurrentHashMap<String, FetchTask> inflight = new ConcurrentHashMap<String, FetchTask>();
    private final Set<String> refreshing = Collections.newSetFromMap(new ConcurrentHashMap<String, Boolean>());
    private final AtomicInteger preferredServer = new AtomicInteger();
    private final Object cacheLock = new Object();
    private long epoch; // guarded by cacheLock
    private final ReportBuffer reports;
    private final ExecutorService executor;
    private final ScheduledExecutorService scheduler;
    private volatile ResolveResponse lastResponse;
    private volatile Throwable lastError;

    private static final class CacheEntry {
        final HostAnswer answer;
        final long expiresAt;
        final long refreshAt;
        final long staleUntil;
        /** Read through {@code resolve*} since it was stored: worth refreshing in the background. */
        volatile boolean used;

        CacheEntry(HostAnswer a, long now, HttpDnsConfig cfg) {
            answer = a;
            long ttlMs = a.ttl * 1000L;
            expiresAt = now + ttlMs;
            refreshAt = now + (long) (ttlMs * cfg.refreshRatio);
            staleUntil = expiresAt + cfg.maxStaleMs;
        }
    }

    private final class FetchTask extends FutureTask<Map<String, HostAnswer>> {
        final String key;
        final List<String> hosts;

        FetchTask(Callable<Map<String, HostAnswer>> c, String key, List<String> hosts) {
            super(c);
            this.key = key;
            this.hosts = hosts;
        }

        void fail(Throwable e) {
            setException(e);
        }

        @Override
        protected void done() {
            inflight.remove(key, this);
            refreshing.removeAll(hosts);
        }
    }

    public HttpDnsClient(HttpDnsConfig cfg) {
        this.cfg = cfg;
        this.clock = cfg.clock;
        this.reports = new ReportBuffer(clock.nowMillis(), cfg.maxPendingReports);
        this.executor = Executors.newCachedThreadPool(daemon("httpdns-worker"));
        if (cfg.tickIntervalMs > 0) {
            scheduler = Executors.newSingleThreadScheduledExecutor(daemon("httpdns-tick"));
            scheduler.scheduleWithFixedDelay(new Runnable() {
                @Override
                public void run() {
                    try {
                        tick();
                    } catch (Throwable t) {
                        lastError = t;
                    }
                }
            }, cfg.tickIntervalMs, cfg.tickIntervalMs, TimeUnit.MILLISECONDS);
        } else {
            scheduler = null;
        }
        if (!cfg.preResolveHosts.isEmpty()) preResolve(cfg.preResolveHosts);
    }

    // ------------------------------------------------------------------ resolving

    /** Resolves one host. Never returns null; check {@link HostAnswer#source} / {@link HostAnswer#isEmpty()}. */
    public HostAnswer resolve(String host) {
        String h = normalize(host);
        return resolveBatch(Collections.singletonList(h)).get(h);
    }

    /**
     * Resolves several hosts with at most one request per {@link HttpDnsConfig#maxBatchSize} hosts.
     * The map is keyed by the lower-cased host name, in request order, and has an answer for every host.
     */
    public Map<String, HostAnswer> resolveBatch(Collection<String> hosts) {
        long deadline = System.nanoTime() + cfg.timeoutMs * NS_PER_MS;
        long httpDeadline = deadline - cfg.systemDnsBudgetMs * NS_PER_MS;
        LinkedHashSet<String> wanted = new LinkedHashSet<String>();
        for (String h : hosts) wanted.add(normalize(h));

        Map<String, HostAnswer> result = new HashMap<String, HostAnswer>();
        Map<String, CacheEntry> expired = new HashMap<String, CacheEntry>();
        Map<String, String> errors = new HashMap<String, String>();
        List<String> toFetch = new ArrayList<String>();
        List<String> toSystem = new ArrayList<String>();
        List<String> toRefresh = new ArrayList<String>();
        long now = clock.nowMillis();
        for (String h : wanted) {
            if (cfg.systemDnsFilter.useSystemDns(h)) {
                toSystem.add(h);
                continue;
            }
            CacheEntry e = cache.get(h);
            if (e != null && now < e.expiresAt) {
                e.used = true;
                result.put(h, e.answer.withSource(HostAnswer.Source.CACHE));
                if (now >= e.refreshAt) toRefresh.add(h);
            } else {
                toFetch.add(h);
                if (e != null) expired.put(h, e);
            }
        }
        if (!toRefresh.isEmpty()) refreshAsync(toRefresh);
        if (!toFetch.isEmpty()) {
            Map<String, HostAnswer> fetched = awaitFetch(toFetch, httpDeadline);
            now = clock.nowMillis();
            for (String h : toFetch) {
                HostAnswer a = fetched.get(h);
                CacheEntry old = expired.get(h);
                if (a != null && a.error == null && !a.isEmpty()) {
                    result.put(h, a);
                } else if (a == null && old != null && now <= old.staleUntil) {
                    result.put(h, old.answer.withSource(HostAnswer.Source.STALE));
                } else {
                    toSystem.add(h);
                    errors.put(h, a == null ? "httpdns_unavailable" : a.error != null ? a.error : "empty_answer");
                }
            }
        }
        if (!toSystem.isEmpty()) result.putAll(systemResolve(toSystem, deadline, errors));

        Map<String, HostAnswer> ordered = new LinkedHashMap<String, HostAnswer>();
        for (String h : wanted) ordered.put(h, result.get(h));
        return ordered;
    }

    /** The cached answer (fresh: CACHE, expired but within max staleness: STALE) or null. No network. */
    public HostAnswer peek(String host) {
        CacheEntry e = cache.get(normalize(host));
        if (e == null) return null;
        long now = clock.nowMillis();
        if (now < e.expiresAt) return e.answer.withSource(HostAnswer.Source.CACHE);
        if (now <= e.staleUntil) return e.answer.withSource(HostAnswer.Source.STALE);
        return null;
    }

    /**
     * Addresses to try after a connection to {@code failedIp} failed, from the cached answer and without
     * a new query: the rest of the primary addresses, then each fallback zone in order. Empty if the host
     * is not cached (call {@link #resolve} then).
     */
    public List<String> nextAddresses(String host, String failedIp) {
        HostAnswer a = peek(host);
        return a == null ? Collections.<String>emptyList() : a.nextAddresses(failedIp);
    }

    /** Fetches {@code hosts} in the background (batched) and caches them. */
    public Future<?> preResolve(Collection<String> hosts) {
        final List<String> list = new ArrayList<String>();
        for (String h : hosts) {
            String n = normalize(h);
            if (!cfg.systemDnsFilter.useSystemDns(n) && !list.contains(n)) list.add(n);
        }
        return submit(new Runnable() {
            @Override
            public void run() {
                for (List<String> chunk : chunks(list)) {
                    try {
                        fetch(chunk, taskDeadline());
                    } catch (IOException e) {
                        lastError = e;
                    }
                }
            }
        });
    }

    /** Drops every cached answer. */
    public void clearCache() {
        synchronized (cacheLock) {
            cache.clear();
        }
    }

    /** Call when the device's network changes: clears the cache, resets rotation, pre-resolves again. */
    public void onNetworkChanged() {
        clearCache();
        preferredServer.set(0);
        if (!cfg.preResolveHosts.isEmpty()) preResolve(cfg.preResolveHosts);
    }

    /** Housekeeping run by the background tick: refresh answers past the refresh point, flush reports. */
    public void tick() {
        refreshExpiring();
        flushReportsIfDue();
    }

    /**
     * Starts background refreshes for cached answers past {@link HttpDnsConfig#refreshRatio} of their TTL
     * that were read since they were stored (or are in the pre-resolve list). Returns how many hosts.
     */
    public int refreshExpiring() {
        long now = clock.nowMillis();
        List<String> due = new ArrayList<String>();
        for (Map.Entry<String, CacheEntry> me : cache.entrySet()) {
            CacheEntry e = me.getValue();
            if (now >= e.refreshAt && now <= e.staleUntil
                    && (e.used || cfg.preResolveHosts.contains(me.getKey()))) {
                due.add(me.getKey());
            }
        }
        return refreshAsync(due);
    }

    // ------------------------------------------------------------------ speed reports

    /**
     * Records how long a TCP connect to {@code ip} (an address of {@code host}) took, or that it failed.
     * Reports are batched and sent to {@code POST /report} at most once per report interval.
     */
    public void reportConnect(String host, String ip, long rttMs, boolean ok) {
        reports.add(normalize(host), ip, rttMs, ok);
        flushReportsIfDue();
    }

    /** Sends pending reports if the report interval has passed since the last send. */
    public boolean flushReportsIfDue() {
        return sendReports(reports.drain(clock.nowMillis(), cfg.reportIntervalMs, false));
    }

    /** Sends pending reports now (e.g. when the app goes to background). */
    public boolean flushReports() {
        return sendReports(reports.drain(clock.nowMillis(), cfg.reportIntervalMs, true));
    }

    /** Number of reports waiting to be sent. */
    public int pendingReports() {
        return reports.size();
    }

    /**
     * Optional active probe: TCP-connects to each primary address of the cached answer for {@code host}
     * on {@code port} and records the connect times with {@link #reportConnect}.
     */
    public Future<?> probe(final String host, final int port) {
        final HostAnswer a = peek(host);
        final List<String> addrs = a == null ? Collections.<String>emptyList() : a.addresses();
        return submit(new Runnable() {
            @Override
            public void run() {
                for (String ip : addrs) {
                    long t0 = System.nanoTime();
                    boolean ok = false;
                    Socket s = new Socket();
                    try {
                        s.connect(new InetSocketAddress(InetAddress.getByName(ip), port), cfg.probeTimeoutMs);
                        ok = true;
                    } catch (IOException e) {
                        ok = false;
                    } finally {
                        try {
                            s.close();
                        } catch (IOException ignored) {
                        }
                    }
                    reportConnect(host, ip, (System.nanoTime() - t0) / NS_PER_MS, ok);
                }
            }
        });
    }

    // ------------------------------------------------------------------ state

    /** Newest epoch seen (body or X-Httpdns-Epoch header), 0 before any response. */
    public long currentEpoch() {
        synchronized (cacheLock) {
            return epoch;
        }
    }

    /** The last successful /resolve response (client IP and geo as the server saw them), or null. */
    public ResolveResponse lastResponse() {
        return lastResponse;
    }

    /** The last error met in the background, for diagnostics; null if none. */
    public Throwable lastError() {
        return lastError;
    }

    /** The server currently tried first (the last one that answered). */
    public String preferredServer() {
        return cfg.servers.get(preferredServer.get());
    }

    /** Expiry time (clock millis) of the cached entry, or -1; for tests. */
    long expiresAt(String host) {
        CacheEntry e = cache.get(normalize(host));
        return e == null ? -1 : e.expiresAt;
    }

    public HttpDnsConfig config() {
        return cfg;
    }

    @Override
    public void close() {
        if (scheduler != null) scheduler.shutdownNow();
        executor.shutdown();
    }

    // ------------------------------------------------------------------ internals

    private Map<String, HostAnswer> awaitFetch(List<String> hosts, long deadline) {
        List<FetchTask> tasks = new ArrayList<FetchTask>();
        for (List<String> chunk : chunks(hosts)) tasks.add(fetchShared(chunk));
        Map<String, HostAnswer> out = new HashMap<String, HostAnswer>();
        for (FetchTask t : tasks) {
            try {
                out.putAll(t.get(Math.max(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS));
            } catch (TimeoutException e) {
                lastError = e; // the task goes on and fills the cache when it ends
            } catch (ExecutionException e) {
                lastError = e.getCause();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                break;
            }
        }
        return out;
    }

    /** One in-flight request per distinct host list; callers asking for the same list share it. */
    private FetchTask fetchShared(final List<String> hosts) {
        String key = joinHosts(hosts);
        FetchTask t = new FetchTask(new Callable<Map<String, HostAnswer>>() {
            @Override
            public Map<String, HostAnswer> call() throws IOException {
                return fetch(hosts, taskDeadline());
            }
        }, key, hosts);
        FetchTask existing = inflight.putIfAbsent(key, t);
        // FutureTask wakes its waiters before done() unregisters it: never join a finished request.
        while (existing != null && existing.isDone()) {
            inflight.remove(key, existing);
            existing = inflight.putIfAbsent(key, t);
        }
        if (existing != null) return existing;
        try {
            executor.execute(t);
        } catch (RejectedExecutionException e) {
            t.fail(e);
        }
        return t;
    }

    private int refreshAsync(List<String> hosts) {
        List<String> todo = new ArrayList<String>();
        for (String h : hosts) if (refreshing.add(h)) todo.add(h);
        for (List<String> chunk : chunks(todo)) fetchShared(chunk);
        return todo.size();
    }

    /** A background request may outlive the caller's wait; it still ends: every server gets one try. */
    private long taskDeadline() {
        return System.nanoTime()
                + (long) cfg.servers.size() * (cfg.connectTimeoutMs + cfg.readTimeoutMs) * NS_PER_MS;
    }

    /** Queries the servers in rotation order; caches and returns the answers keyed by host. */
    Map<String, HostAnswer> fetch(List<String> hosts, long deadline) throws IOException {
        String hostParam = joinHosts(hosts);
        StringBuilder q = new StringBuilder("/resolve?host=");
        for (int i = 0; i < hosts.size(); i++) q.append(i == 0 ? "" : ",").append(enc(hosts.get(i)));
        q.append("&type=").append(enc(cfg.queryType));
        if (cfg.clientIp != null) q.append("&ip=").append(enc(cfg.clientIp));
        if (cfg.tokenProvider != null || cfg.secret != null) {
            long t = clock.nowMillis() / 1000 + cfg.signValiditySeconds;
            String sign = cfg.tokenProvider != null ? cfg.tokenProvider.sign(hostParam, t)
                    : Signer.sign(cfg.secret, hostParam, t);
            if (sign != null) q.append("&t=").append(t).append("&sign=").append(enc(sign));
        }
        int n = cfg.servers.size();
        int start = preferredServer.get();
        IOException last = null;
        for (int i = 0; i < n; i++) {
            int idx = (start + i) % n;
            long remaining = (deadline - System.nanoTime()) / NS_PER_MS;
            if (remaining <= 0) break;
            String server = cfg.servers.get(idx);
            boolean clientError = false;
            try {
                HttpTransport.Response r = HttpTransport.exchange("GET", HttpTransport.baseUrl(server) + q, null,
                        (int) Math.min(cfg.connectTimeoutMs, remaining), (int) Math.min(cfg.readTimeoutMs, remaining));
                if (r.status == 200) {
                    ResolveResponse parsed = ResolveResponse.parse(r.body);
                    preferredServer.set(idx);
                    return store(parsed, parseLong(r.epochHeader));
                }
                // 4xx: the request itself is wrong (bad host, bad signature); other servers would agree.
                clientError = r.status >= 400 && r.status < 500;
                throw new HttpDnsException("HTTP " + r.status + " from " + server + ": " + r.body, r.status);
            } catch (IOException e) {
                last = e;
                if (clientError) break;
            }
        }
        if (last == null) last = new HttpDnsException("no server answered in time", 0);
        lastError = last;
        throw last;
    }

    private Map<String, HostAnswer> store(ResolveResponse resp, long headerEpoch) {
        long respEpoch = Math.max(resp.epoch, headerEpoch);
        long now = clock.nowMillis();
        Map<String, HostAnswer> out = new HashMap<String, HostAnswer>();
        synchronized (cacheLock) {
            if (respEpoch > epoch) {
                cache.clear(); // configuration changed on the server: every cached answer may be wrong
                epoch = respEpoch;
            }
            for (HostAnswer a : resp.answers) {
                out.put(a.host, a);
                if (a.error == null && !a.isEmpty() && a.ttl > 0) {
                    cache.put(a.host, new CacheEntry(a, now, cfg));
                } else {
                    cache.remove(a.host);
                }
            }
        }
        lastResponse = resp;
        if (cfg.autoProbePort > 0) {
            for (HostAnswer a : resp.answers) if (!a.isEmpty()) probe(a.host, cfg.autoProbePort);
        }
        return out;
    }

    private Map<String, HostAnswer> systemResolve(List<String> hosts, long deadline, Map<String, String> errors) {
        Map<String, Future<List<String>>> futures = new LinkedHashMap<String, Future<List<String>>>();
        for (final String h : hosts) {
            try {
                futures.put(h, executor.submit(new Callable<List<String>>() {
                    @Override
                    public List<String> call() throws Exception {
                        return cfg.systemDns.lookup(h);
                    }
                }));
            } catch (RejectedExecutionException e) {
                futures.put(h, null);
            }
        }
        Map<String, HostAnswer> out = new HashMap<String, HostAnswer>();
        for (Map.Entry<String, Future<List<String>>> me : futures.entrySet()) {
            String h = me.getKey();
            String prior = errors.get(h);
            String err = prior != null ? prior : "system_dns_failed";
            try {
                if (me.getValue() == null) throw new ExecutionException(new IllegalStateException("closed"));
                List<String> addrs = me.getValue().get(Math.max(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
                out.put(h, addrs == null || addrs.isEmpty() ? HostAnswer.none(h, err) : HostAnswer.system(h, addrs));
            } catch (TimeoutException e) {
                me.getValue().cancel(true);
                out.put(h, HostAnswer.none(h, prior != null ? prior : "timeout"));
            } catch (ExecutionException e) {
                out.put(h, HostAnswer.none(h, err));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                out.put(h, HostAnswer.none(h, "interrupted"));
            }
        }
        return out;
    }

    private boolean sendReports(final Map<String, List<ReportBuffer.Report>> batch) {
        if (batch.isEmpty()) return false;
        submit(new Runnable() {
            @Override
            public void run() {
                for (Map.Entry<String, List<ReportBuffer.Report>> me : batch.entrySet()) {
                    postReport(ReportBuffer.toJson(me.getKey(), me.getValue()));
                }
            }
        });
        return true;
    }

    private void postReport(String body) {
        int n = cfg.servers.size();
        int start = preferredServer.get();
        for (int i = 0; i < n; i++) {
            String server = cfg.servers.get((start + i) % n);
            try {
                HttpTransport.Response r = HttpTransport.exchange("POST", HttpTransport.baseUrl(server) + "/report",
                        body, cfg.connectTimeoutMs, cfg.readTimeoutMs);
                if (r.status < 500) {
                    if (r.status != 200) lastError = new HttpDnsException("report rejected: " + r.body, r.status);
                    return; // sent, or rejected as bad input (another server would reject it too)
                }
            } catch (IOException e) {
                lastError = e;
            }
        }
    }

    private Future<?> submit(Runnable r) {
        try {
            return executor.submit(r);
        } catch (RejectedExecutionException e) {
            FutureTask<Void> f = new FutureTask<Void>(r, null);
            f.cancel(false);
            return f;
        }
    }

    private List<List<String>> chunks(List<String> hosts) {
        List<List<String>> out = new ArrayList<List<String>>();
        for (int i = 0; i < hosts.size(); i += cfg.maxBatchSize) {
            out.add(new ArrayList<String>(hosts.subList(i, Math.min(hosts.size(), i + cfg.maxBatchSize))));
        }
        return out;
    }

    static String normalize(String host) {
        if (host == null) throw new IllegalArgumentException("host is null");
        String h = host.trim().toLowerCase(Locale.ROOT);
        if (h.endsWith(".")) h = h.substring(0, h.length() - 1);
        if (h.isEmpty() || h.contains(",")) throw new IllegalArgumentException("bad host: " + host);
        return h;
    }

    static String joinHosts(List<String> hosts) {
        StringBuilder sb = new StringBuilder();
        for (String h : hosts) sb.append(sb.length() == 0 ? "" : ",").append(h);
        return sb.toString();
    }

    private static String enc(String s) {
        try {
            return URLEncoder.encode(s, "UTF-8").replace("%2C", ",").replace("%3A", ":");
        } catch (UnsupportedEncodingException e) {
            throw new IllegalStateException(e);
        }
    }

    private static long parseLong(String s) {
        if (s == null) return 0;
        try {
            return Long.parseLong(s.trim());
        } catch (NumberFormatException e) {
            return 0;
        }
    }

    private static ThreadFactory daemon(final String name) {
        final AtomicInteger n = new AtomicInteger();
        return new ThreadFactory() {
            @Override
            public Thread newThread(Runnable r) {
                Thread t = new Thread(r, name + "-" + n.incrementAndGet());
                t.setDaemon(true);
                return t;
            }
        };
    }
}
