package io.httpdns.sdk.okhttp;

import io.httpdns.sdk.HostAnswer;
import io.httpdns.sdk.HttpDnsClient;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.util.ArrayList;
import java.util.List;
import okhttp3.Dns;

/**
 * OkHttp {@link Dns} backed by {@link HttpDnsClient}. Not part of the core build: compile it only
 * where OkHttp (3.x or 4.x) is on the classpath.
 *
 * <pre>
 * OkHttpClient ok = new OkHttpClient.Builder().dns(new HttpDnsOkHttpDns(httpDns)).build();
 * </pre>
 *
 * OkHttp keeps the URL's host name for TLS (SNI and certificate checks), so HTTPS works unchanged.
 * It tries the returned addresses in order, so the list is the primary addresses followed by the
 * fallback zones ({@link HostAnswer#allAddresses()}).
 */
public final class HttpDnsOkHttpDns implements Dns {
    private final HttpDnsClient client;
    private final Dns fallback;

    public HttpDnsOkHttpDns(HttpDnsClient client) {
        this(client, Dns.SYSTEM);
    }

    public HttpDnsOkHttpDns(HttpDnsClient client, Dns fallback) {
        this.client = client;
        this.fallback = fallback;
    }

    @Override
    public List<InetAddress> lookup(String hostname) throws UnknownHostException {
        HostAnswer a;
        try {
            a = client.resolve(hostname);
        } catch (IllegalArgumentException e) {
            return fallback.lookup(hostname);
        }
        if (a.source == HostAnswer.Source.NONE || a.isEmpty()) return fallback.lookup(hostname);
        List<InetAddress> out = new ArrayList<InetAddress>();
        for (String ip : a.allAddresses()) {
            // IP literals: getByName parses them without any DNS query.
            out.add(InetAddress.getByName(ip));
        }
        return out;
    }
}
