package io.httpdns.sdk;

import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;

/** Immutable client settings. Build with {@link #builder(String...)}. */
public final class HttpDnsConfig {
    /**
     * Resolver entries, tried in order: "https://203.0.113.53", "https://203.0.113.53:8443",
     * "203.0.113.53" (no scheme means https). "http://..." only when written out (logged once).
     */
    public final List<String> servers;
    /** {@link #servers}, parsed and validated. */
    final List<ServerEndpoint> endpoints;
    /** Name sent as SNI and required in the certificate; null: the certificate must name the server's IP. */
    public final String tlsServerName;
    /** Trust anchors used instead of the platform store; empty: the platform store. */
    public final List<X509Certificate> trustedCertificates;
    /** Base64 SHA-256 SPKI pins, checked on top of the chain; empty: no pinning. */
    public final Set<String> pins;
    public final Logger logger;
    /** First backoff after a server fails; doubles on each further failure up to {@link #backoffMaxMs}. */
    public final long backoffBaseMs;
    public final long backoffMaxMs;
    /** How long "the resolver does not serve this host" is remembered. */
    public final long negativeTtlMs;
    /** Most hosts kept in the cache (least recently used go first). */
    public final int maxCacheEntries;
    /** Most SDK worker threads (network, system DNS, reports). */
    public final int maxWorkers;
    /** Where the cache survives restarts; null: memory only. */
    public final CacheStore cacheStore;
    /** Which IP families to ask for when {@link #queryType} is "auto". */
    public final IpStackDetector ipStackDetector;
    /** Connect timeout for one attempt on one server (TCP + TLS handshake start). */
    public final int connectTimeoutMs;
    public final int readTimeoutMs;
    /** Total budget of one {@code resolve*} call: the longest it may block its caller. */
    public final int timeoutMs;
    /** Part of {@link #timeoutMs} kept for the system resolver after HTTPDNS fails. */
    public final int systemDnsBudgetMs;
    /** How long past its TTL a cached answer may still be served when the servers fail. */
    public final long maxStaleMs;
    /** Fraction of the TTL after which a cached answer is refreshed in the background. */
    public final double refreshRatio;
    public final List<String> preResolveHosts;
    /** "auto" (the families {@link #ipStackDetector} reports), "A", "AAAA" or "A,AAAA". */
    public final String queryType;
    /** Optional {@code ip=} override sent to the server (normally null: server uses the peer IP). */
    public final String clientIp;
    public final String secret;
    public final TokenProvider tokenProvider;
    public final long signValiditySeconds;
    public final SystemDns systemDns;
    public final HostFilter systemDnsFilter;
    public final Clock clock;
    public final long reportIntervalMs;
    public final int maxPendingReports;
    /** Period of the background housekeeping tick (refresh + report flush); 0 disables it. */
    public final long tickIntervalMs;
    /** When &gt; 0, every fresh HTTPDNS answer is TCP-probed on this port and the timings reported. */
    public final int autoProbePort;
    public final int probeTimeoutMs;
    /** Most hosts in one batch request. */
    public final int maxBatchSize;

