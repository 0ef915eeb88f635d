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
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.FutureTask;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * HTTPDNS client: resolves host names through {@code GET /resolve} over HTTPS on a list of
 * resolvers addressed by IP (so it never needs LocalDNS itself), caches answers, refreshes them
 * in the background, serves stale answers when the resolvers fail, and falls back to the system
 * resolver.
 *
 * <p>Thread safe. {@link #resolveNonBlocking} never touches the network on the calling thread;
 * {@link #resolve} blocks at most {@link HttpDnsConfig#timeoutMs}; {@link #resolveAsync} calls
 * back on an SDK thread. Network work runs on a bounded pool of SDK daemon threads.
 */
public final class HttpDnsClient implements Closeable {
    private static final long NS_PER_MS = 1000000L;
    /** Queued SDK jobs beyond this are refused (the caller degrades to stale/system answers). */
    private static final int WORK_QUEUE = 4096;
    /** A Date header moving the clock correction by more than this justifies re-signing once. */
    private static final long SKEW_RETRY_MS = 30 * 1000L;
    private static final long SAVE_DELAY_MS = 2000;
    private static final AtomicInteger CLIENTS = new AtomicInteger();

    private final HttpDnsConfig cfg;
    private final Clock clock;
    private final Logger log;
    private final AnswerCache cache;
    private final ConcurrentHashMap<String, FetchTask> inflight = new ConcurrentHashMap<String, FetchTask>();
    private final Set<String> refreshing = Collections.newSetFromMap(new ConcurrentHashMap<String, Boolean>());
    private final AtomicInteger preferredServer = new AtomicInteger();
    private final ServerBackoff backoff;
    private final Tls.Setup[] tls;
    private final ReportBuffer reports;
    private final ThreadPoolExecutor executor;
    private final ScheduledThreadPoolExecutor timer;
    private final AtomicBoolean saveScheduled = new AtomicBoolean();
    private volatile ResolveResponse lastResponse;
    private volatile Throwable lastError;
    /** Server time minus device time, from the last Date header; corrects request signatures. */
    private volatile long clockSkewMs;
    private volatile String detectedQueryType;
    /** Names this client's threads: "httpdns-N-". */
    private final String threadPrefix = "httpdns-" + CLIENTS.incrementAndGet() + "-";

    /** One /resolve request for a host list; callers asking for the same list share it. */
    private final class FetchTask extends FutureTask<Map<String, HostAnswer>> {
        final String key;
        final List<String> hosts;
        private final List<Runnable> listeners = new CopyOnWriteArrayList<Runnable>();
        private boolean finished; // guarded by listeners

        FetchTask(Callable<Map<String, HostAnswer>> c, String key, List<String> hosts) {
            super(c);
            this.key = key;
            this.hosts = hosts;
        }

        void fail(Throwable e) {
            setException(e);
        }

        /** Runs {@code r} when the request ends (at once if it already has). */
        void onDone(Runnable r) {
            synchronized (listeners) {
                if (!finished) {
                    listeners.add(r);
                    return;
                }
            }
            r.run();
        }

        /** The answer for {@code host}, or null if the request failed or has not ended. */
        HostAnswer answer(String host) {
            if (!isDone()) return null;
            try {
                return get().get(host);
            } catch (ExecutionException e) {
                return null;
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return null;
            } catch (java.util.concurrent.CancellationException e) {
                return null;
            }
        }

        @Override
        protected void done() {
            inflight.remove(key, this);
            refreshing.removeAll(hosts);
            synchronized (listeners) {
                finished = true;
            }
            for (Runnable r : listeners) r.run();
        }
    }

    public HttpDnsClient(HttpDnsConfig cfg) {
        this.cfg = cfg;
        this.clock = cfg.clock;
        this.log = cfg.logger;
        this.cache = new AnswerCache(cfg.maxCacheEntries);
        this.backoff = new ServerBackoff(cfg.endpoints.size(), cfg.backoffBaseMs, cfg.backoffMaxMs);
        this.tls = new Tls.Setup[cfg.endpoints.size()];
        for (int i = 0; i < tls.length; i++) {
            ServerEndpoint ep = cfg.endpoints.get(i);
            if (ep.https) {
                String expected = cfg.tlsServerName != null ? cfg.tlsServerName : ep.bareHost();
                tls[i] = Tls.setup(cfg.trustedCertificates, cfg.pins, expected, cfg.tlsServerName);
            } else {
                log.log(Logger.Level.WARN, "HTTPDNS server " + ep.entry
                        + " uses cleartext http: answers can be forged on-path and Android 9+ blocks it by default", null);
            }
        }
        this.reports = new ReportBuffer(clock.nowMillis(), cfg.maxPendingReports);
        this.executor = new ThreadPoolExecutor(cfg.maxWorkers, cfg.maxWorkers, 30, TimeUnit.SECONDS,
                new LinkedBlockingQueue<Runnable>(WORK_QUEUE), daemon(threadPrefix + "worker"));
        executor.allowCoreThreadTimeOut(true);
        this.timer = new ScheduledThreadPoolExecutor(1, daemon(threadPrefix + "timer"));
        timer.setRemoveOnCancelPolicy(true);
        if (cfg.cacheStore != null) loadCache();
        if (cfg.tickIntervalMs > 0) {
            timer.scheduleWithFixedDelay(new Runnable() {
                @Override
                public void run() {
                    try {
                        tick();
                    } catch (RuntimeException t) {
                        error("background tick failed", t);
                    }
                }
            }, cfg.tickIntervalMs, cfg.tickIntervalMs, TimeUnit.MILLISECONDS);
        }
        if (!cfg.preResolveHosts.isEmpty()) preResolve(cfg.preResolveHosts);
    }

    // ------------------------------------------------------------------ resolving

    /**
     * Resolves one host, blocking at most {@link HttpDnsConfig#timeoutMs}. Never returns null; check
     * {@link HostAnswer#source} / {@link HostAnswer#isEmpty()}. Do not call it on the UI thread: use
     * {@link #resolveNonBlocking} or {@link #resolveAsync} there.
     */
    public HostAnswer resolve(String host) {
        String h = normalize(host);
        return resolveBatch(Collections.singletonList(h)).get(h);
    }

    /**
     * Returns at once, with no network on the calling thread: the cached answer (CACHE), an expired
     * one within {@link HttpDnsConfig#maxStaleMs} (STALE) while a refresh starts in the background, or
     * an empty answer (NONE) while the first fetch starts. Hosts that never use HTTPDNS (filtered, or
     * unknown to the resolver) also give NONE: resolve those with the system resolver.
     */
    public HostAnswer resolveNonBlocking(String host) {
        String h = normalize(host);
        if (IpLiteral.is(h)) return literal(h);
        if (cfg.systemDnsFilter.useSystemDns(h)) return HostAnswer.none(h, "system_dns_host");
        long now = clock.nowMillis();
        AnswerCache.Entry e = cache.get(h);
        if (e != null && e.negative && now < e.expiresAt) return HostAnswer.none(h, e.answer.error);
        if (e != null && !e.negative) {
            if (cache.fresh(e, now)) {
                e.used = true;
                if (now >= e.refreshAt) refreshAsync(Collections.singletonList(h));
                return e.answer.withSource(HostAnswer.Source.CACHE);
            }
            if (now <= e.staleUntil) {
                e.used = true;
                refreshAsync(Collections.singletonList(h));
                return e.answer.withSource(HostAnswer.Source.STALE);
            }
        }
        refreshAsync(Collections.singletonList(h));
        return HostAnswer.none(h, "pending");
    }

    /**
     * Resolves one host without blocking the caller; {@code callback} gets the answer once, on an SDK
     * thread, within {@link HttpDnsConfig#timeoutMs} (HTTPDNS, CACHE, STALE, SYSTEM or NONE).
     */
    public void resolveAsync(String host, final Callback<HostAnswer> callback) {
        final String h = normalize(host);
        if (IpLiteral.is(h)) {
            deliverLater(callback, literal(h));
            return;
        }
        if (cfg.systemDnsFilter.useSystemDns(h)) {
            systemAsync(h, null, callback);
            return;
        }
        long now = clock.nowMillis();
        AnswerCache.Entry e = cache.get(h);
        if (e != null && e.negative && now < e.expiresAt) {
            systemAsync(h, e.answer.error, callback);
            return;
        }
        if (e != null && !e.negative && cache.fresh(e, now)) {
            e.used = true;
            if (now >= e.refreshAt) refreshAsync(Collections.singletonList(h));
            deliverLater(callback, e.answer.withSource(HostAnswer.Source.CACHE));
            return;
        }
        final AnswerCache.Entry stale = e != null && !e.negative && now <= e.staleUntil ? e : null;
        if (stale != null) stale.used = true;
        if (!backoff.anyHealthy()) {
            // Every server is backing off: probe in the background, answer from what we have.
            refreshAsync(Collections.singletonList(h));
            finishAsync(h, null, stale, callback);
            return;
        }
        final FetchTask t = fetchShared(Collections.singletonList(h));
        final AtomicBoolean once = new AtomicBoolean();
        final Runnable finish = new Runnable() {
            @Override
            public void run() {
                if (once.compareAndSet(false, true)) finishAsync(h, t.answer(h), stale, callback);
            }
        };
        final ScheduledFuture<?> timeout = scheduleQuietly(finish, cfg.timeoutMs - cfg.systemDnsBudgetMs);
        t.onDone(new Runnable() {
            @Override
            public void run() {
                if (timeout != null) timeout.cancel(false);
                finish.run();
            }
        });
    }

    /**
     * Resolves several hosts with at most one request per {@link HttpDnsConfig#maxBatchSize} hosts,
     * blocking at most {@link HttpDnsConfig#timeoutMs}. The map is keyed by the lower-cased host name,
     * in request order, and has an answer for every host.
     */
    public Map<String, HostAnswer> resolveBatch(Collection<String> hosts) {
        long deadline = System.nanoTime() + cfg.timeoutMs * NS_PER_MS;
        long httpDeadline = deadline - cfg.systemDnsBudgetMs * NS_PER_MS;
        LinkedHashSet<String> wanted = new LinkedHashSet<String>();
        for (String h : hosts) wanted.add(normalize(h));

        Map<String, HostAnswer> result = new HashMap<String, HostAnswer>();
        Map<String, AnswerCache.Entry> stale = new HashMap<String, AnswerCache.Entry>();
        Map<String, String> errors = new HashMap<String, String>();
        List<String> toFetch = new ArrayList<String>();
        List<String> toSystem = new ArrayList<String>();
        List<String> toRefresh = new ArrayList<String>();
        long now = clock.nowMillis();
        for (String h : wanted) {
            if (IpLiteral.is(h)) {
                result.put(h, literal(h));
                continue;
            }
            if (cfg.systemDnsFilter.useSystemDns(h)) {
                toSystem.add(h);
                continue;
            }
            AnswerCache.Entry e = cache.get(h);
            if (e != null && e.negative && now < e.expiresAt) {
                toSystem.add(h);
                errors.put(h, e.answer.error);
            } else if (e != null && !e.negative && cache.fresh(e, now)) {
                e.used = true;
                result.put(h, e.answer.withSource(HostAnswer.Source.CACHE));
                if (now >= e.refreshAt) toRefresh.add(h);
            } else {
                toFetch.add(h);
                if (e != null && !e.negative && now <= e.staleUntil) stale.put(h, e);
            }
        }
        if (!toRefresh.isEmpty()) refreshAsync(toRefresh);
        if (!toFetch.isEmpty()) {
            Map<String, HostAnswer> fetched;
            if (backoff.anyHealthy()) {
                fetched = awaitFetch(toFetch, httpDeadline);
            } else {
                // Every server is backing off: the probe runs in the background, the caller does not wait.
                refreshAsync(toFetch);
                fetched = Collections.emptyMap();
            }
            for (String h : toFetch) {
                HostAnswer a = fetched.get(h);
                AnswerCache.Entry old = stale.get(h);
                if (usable(a)) {
                    result.put(h, a);
                } else if (old != null && (a == null || !"unknown_host".equals(a.error))) {
                    old.used = true;
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

    /** The cached answer (fresh: CACHE, expired or older epoch but within max staleness: STALE) or null. No network. */
    public HostAnswer peek(String host) {
        AnswerCache.Entry e = cache.get(normalize(host));
        if (e == null || e.negative) return null;
        long now = clock.nowMillis();
        if (cache.fresh(e, now)) return e.answer.withSource(HostAnswer.Source.CACHE);
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
            if (!IpLiteral.is(n) && !cfg.systemDnsFilter.useSystemDns(n) && !list.contains(n)) list.add(n);
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
        cache.clear();
    }

    /**
     * Call when the device's network changes: clears the cache, forgets server failures and the
     * detected IP stack, pre-resolves again.
     */
    public void onNetworkChanged() {
        clearCache();
        preferredServer.set(0);
        backoff.reset();
        detectedQueryType = null;
        if (!cfg.preResolveHosts.isEmpty()) preResolve(cfg.preResolveHosts);
    }

    /** Housekeeping run by the background tick: refresh answers past the refresh point, flush reports. */
    public void tick() {
        refreshExpiring();
        flushReportsIfDue();
    }

    /**
     * Starts background refreshes for cached answers past {@link HttpDnsConfig#refreshRatio} of their TTL
     * (or from an older epoch) that were read since they were stored (or are in the pre-resolve list).
     * Returns how many hosts.
     */
    public int refreshExpiring() {
        return refreshAsync(cache.due(clock.nowMillis(), cfg.preResolveHosts));
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
                    boolean ok;
                    Socket s = new Socket();
                    try {
                        // ip is a literal from the answer: getByName parses it, no lookup.
                        s.connect(new InetSocketAddress(InetAddress.getByName(ip), port), cfg.probeTimeoutMs);
                        ok = true;
                    } catch (IOException e) {
                        ok = false;
                    } finally {
                        try {
                            s.close();
                        } catch (IOException ignored) {
                            // nothing was sent on it
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
        return cache.epoch();
    }

    /** The last successful /resolve response (client IP and geo as the server saw them), or null. */
    public ResolveResponse lastResponse() {
        return lastResponse;
    }

    /**
     * The last error met, for diagnostics; null if none. TLS failures are {@link HttpDnsTlsException}
     * with the {@link HttpDnsTlsException.Kind} of check that failed.
     */
    public Throwable lastError() {
        return lastError;
    }

    /** Server time minus device time (ms) from the last response's Date header; used for signing. */
    public long clockSkewMs() {
        return clockSkewMs;
    }

    /** The server currently tried first (the last one that answered). */
    public String preferredServer() {
        return cfg.servers.get(preferredServer.get());
    }

    /** Expiry time (clock millis) of the cached entry, or -1; for tests. */
    long expiresAt(String host) {
        AnswerCache.Entry e = cache.get(normalize(host));
        return e == null ? -1 : e.expiresAt;
    }

    /** Prefix of this client's thread names; for tests. */
    String threadPrefix() {
        return threadPrefix;
    }

    int cacheSize() {
        return cache.size();
    }

    public HttpDnsConfig config() {
        return cfg;
    }

    /** Stops the SDK threads and saves the cache to the {@link CacheStore}, if any. */
    @Override
    public void close() {
        timer.shutdownNow();
        executor.shutdown();
        if (cfg.cacheStore != null) saveCache();
    }

    // ------------------------------------------------------------------ internals

    private static boolean usable(HostAnswer a) {
        return a != null && a.error == null && !a.isEmpty();
    }

    private HostAnswer literal(String h) {
        // Never sent to the resolver: the "host" already is the address.
        return HostAnswer.system(h, Collections.singletonList(IpLiteral.strip(h)));
    }

    private void finishAsync(String h, HostAnswer fetched, AnswerCache.Entry stale, Callback<HostAnswer> cb) {
        if (usable(fetched)) {
            deliver(cb, fetched);
        } else if (stale != null && (fetched == null || !"unknown_host".equals(fetched.error))) {
            deliver(cb, stale.answer.withSource(HostAnswer.Source.STALE));
        } else {
            systemAsync(h, fetched == null ? "httpdns_unavailable"
                    : fetched.error != null ? fetched.error : "empty_answer", cb);
        }
    }

    private void systemAsync(final String h, final String prior, final Callback<HostAnswer> cb) {
        Runnable r = new Runnable() {
            @Override
            public void run() {
                HostAnswer a;
                try {
                    List<String> addrs = cfg.systemDns.lookup(h);
                    a = addrs == null || addrs.isEmpty() ? HostAnswer.none(h, prior != null ? prior : "system_dns_failed")
                            : HostAnswer.system(h, addrs);
                } catch (IOException e) {
                    a = HostAnswer.none(h, prior != null ? prior : "system_dns_failed");
                } catch (RuntimeException e) {
                    a = HostAnswer.none(h, prior != null ? prior : "system_dns_failed");
                }
                deliver(cb, a);
            }
        };
        try {
            executor.execute(r);
        } catch (RejectedExecutionException e) {
            deliver(cb, HostAnswer.none(h, "overloaded"));
        }
    }

    private void deliverLater(final Callback<HostAnswer> cb, final HostAnswer a) {
        try {
            executor.execute(new Runnable() {
                @Override
                public void run() {
                    deliver(cb, a);
                }
            });
        } catch (RejectedExecutionException e) {
            deliver(cb, a);
        }
    }

    private void deliver(Callback<HostAnswer> cb, HostAnswer a) {
        try {
            cb.onResult(a);
        } catch (RuntimeException e) {
            error("resolveAsync callback threw", e);
        }
    }

    private ScheduledFuture<?> scheduleQuietly(Runnable r, long delayMs) {
        try {
            return timer.schedule(r, Math.max(0, delayMs), TimeUnit.MILLISECONDS);
        } catch (RejectedExecutionException e) {
            r.run();
            return null;
        }
    }

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
            } catch (java.util.concurrent.CancellationException e) {
                lastError = e;
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                break;
            }
        }
        return out;
    }

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

    private String queryType() {
        if (!"auto".equals(cfg.queryType)) return cfg.queryType;
        String t = detectedQueryType;
        if (t == null) {
            t = cfg.ipStackDetector.queryType();
            if (!"A".equals(t) && !"AAAA".equals(t)) t = "A,AAAA";
            detectedQueryType = t;
        }
        return t;
    }

    private String resolvePath(List<String> hosts) {
        StringBuilder q = new StringBuilder("/resolve?host=");
        for (int i = 0; i < hosts.size(); i++) q.append(i == 0 ? "" : ",").append(enc(hosts.get(i)));
        q.append("&type=").append(enc(queryType()));
        if (cfg.clientIp != null) q.append("&ip=").append(enc(cfg.clientIp));
        if (cfg.tokenProvider != null || cfg.secret != null) {
            // With ip=, the server signs host + "\n" + ip + "\n" + t: the subject grows.
            String hostParam = cfg.clientIp == null ? joinHosts(hosts) : joinHosts(hosts) + "\n" + cfg.clientIp;
            // Signed with the server's idea of now: a device clock off by minutes still gets answers.
            long t = (clock.nowMillis() + clockSkewMs) / 1000 + cfg.signValiditySeconds;
            String sign = cfg.tokenProvider != null ? cfg.tokenProvider.sign(hostParam, t)
                    : Signer.sign(cfg.secret, hostParam, t);
            if (sign != null) q.append("&t=").append(t).append("&sign=").append(enc(sign));
        }
        return q.toString();
    }

    /** Servers to try, in order: healthy ones from the preferred one on; else one due for a probe. */
    private List<Integer> candidates() {
        int n = cfg.endpoints.size();
        int start = preferredServer.get();
        List<Integer> out = new ArrayList<Integer>();
        for (int i = 0; i < n; i++) {
            int idx = (start + i) % n;
            if (backoff.healthy(idx)) out.add(idx);
        }
        if (out.isEmpty()) {
            long now = clock.nowMillis();
            for (int i = 0; i < n; i++) {
                if (backoff.claimProbe(i, now)) {
                    out.add(i);
                    break;
                }
            }
        }
        return out;
    }

    /** Queries the servers (see {@link #candidates}); caches and returns the answers keyed by host. */
    Map<String, HostAnswer> fetch(List<String> hosts, long deadline) throws IOException {
        IOException last = null;
        for (int idx : candidates()) {
            long remaining = (deadline - System.nanoTime()) / NS_PER_MS;
            if (remaining <= 0) {
                if (!backoff.healthy(idx)) backoff.release(idx); // a claimed probe that never went out
                break;
            }
            try {
                Map<String, HostAnswer> out = fetchFrom(idx, hosts, remaining);
                probeRecoveredServers(hosts);
                return out;
            } catch (HttpDnsException e) {
                last = e;
                if (e.status() >= 400 && e.status() < 500) break; // other servers would say the same
            } catch (IOException e) {
                last = e;
            }
        }
        if (last == null) last = new HttpDnsException("no HTTPDNS server available (all backing off)", 0);
        lastError = last;
        throw last;
    }

    /** One server, with one re-signed retry when the server's clock says our signature was off. */
    private Map<String, HostAnswer> fetchFrom(int idx, List<String> hosts, long remainingMs) throws IOException {
        ServerEndpoint ep = cfg.endpoints.get(idx);
        long deadline = System.nanoTime() + remainingMs * NS_PER_MS;
        boolean signed = cfg.tokenProvider != null || cfg.secret != null;
        for (int attempt = 0; ; attempt++) {
            long left = Math.max(1, (deadline - System.nanoTime()) / NS_PER_MS);
            // Backoff windows count from the attempt's start: deterministic under a test clock.
            long startedAt = clock.nowMillis();
            HttpTransport.Response r;
            try {
                r = HttpTransport.exchange(ep, tls[idx], "GET", resolvePath(hosts), null,
                        (int) Math.min(cfg.connectTimeoutMs, left), (int) Math.min(cfg.readTimeoutMs, left));
            } catch (IOException e) {
                long d = backoff.failure(idx, startedAt);
                Logger.Level level = e instanceof HttpDnsTlsException ? Logger.Level.ERROR : Logger.Level.WARN;
                log.log(level, "HTTPDNS server " + ep.entry + " failed (" + e.getMessage() + "); skipped for " + d
                        + " ms", e);
                lastError = e;
                throw e;
            }
            long skewChange = observeDate(r.dateMs);
            if (r.status == 200) {
                ResolveResponse parsed;
                try {
                    parsed = ResolveResponse.parse(r.body);
                } catch (HttpDnsException e) {
                    backoff.failure(idx, startedAt); // a server sending garbage is as good as down
                    lastError = e;
                    throw e;
                }
                backoff.success(idx);
                preferredServer.set(idx);
                return store(parsed, parseLong(r.epochHeader));
            }
            if (signed && attempt == 0 && (r.status == 401 || r.status == 403) && Math.abs(skewChange) > SKEW_RETRY_MS) {
                log.log(Logger.Level.INFO, "device clock is " + clockSkewMs + " ms off the server's; re-signing", null);
                continue;
            }
            HttpDnsException e = new HttpDnsException("HTTP " + r.status + " from " + ep.entry + ": " + r.body, r.status);
            if (r.status >= 500) backoff.failure(idx, startedAt); else backoff.success(idx);
            throw e;
        }
    }

    /** Updates the clock correction from a Date header; returns how much it moved. */
    private long observeDate(long dateMs) {
        if (dateMs <= 0) return 0;
        long skew = dateMs - clock.nowMillis();
        // Date has one-second resolution: ignore the jitter below that.
        if (Math.abs(skew) < 2000) skew = 0;
        long change = skew - clockSkewMs;
        clockSkewMs = skew;
        return change;
    }

    /**
     * Servers earlier in the list that are past their backoff get one trial request in the background;
     * if it answers, it is preferred again. Callers never wait on it.
     */
    private void probeRecoveredServers(final List<String> hosts) {
        long now = clock.nowMillis();
        for (int i = 0; i < cfg.endpoints.size(); i++) {
            final int idx = i;
            if (!backoff.claimProbe(idx, now)) continue;
            Future<?> f = submit(new Runnable() {
                @Override
                public void run() {
                    try {
                        fetchFrom(idx, hosts, cfg.connectTimeoutMs + cfg.readTimeoutMs);
                    } catch (IOException e) {
                        lastError = e;
                    }
                }
            });
            if (f.isCancelled()) backoff.release(idx); // refused: the pool is full or closed
        }
    }

    private Map<String, HostAnswer> store(ResolveResponse resp, long headerEpoch) {
        long respEpoch = Math.max(resp.epoch, headerEpoch);
        long now = clock.nowMillis();
        // A newer epoch makes older entries due for refresh; they stay as stale fallbacks meanwhile.
        cache.observeEpoch(respEpoch);
        Map<String, HostAnswer> out = new HashMap<String, HostAnswer>();
        for (HostAnswer a : resp.answers) {
            out.put(a.host, a);
            if (a.error == null && !a.isEmpty() && a.ttl > 0) {
                cache.put(a.host, AnswerCache.positive(a, now, respEpoch, cfg));
            } else if ("unknown_host".equals(a.error) && cfg.negativeTtlMs > 0) {
                cache.put(a.host, AnswerCache.negative(a, now, respEpoch, cfg));
            }
        }
        lastResponse = resp;
        scheduleSave();
        if (cfg.autoProbePort > 0) {
            for (HostAnswer a : resp.answers) if (!a.isEmpty()) probe(a.host, cfg.autoProbePort);
        }
        return out;
    }

    private void loadCache() {
        try {
            String snapshot = cfg.cacheStore.load();
            if (snapshot != null) cache.load(snapshot, clock.nowMillis(), cfg);
        } catch (IOException e) {
            error("could not load the saved HTTPDNS cache; starting empty", e);
        } catch (RuntimeException e) {
            error("could not load the saved HTTPDNS cache; starting empty", e);
        }
    }

    private void saveCache() {
        try {
            cache.purge(clock.nowMillis());
            cfg.cacheStore.save(cache.toJson());
        } catch (IOException e) {
            error("could not save the HTTPDNS cache", e);
        } catch (RuntimeException e) {
            error("could not save the HTTPDNS cache", e);
        }
    }

    /** Saves the cache a little after it changes, once for a burst of changes. */
    private void scheduleSave() {
        if (cfg.cacheStore == null || !saveScheduled.compareAndSet(false, true)) return;
        scheduleQuietly(new Runnable() {
            @Override
            public void run() {
                saveScheduled.set(false);
                submit(new Runnable() {
                    @Override
                    public void run() {
                        saveCache();
                    }
                });
            }
        }, SAVE_DELAY_MS);
    }

    private void error(String message, Throwable e) {
        lastError = e;
        log.log(Logger.Level.WARN, message + ": " + e.getMessage(), e);
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
        for (int idx : candidates()) {
            ServerEndpoint ep = cfg.endpoints.get(idx);
            try {
                HttpTransport.Response r = HttpTransport.exchange(ep, tls[idx], "POST", "/report", body,
                        cfg.connectTimeoutMs, cfg.readTimeoutMs);
                if (r.status < 500) {
                    if (r.status != 200) lastError = new HttpDnsException("report rejected: " + r.body, r.status);
                    return; // sent, or rejected as bad input (another server would reject it too)
                }
            } catch (IOException e) {
                backoff.failure(idx, clock.nowMillis());
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
