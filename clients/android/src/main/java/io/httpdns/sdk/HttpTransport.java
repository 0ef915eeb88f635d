package io.httpdns.sdk;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.HttpURLConnection;
import java.net.Proxy;
import java.net.URL;
import javax.net.ssl.HttpsURLConnection;

/**
 * One HTTP/1.1 exchange with a resolver over {@link HttpURLConnection}, bypassing any system
 * proxy. HTTPS servers use their own {@link Tls.Setup}; a TLS failure becomes an
 * {@link HttpDnsTlsException} and is never retried in cleartext. Bodies are read to the end and
 * the connection is not disconnected, so the platform keeps it alive for the next request.
 */
final class HttpTransport {
    static final class Response {
        final int status;
        final String body;
        final String epochHeader;
        /** Server time from the Date header (ms since the epoch), 0 when absent. */
        final long dateMs;

        Response(int status, String body, String epochHeader, long dateMs) {
            this.status = status;
            this.body = body;
            this.epochHeader = epochHeader;
            this.dateMs = dateMs;
        }
    }

    private HttpTransport() {}

    static Response exchange(ServerEndpoint server, Tls.Setup tls, String method, String pathAndQuery,
                             String jsonBody, int connectMs, int readMs) throws IOException {
        HttpURLConnection c = (HttpURLConnection) new URL(server.baseUrl + pathAndQuery).openConnection(Proxy.NO_PROXY);
        boolean reusable = false;
        try {
            if (c instanceof HttpsURLConnection && tls != null) {
                HttpsURLConnection s = (HttpsURLConnection) c;
                s.setSSLSocketFactory(tls.socketFactory);
                s.setHostnameVerifier(tls.hostnameVerifier);
            }
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
            reusable = true;
            return new Response(status, body, c.getHeaderField("X-Httpdns-Epoch"), c.getHeaderFieldDate("Date", 0));
        } catch (IOException e) {
            HttpDnsTlsException failed = Tls.classify(e, server.entry);
            throw failed != null ? failed : e;
        } finally {
            // A fully read response leaves the socket in the keep-alive pool; anything else closes it.
            if (!reusable) c.disconnect();
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