    private HttpDnsConfig(Builder b) {
        if (b.servers.isEmpty()) throw new IllegalArgumentException("at least one server is required");
        if (b.timeoutMs <= 0 || b.connectTimeoutMs <= 0 || b.readTimeoutMs <= 0)
            throw new IllegalArgumentException("timeouts must be positive");
        if (b.systemDnsBudgetMs < 0 || b.systemDnsBudgetMs >= b.timeoutMs)
            throw new IllegalArgumentException("systemDnsBudgetMs must be in [0, timeoutMs)");
        if (b.refreshRatio <= 0 || b.refreshRatio > 1)
            throw new IllegalArgumentException("refreshRatio must be in (0, 1]");
        if (b.maxCacheEntries <= 0 || b.maxWorkers <= 0)
            throw new IllegalArgumentException("maxCacheEntries and maxWorkers must be positive");
        if (b.backoffBaseMs <= 0 || b.backoffMaxMs < b.backoffBaseMs)
            throw new IllegalArgumentException("backoff must satisfy 0 < backoffBaseMs <= backoffMaxMs");
        if (b.negativeTtlMs < 0) throw new IllegalArgumentException("negativeTtlMs must not be negative");
        String qt = b.queryType == null ? "" : b.queryType.trim().toUpperCase(Locale.ROOT);
        if (!qt.equals("AUTO") && !qt.equals("A") && !qt.equals("AAAA") && !qt.equals("A,AAAA"))
            throw new IllegalArgumentException("queryType must be auto, A, AAAA or A,AAAA: " + b.queryType);
        servers = Collections.unmodifiableList(new ArrayList<String>(b.servers));
        List<ServerEndpoint> eps = new ArrayList<ServerEndpoint>();
        for (String s : b.servers) eps.add(ServerEndpoint.parse(s));
        endpoints = Collections.unmodifiableList(eps);
        if (b.tlsServerName != null && (b.tlsServerName.trim().isEmpty() || IpLiteral.is(b.tlsServerName)))
            throw new IllegalArgumentException("tlsServerName must be a DNS name: " + b.tlsServerName);
        tlsServerName = b.tlsServerName == null ? null : b.tlsServerName.trim().toLowerCase(Locale.ROOT);
        trustedCertificates = b.trustedPem == null ? Collections.<X509Certificate>emptyList()
                : Collections.unmodifiableList(Tls.parsePem(b.trustedPem));
        for (String pin : b.pins) {
            if (!Base64.isSha256(pin)) throw new IllegalArgumentException("pin is not a base64 SHA-256: " + pin);
        }
        pins = Collections.unmodifiableSet(new LinkedHashSet<String>(b.pins));
        logger = b.logger == null ? Logger.NONE : b.logger;
        backoffBaseMs = b.backoffBaseMs;
        backoffMaxMs = b.backoffMaxMs;
        negativeTtlMs = b.negativeTtlMs;
        maxCacheEntries = b.maxCacheEntries;
        maxWorkers = b.maxWorkers;
        cacheStore = b.cacheStore;
        ipStackDetector = b.ipStackDetector == null ? IpStackDetector.LOCAL_INTERFACES : b.ipStackDetector;
        connectTimeoutMs = b.connectTimeoutMs;
        readTimeoutMs = b.readTimeoutMs;
        timeoutMs = b.timeoutMs;
        systemDnsBudgetMs = b.systemDnsBudgetMs;
        maxStaleMs = b.maxStaleMs;
        refreshRatio = b.refreshRatio;
        List<String> pre = new ArrayList<String>();
        for (String h : b.preResolveHosts) pre.add(h.trim().toLowerCase(Locale.ROOT));
        preResolveHosts = Collections.unmodifiableList(pre);
        queryType = qt.equals("AUTO") ? "auto" : qt;
        clientIp = b.clientIp;
        secret = b.secret;
        tokenProvider = b.tokenProvider;
        signValiditySeconds = b.signValiditySeconds;
        systemDns = b.systemDns;
        systemDnsFilter = b.systemDnsFilter;
        clock = b.clock;
        reportIntervalMs = b.reportIntervalMs;
        maxPendingReports = b.maxPendingReports;
        tickIntervalMs = b.tickIntervalMs;
        autoProbePort = b.autoProbePort;
        probeTimeoutMs = b.probeTimeoutMs;
        maxBatchSize = Math.max(1, b.maxBatchSize);
    }

    public static Builder builder(String... servers) {
        Builder b = new Builder();
        Collections.addAll(b.servers, servers);
        return b;
    }

    public static final class Builder {
        private final List<String> servers = new ArrayList<String>();
        private int connectTimeoutMs = 500;
        private int readTimeoutMs = 1000;
        private int timeoutMs = 1500;
        private int systemDnsBudgetMs = 400;
        private long maxStaleMs = 60 * 60 * 1000L;
        private double refreshRatio = 0.75;
        private final List<String> preResolveHosts = new ArrayList<String>();
        private String queryType = "auto";
        private String tlsServerName;
        private String trustedPem;
        private final List<String> pins = new ArrayList<String>();
        private Logger logger = Logger.JUL;
        private long backoffBaseMs = 2000;
        private long backoffMaxMs = 5 * 60 * 1000L;
        private long negativeTtlMs = 30 * 1000L;
        private int maxCacheEntries = 512;
        private int maxWorkers = 4;
        private CacheStore cacheStore;
        private IpStackDetector ipStackDetector;
        private String clientIp;
        private String secret;
        private TokenProvider tokenProvider;
        private long signValiditySeconds = 300;
        private SystemDns systemDns = SystemDns.DEFAULT;
        private HostFilter systemDnsFilter = HostFilter.NONE;
        private Clock clock = Clock.SYSTEM;
        private long reportIntervalMs = 60 * 1000L;
        private int maxPendingReports = 256;
        private long tickIntervalMs = 1000;
        private int autoProbePort = 0;
        private int probeTimeoutMs = 1000;
        private int maxBatchSize = 10;

