package io.httpdns.sdk.okhttp;

import io.httpdns.sdk.HttpDnsClient;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.Proxy;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import okhttp3.Call;
import okhttp3.EventListener;
import okhttp3.Protocol;

/**
 * Reports how each connection attempt to an HTTPDNS-resolved address went (connect time, or a
 * failure) to {@code POST /report} through {@link HttpDnsClient#reportConnect}, so the server's
 * ranking learns from real traffic. Hosts the SDK holds no HTTPDNS answer for are not reported.
 * One listener per call (OkHttp creates it through {@link #factory}).
 */
public final class HttpDnsEventListener extends EventListener {
    private final HttpDnsClient client;
    /** Start of each connect attempt of this call, by address (a call may try several). */
    private final Map<InetSocketAddress, Long> started = new ConcurrentHashMap<InetSocketAddress, Long>();

    HttpDnsEventListener(HttpDnsClient client) {
        this.client = client;
    }

    /** Factory for {@code OkHttpClient.Builder.eventListenerFactory}. */
    public static EventListener.Factory factory(final HttpDnsClient client) {
        return new EventListener.Factory() {
            @Override
            public EventListener create(Call call) {
                return new HttpDnsEventListener(client);
            }
        };
    }

    @Override
    public void connectStart(Call call, InetSocketAddress address, Proxy proxy) {
        started.put(address, System.nanoTime());
    }

    @Override
    public void connectEnd(Call call, InetSocketAddress address, Proxy proxy, Protocol protocol) {
        report(call, address, true);
    }

    @Override
    public void connectFailed(Call call, InetSocketAddress address, Proxy proxy, Protocol protocol, IOException e) {
        report(call, address, false);
    }

    private void report(Call call, InetSocketAddress address, boolean ok) {
        Long t0 = started.remove(address);
        if (t0 == null || address.getAddress() == null) return;
        String host = call.request().url().host();
        if (client.peek(host) == null) return; // not an HTTPDNS answer: nothing for the server to learn
        long rttMs = (System.nanoTime() - t0) / 1000000L;
        client.reportConnect(host, address.getAddress().getHostAddress(), rttMs, ok);
    }
}
