package io.httpdns.sdk;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Locale;

/** Immutable client settings. Build with {@link #builder(String...)}. */
public final class HttpDnsConfig {
    /** Server addresses "IP:port" (or "[v6]:port", or a full "http(s)://..." base URL), tried in order. */
    public final List<String> servers;
    public final int connectTimeoutMs;
    public final int readTimeoutMs;
    /** Longest a {@code resolve*} call may block its caller. */
    public final int timeoutMs;
    /** Part of {@link #timeoutMs} kept for the system resolver after HTTPDNS fails. */
    public final int systemDnsBudgetMs;
    /** How long past its TTL a cached answer may still be served when the servers fail. */
    public final long maxStaleMs;
    /** Fraction of the TTL after which a cached answer is refreshed in the background. */
    public final double refreshRatio;
    public final List<String> preResolveHosts;
    /** "A", "AAAA" or "A,AAAA". */
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
        servers = Collections.unmodifiableList(new ArrayList<String>(b.servers));
        connectTimeoutMs = b.connectTimeoutMs;
        readTimeoutMs = b.readTimeoutMs;
        timeoutMs = b.timeoutMs;
        systemDnsBudgetMs = b.systemDnsBudgetMs;
        maxStaleMs = b.maxStaleMs;
        refreshRatio = b.refreshRatio;
        List<String> pre = new ArrayList<String>();
        for (String h : b.preResolveHosts) pre.add(h.trim().toLowerCase(Locale.ROOT));
        preResolveHosts = Collections.unmodifiableList(pre);
        queryType = b.queryType;
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
        private int connectTimeoutMs = 800;
        private int readTimeoutMs = 1500;
        private int timeoutMs = 2000;
        private int systemDnsBudgetMs = 500;
        private long maxStaleMs = 60 * 60 * 1000L;
        private double refreshRatio = 0.75;
        private final List<String> preResolveHosts = new ArrayList<String>();
        private String queryType = "A,AAAA";
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
