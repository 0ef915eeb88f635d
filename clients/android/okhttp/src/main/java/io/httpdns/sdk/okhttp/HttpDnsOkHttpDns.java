package io.httpdns.sdk.okhttp;

import io.httpdns.sdk.HostAnswer;
import io.httpdns.sdk.HttpDnsClient;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.util.ArrayList;
import java.util.List;
import okhttp3.Dns;

/**
 * OkHttp {@link Dns} backed by {@link HttpDnsClient}. Uses only API common to OkHttp 3.12+ and 4.x.
 *
 * <pre>
 * OkHttpClient ok = new OkHttpClient.Builder()
 *     .dns(new HttpDnsOkHttpDns(httpDns))
 *     .eventListenerFactory(HttpDnsEventListener.factory(httpDns))
 *     .build();
 * </pre>
 *
 * OkHttp keeps the URL's host name for TLS (SNI and certificate checks), so HTTPS works unchanged.
 * It tries the returned addresses in order: the primary addresses, then the fallback zones
 * ({@link HostAnswer#allAddresses()}). The SDK already falls back to the system resolver (its
 * {@code SystemDns}) within its time budget, so an empty answer is final: LocalDNS is never asked twice.
 */
public final class HttpDnsOkHttpDns implements Dns {
    private final HttpDnsClient client;

    public HttpDnsOkHttpDns(HttpDnsClient client) {
        this.client = client;
    }

    @Override
    public List<InetAddress> lookup(String hostname) throws UnknownHostException {
        HostAnswer a;
        try {
            a = client.resolve(hostname);
        } catch (IllegalArgumentException e) {
            throw new UnknownHostException("bad host name: " + hostname);
        }
        if (a.isEmpty()) {
            throw new UnknownHostException(hostname + ": " + (a.error != null ? a.error : "no address"));
        }
        List<InetAddress> out = new ArrayList<InetAddress>();
        for (String ip : a.allAddresses()) {
            // IP literals: getByName only parses them; the host name is kept on the address.
            out.add(InetAddress.getByAddress(hostname, InetAddress.getByName(ip).getAddress()));
        }
        return out;
    }
}