        public Builder server(String s) { servers.add(s); return this; }
        public Builder connectTimeoutMs(int v) { connectTimeoutMs = v; return this; }
        public Builder readTimeoutMs(int v) { readTimeoutMs = v; return this; }
        public Builder timeoutMs(int v) { timeoutMs = v; return this; }
        public Builder systemDnsBudgetMs(int v) { systemDnsBudgetMs = v; return this; }
        public Builder maxStaleMs(long v) { maxStaleMs = v; return this; }
        public Builder refreshRatio(double v) { refreshRatio = v; return this; }
        public Builder preResolve(String... hosts) { Collections.addAll(preResolveHosts, hosts); return this; }
        public Builder queryType(String v) { queryType = v; return this; }
        public Builder clientIp(String v) { clientIp = v; return this; }
        /** Sign requests with HMAC-SHA256 using this secret. */
        public Builder secret(String v) { secret = v; return this; }
        /** Sign requests through a callback instead of a local secret (takes precedence over secret). */
        public Builder tokenProvider(TokenProvider v) { tokenProvider = v; return this; }
        public Builder signValiditySeconds(long v) { signValiditySeconds = v; return this; }
        public Builder systemDns(SystemDns v) { systemDns = v; return this; }
        public Builder systemDnsFilter(HostFilter v) { systemDnsFilter = v; return this; }
        /** Hosts that always use the system resolver: exact names or "*.suffix" patterns. */
        public Builder systemDnsHosts(String... patterns) { systemDnsFilter = new PatternFilter(patterns); return this; }
        public Builder clock(Clock v) { clock = v; return this; }
        public Builder reportIntervalMs(long v) { reportIntervalMs = v; return this; }
        public Builder maxPendingReports(int v) { maxPendingReports = v; return this; }
        public Builder tickIntervalMs(long v) { tickIntervalMs = v; return this; }
        public Builder autoProbePort(int v) { autoProbePort = v; return this; }
        public Builder probeTimeoutMs(int v) { probeTimeoutMs = v; return this; }
        public Builder maxBatchSize(int v) { maxBatchSize = v; return this; }
        /** Name sent as SNI and verified against the certificate of servers addressed by IP. */
        public Builder tlsServerName(String v) { tlsServerName = v; return this; }
        /** Trust anchors (PEM certificates: a private CA or a self-signed server certificate) used instead of the platform store. */
        public Builder trustedCertificatesPem(String v) { trustedPem = v; return this; }
        /** SPKI pins (base64 SHA-256 of a certificate's public key): one certificate in the chain must match. */
        public Builder pinSha256(String... base64Spki) { Collections.addAll(pins, base64Spki); return this; }
        public Builder logger(Logger v) { logger = v; return this; }
        public Builder backoffMs(long baseMs, long maxMs) { backoffBaseMs = baseMs; backoffMaxMs = maxMs; return this; }
        public Builder negativeTtlMs(long v) { negativeTtlMs = v; return this; }
        public Builder maxCacheEntries(int v) { maxCacheEntries = v; return this; }
        public Builder maxWorkers(int v) { maxWorkers = v; return this; }
        /** Keep the cache across restarts (e.g. {@link FileCacheStore}). */
        public Builder cacheStore(CacheStore v) { cacheStore = v; return this; }
        public Builder ipStackDetector(IpStackDetector v) { ipStackDetector = v; return this; }

        public HttpDnsConfig build() { return new HttpDnsConfig(this); }
    }

    static final class PatternFilter implements HostFilter {
        private final List<String> exact = new ArrayList<String>();
        private final List<String> suffixes = new ArrayList<String>();

        PatternFilter(String... patterns) {
            for (String p : patterns) {
                String s = p.trim().toLowerCase(Locale.ROOT);
                if (s.startsWith("*.")) suffixes.add(s.substring(1)); else exact.add(s);
            }
        }

        @Override
        public boolean useSystemDns(String host) {
            if (exact.contains(host)) return true;
            for (String s : suffixes) if (host.endsWith(s)) return true;
            return false;
        }
    }
}
