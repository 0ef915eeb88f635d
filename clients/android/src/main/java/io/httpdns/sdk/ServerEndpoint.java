package io.httpdns.sdk;

import java.net.URI;
import java.net.URISyntaxException;
import java.util.Locale;

/**
 * One configured resolver: "https://203.0.113.53", "https://203.0.113.53:8443", "[2001:db8::53]:8443"
 * or "203.0.113.53" (no scheme means https). Plain "http://" is accepted only when written out.
 */
final class ServerEndpoint {
    /** The entry as configured, for messages. */
    final String entry;
    final boolean https;
    /** Host as it appears in a URL (IPv6 in brackets). */
    final String host;
    final int port;
    /** scheme://host:port plus any base path, no trailing slash. */
    final String baseUrl;

    private ServerEndpoint(String entry, boolean https, String host, int port, String baseUrl) {
        this.entry = entry;
        this.https = https;
        this.host = host;
        this.port = port;
        this.baseUrl = baseUrl;
    }

    static ServerEndpoint parse(String entry) {
        if (entry == null || entry.trim().isEmpty()) throw new IllegalArgumentException("empty server entry");
        String s = entry.trim();
        if (!s.contains("://")) s = "https://" + s;
        URI u;
        try {
            u = new URI(s);
        } catch (URISyntaxException e) {
            throw new IllegalArgumentException("bad server entry " + entry + ": " + e.getMessage(), e);
        }
        String scheme = u.getScheme() == null ? "" : u.getScheme().toLowerCase(Locale.ROOT);
        if (!scheme.equals("https") && !scheme.equals("http")) {
            throw new IllegalArgumentException("server entry " + entry + ": scheme must be https (or http, written out)");
        }
        String host = u.getHost();
        if (host == null || host.isEmpty()) throw new IllegalArgumentException("server entry " + entry + " has no host");
        if (u.getQuery() != null || u.getFragment() != null || u.getUserInfo() != null) {
            throw new IllegalArgumentException("server entry " + entry + ": only scheme, host, port and path are allowed");
        }
        boolean https = scheme.equals("https");
        int port = u.getPort() > 0 ? u.getPort() : https ? 443 : 80;
        String path = u.getRawPath() == null ? "" : u.getRawPath();
        while (path.endsWith("/")) path = path.substring(0, path.length() - 1);
        return new ServerEndpoint(entry, https, host, port, scheme + "://" + host + ":" + port + path);
    }

    /** The host without IPv6 brackets: what the certificate must name when no tlsServerName is set. */
    String bareHost() {
        return IpLiteral.strip(host);
    }

    @Override
    public String toString() {
        return baseUrl;
    }
}
