package io.httpdns.sdk;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashSet;
import java.util.List;

/** The addresses for one host, and where they came from. Immutable. */
public final class HostAnswer {
    /** Where an answer came from. */
    public enum Source {
        /** Fresh from an HTTPDNS server. */
        HTTPDNS,
        /** From the cache, within its TTL. */
        CACHE,
        /** From the cache past its TTL (servers failed), within the maximum staleness. */
        STALE,
        /** From the system resolver. */
        SYSTEM,
        /** Nothing could resolve the host; the address lists are empty. */
        NONE
    }

    public final String host;
    /** Zone of the primary addresses, null for SYSTEM/NONE answers. */
    public final String zone;
    /** True when the server already failed over from the client's preferred zone. */
    public final boolean failover;
    /** Seconds the answer may be cached; 0 for answers not from HTTPDNS. */
    public final int ttl;
    public final List<String> ips;
    public final List<String> ipsv6;
    public final List<FallbackZone> fallback;
    /** Per-host error from the server (e.g. "unknown_host") or a local reason; null when fine. */
    public final String error;
    /** Configuration epoch of the response that carried this answer (0 if none). */
    public final long epoch;
    public final Source source;

    public HostAnswer(String host, String zone, boolean failover, int ttl, List<String> ips,
                      List<String> ipsv6, List<FallbackZone> fallback, String error, long epoch,
                      Source source) {
        this.host = host;
        this.zone = zone;
        this.failover = failover;
        this.ttl = ttl;
        this.ips = copy(ips);
        this.ipsv6 = copy(ipsv6);
        this.fallback = fallback == null ? Collections.<FallbackZone>emptyList()
                : Collections.unmodifiableList(new ArrayList<FallbackZone>(fallback));
        this.error = error;
        this.epoch = epoch;
        this.source = source;
    }

    static HostAnswer system(String host, List<String> addrs) {
        List<String> v4 = new ArrayList<String>();
        List<String> v6 = new ArrayList<String>();
        for (String a : addrs) {
            if (a.indexOf(':') >= 0) v6.add(a); else v4.add(a);
        }
        return new HostAnswer(host, null, false, 0, v4, v6, null, null, 0, Source.SYSTEM);
    }

    static HostAnswer none(String host, String error) {
        return new HostAnswer(host, null, false, 0, null, null, null, error, 0, Source.NONE);
    }

    HostAnswer withSource(Source s) {
        if (s == source) return this;
        return new HostAnswer(host, zone, failover, ttl, ips, ipsv6, fallback, error, epoch, s);
    }

    /** True when there is no primary address at all. */
    public boolean isEmpty() {
        return ips.isEmpty() && ipsv6.isEmpty();
    }

    /** Primary addresses: IPv4 first, then IPv6. */
    public List<String> addresses() {
        List<String> out = new ArrayList<String>(ips);
        out.addAll(ipsv6);
        return out;
    }

    /** Every address in the order to try: primary, then each fallback zone in order (no duplicates). */
    public List<String> allAddresses() {
        LinkedHashSet<String> out = new LinkedHashSet<String>(addresses());
        for (FallbackZone z : fallback) out.addAll(z.addresses());
        return new ArrayList<String>(out);
    }

    /**
     * Addresses to try after {@code failedIp} failed: the rest of the primary addresses, then the
     * fallback zones in order. If {@code failedIp} is not part of this answer, every address is returned.
     */
    public List<String> nextAddresses(String failedIp) {
        List<String> all = allAddresses();
        int i = failedIp == null ? -1 : all.indexOf(failedIp);
        if (i < 0) return all;
        return new ArrayList<String>(all.subList(i + 1, all.size()));
    }

    private static List<String> copy(List<String> l) {
        return l == null ? Collections.<String>emptyList()
                : Collections.unmodifiableList(new ArrayList<String>(l));
    }

    @Override
    public String toString() {
        return "HostAnswer{" + host + " " + source + " zone=" + zone + " ttl=" + ttl + " ips=" + ips
                + " ipsv6=" + ipsv6 + (error != null ? " error=" + error : "") + "}";
    }
}
