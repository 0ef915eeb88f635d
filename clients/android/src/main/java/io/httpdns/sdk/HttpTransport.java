package io.httpdns.sdk;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.HttpURLConnection;
import java.net.Proxy;
import java.net.URL;

/** Minimal HTTP/1.1 exchange over {@link HttpURLConnection}, bypassing any system proxy. */
final class HttpTransport {
    static final class Response {
        final int status;
        final String body;
        final String epochHeader;

        Response(int status, String body, String epochHeader) {
            this.status = status;
            this.body = body;
            this.epochHeader = epochHeader;
        }
    }

    private HttpTransport() {}

    /** Base URL for a configured server entry: "IP:port", "[v6]:port" or a full URL. */
    static String baseUrl(String server) {
        String s = server.trim();
        if (!s.contains("://")) s = "http://" + s;
        while (s.endsWith("/")) s = s.substring(0, s.length() - 1);
        return s;
    }

    static Response exchange(String method, String url, String jsonBody, int connectMs, int readMs)
            throws IOException {
        HttpURLConnection c = (HttpURLConnection) new URL(url).openConnection(Proxy.NO_PROXY);
        try {
            c.setConnectTimeout(Math.max(1, connectMs));
            c.setReadTimeout(Math.max(1, readMs));
            c.setUseCaches(false);
            c.setInstanceFollowRedirects(false);
            c.setRequestMethod(method);
            c.setRequestProperty("Accept", "application/json");
            if (jsonBody != null) {
                byte[] bytes = jsonBody.getBytes("UTF-8");
                c.setDoOutput(true);
                c.setRequestProperty("Content-Type", "application/json");
                c.setFixedLengthStreamingMode(bytes.length);
                OutputStream os = c.getOutputStream();
                try {
                    os.write(bytes);
                } finally {
                    os.close();
                }
            }
            int status = c.getResponseCode();
            InputStream in = status >= 400 ? c.getErrorStream() : c.getInputStream();
            String body = in == null ? "" : readAll(in);
            return new Response(status, body, c.getHeaderField("X-Httpdns-Epoch"));
        } finally {
            c.disconnect();
        }
    }

    private static String readAll(InputStream in) throws IOException {
        try {
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            byte[] buf = new byte[4096];
            int n;
            while ((n = in.read(buf)) > 0) {
                out.write(buf, 0, n);
                if (out.size() > 1 << 20) throw new IOException("response too large");
            }
            return out.toString("UTF-8");
        } finally {
            in.close();
        }
    }
}
