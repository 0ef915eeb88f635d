package io.httpdns.sdk;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.net.InetAddress;
import java.net.Socket;
import java.net.UnknownHostException;
import java.nio.charset.Charset;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.security.MessageDigest;
import java.security.cert.Certificate;
import java.security.cert.CertificateException;
import java.security.cert.CertificateFactory;
import java.security.cert.CertificateParsingException;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import javax.net.ssl.HostnameVerifier;
import javax.net.ssl.SNIHostName;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLException;
import javax.net.ssl.SSLParameters;
import javax.net.ssl.SSLPeerUnverifiedException;
import javax.net.ssl.SSLSession;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.SSLSocketFactory;
import javax.net.ssl.TrustManager;
import javax.net.ssl.TrustManagerFactory;
import javax.net.ssl.X509TrustManager;

/**
 * TLS to resolvers addressed by IP: which certificates are trusted (the platform store, or the
 * configured PEM anchors instead), which name the certificate must carry (the configured
 * {@code tlsServerName}, sent as SNI, or else the IP itself) and the optional SPKI pins.
 *
 * <p>Every check runs in the trust manager during the handshake, so a failure aborts the
 * connection before any request byte is sent, and its kind travels up as the handshake
 * exception's cause ({@link TlsCheckFailed}) to become an {@link HttpDnsTlsException}.
 */
final class Tls {
    private static final Charset ASCII = Charset.forName("US-ASCII");

    private Tls() {}

    /** The certificate check that failed, thrown from the trust manager. */
    static final class TlsCheckFailed extends CertificateException {
        private static final long serialVersionUID = 1L;
        final HttpDnsTlsException.Kind kind;

        TlsCheckFailed(HttpDnsTlsException.Kind kind, String message, Throwable cause) {
            super(message, cause);
            this.kind = kind;
        }
    }

    /** Socket factory and verifier for one server entry. */
    static final class Setup {
        final SSLSocketFactory socketFactory;
        final HostnameVerifier hostnameVerifier;

        Setup(SSLSocketFactory socketFactory, HostnameVerifier hostnameVerifier) {
            this.socketFactory = socketFactory;
            this.hostnameVerifier = hostnameVerifier;
        }
    }

    /** Trust anchors parsed from PEM text (one or more certificates). */
    static List<X509Certificate> parsePem(String pem) {
        try {
            CertificateFactory cf = CertificateFactory.getInstance("X.509");
            Collection<? extends Certificate> certs = cf.generateCertificates(new ByteArrayInputStream(pem.getBytes(ASCII)));
            List<X509Certificate> out = new ArrayList<X509Certificate>();
            for (Certificate c : certs) out.add((X509Certificate) c);
            if (out.isEmpty()) throw new IllegalArgumentException("trustedCertificatesPem holds no certificate");
            return out;
        } catch (CertificateException e) {
            throw new IllegalArgumentException("trustedCertificatesPem is not PEM certificates: " + e.getMessage(), e);
        }
    }

    /** Builds the TLS setup for connecting to a server whose certificate must be valid for {@code expectedName}. */
    static Setup setup(List<X509Certificate> anchors, Set<String> pins, String expectedName, String sniName) {
        try {
            TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
            if (anchors.isEmpty()) {
                tmf.init((KeyStore) null);
            } else {
                KeyStore ks = KeyStore.getInstance(KeyStore.getDefaultType());
                ks.load(null, null);
                for (int i = 0; i < anchors.size(); i++) ks.setCertificateEntry("anchor-" + i, anchors.get(i));
                tmf.init(ks);
            }
            X509TrustManager base = null;
            for (TrustManager tm : tmf.getTrustManagers()) {
                if (tm instanceof X509TrustManager) base = (X509TrustManager) tm;
            }
            if (base == null) throw new IllegalStateException("no X509TrustManager on this platform");
            CheckingTrustManager tm = new CheckingTrustManager(base, expectedName, pins);
            SSLContext ctx = SSLContext.getInstance("TLS");
            ctx.init(null, new TrustManager[] {tm}, null);
            return new Setup(new SniSocketFactory(ctx.getSocketFactory(), sniName), new NameVerifier(expectedName));
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("TLS setup failed: " + e.getMessage(), e);
        } catch (IOException e) {
            throw new IllegalStateException("TLS setup failed: " + e.getMessage(), e);
        }
    }

    /** Maps a failed exchange to the TLS check that failed, or null when TLS was not the cause. */
    static HttpDnsTlsException classify(IOException e, String server) {
        SSLException ssl = null;
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t instanceof TlsCheckFailed) {
                return new HttpDnsTlsException(((TlsCheckFailed) t).kind, server + ": " + t.getMessage(), e);
            }
            if (t instanceof SSLPeerUnverifiedException) {
                return new HttpDnsTlsException(HttpDnsTlsException.Kind.NAME_MISMATCH, server + ": " + t.getMessage(), e);
            }
            if (ssl == null && t instanceof SSLException) ssl = (SSLException) t;
        }
        if (ssl == null) return null;
        return new HttpDnsTlsException(HttpDnsTlsException.Kind.HANDSHAKE, server + ": " + ssl.getMessage(), e);
    }

    /** Base64 SHA-256 of the certificate's SubjectPublicKeyInfo (the HPKP / OkHttp pin format). */
    static String spkiSha256(X509Certificate cert) {
        try {
            byte[] d = MessageDigest.getInstance("SHA-256").digest(cert.getPublicKey().getEncoded());
            return Base64.encode(d);
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException(e);
        }
    }

    /** True when the certificate's subjectAltName holds {@code name} (an IP literal or a DNS name). */
    static boolean matches(X509Certificate cert, String name) {
        Collection<List<?>> sans;
        try {
            sans = cert.getSubjectAlternativeNames();
        } catch (CertificateParsingException e) {
            return false;
        }
        if (sans == null) return false;
        boolean ip = IpLiteral.is(name);
        for (List<?> san : sans) {
            if (san.size() < 2 || !(san.get(0) instanceof Integer) || !(san.get(1) instanceof String)) continue;
            int type = (Integer) san.get(0);
            String value = (String) san.get(1);
            if (ip && type == 7 && sameIp(value, name)) return true;
            if (!ip && type == 2 && dnsMatches(value, name)) return true;
        }
        return false;
    }

    private static boolean sameIp(String a, String b) {
        if (!IpLiteral.is(a)) return false;
        try {
            // Both are literals: getByName only parses them, it never queries DNS.
            return InetAddress.getByName(IpLiteral.strip(a)).equals(InetAddress.getByName(IpLiteral.strip(b)));
        } catch (UnknownHostException e) {
            return false;
        }
    }

    /** RFC 6125: exact match, or a left-most "*" label standing for exactly one label. */
    static boolean dnsMatches(String pattern, String name) {
        String p = pattern.toLowerCase(Locale.ROOT);
        String n = name.toLowerCase(Locale.ROOT);
        if (p.endsWith(".")) p = p.substring(0, p.length() - 1);
        if (n.endsWith(".")) n = n.substring(0, n.length() - 1);
        if (!p.startsWith("*.")) return p.equals(n);
        String suffix = p.substring(1);
        int dot = n.indexOf('.');
        return dot > 0 && n.substring(dot).equals(suffix) && suffix.indexOf('.', 1) > 0;
    }

    private static boolean signedBy(X509Certificate cert, X509Certificate issuer) {
        if (!cert.getIssuerX500Principal().equals(issuer.getSubjectX500Principal())) return false;
        try {
            cert.verify(issuer.getPublicKey());
            return true;
        } catch (GeneralSecurityException e) {
            return false;
        }
    }

    private static final class CheckingTrustManager implements X509TrustManager {
        private final X509TrustManager base;
        private final String expectedName;
        private final Set<String> pins;

        CheckingTrustManager(X509TrustManager base, String expectedName, Set<String> pins) {
            this.base = base;
            this.expectedName = expectedName;
            this.pins = pins;
        }

        @Override
        public void checkServerTrusted(X509Certificate[] chain, String authType) throws CertificateException {
            if (chain == null || chain.length == 0) {
                throw new TlsCheckFailed(HttpDnsTlsException.Kind.UNTRUSTED, "empty certificate chain", null);
            }
            try {
                base.checkServerTrusted(chain, authType);
            } catch (CertificateException e) {
                throw new TlsCheckFailed(HttpDnsTlsException.Kind.UNTRUSTED,
                        "certificate not trusted (" + chain[0].getSubjectX500Principal() + "): " + e.getMessage(), e);
            }
            if (!matches(chain[0], expectedName)) {
                throw new TlsCheckFailed(HttpDnsTlsException.Kind.NAME_MISMATCH,
                        "certificate is not valid for " + expectedName, null);
            }
            if (!pins.isEmpty()) {
                for (X509Certificate c : chain) if (pins.contains(spkiSha256(c))) return;
                // Servers rarely send their root: the anchor that signed the chain's top counts too.
                X509Certificate top = chain[chain.length - 1];
                for (X509Certificate anchor : base.getAcceptedIssuers()) {
                    if (pins.contains(spkiSha256(anchor)) && signedBy(top, anchor)) return;
                }
                throw new TlsCheckFailed(HttpDnsTlsException.Kind.PIN_MISMATCH,
                        "no certificate in the chain matches a configured pin", null);
            }
        }

        @Override
        public void checkClientTrusted(X509Certificate[] chain, String authType) throws CertificateException {
            throw new CertificateException("client certificates are not used");
        }

        @Override
        public X509Certificate[] getAcceptedIssuers() {
            return base.getAcceptedIssuers();
        }
    }

    /**
     * HttpsURLConnection checks the URL host (the IP) itself and consults this verifier only when
     * that fails; the trust manager already checked the expected name, and this repeats it so a
     * connection is never accepted on a name other than the expected one.
     */
    private static final class NameVerifier implements HostnameVerifier {
        private final String expectedName;

        NameVerifier(String expectedName) {
            this.expectedName = expectedName;
        }

        @Override
        public boolean verify(String urlHost, SSLSession session) {
            try {
                Certificate[] peer = session.getPeerCertificates();
                return peer.length > 0 && peer[0] instanceof X509Certificate
                        && matches((X509Certificate) peer[0], expectedName);
            } catch (SSLPeerUnverifiedException e) {
                return false;
            }
        }
    }

    /** Puts the configured server name in SNI: connections go to an IP, which SNI cannot carry. */
    private static final class SniSocketFactory extends SSLSocketFactory {
        private final SSLSocketFactory d;
        private final String sniName;

        SniSocketFactory(SSLSocketFactory d, String sniName) {
            this.d = d;
            this.sniName = sniName;
        }

        private Socket sni(Socket s) {
            if (sniName != null && s instanceof SSLSocket) {
                SSLSocket ssl = (SSLSocket) s;
                SSLParameters p = ssl.getSSLParameters();
                p.setServerNames(Collections.<javax.net.ssl.SNIServerName>singletonList(new SNIHostName(sniName)));
                ssl.setSSLParameters(p);
            }
            return s;
        }

        @Override
        public String[] getDefaultCipherSuites() {
            return d.getDefaultCipherSuites();
        }

        @Override
        public String[] getSupportedCipherSuites() {
            return d.getSupportedCipherSuites();
        }

        @Override
        public Socket createSocket() throws IOException {
            return sni(d.createSocket());
        }

        @Override
        public Socket createSocket(Socket s, String host, int port, boolean autoClose) throws IOException {
            return sni(d.createSocket(s, host, port, autoClose));
        }

        @Override
        public Socket createSocket(String host, int port) throws IOException {
            return sni(d.createSocket(host, port));
        }

        @Override
        public Socket createSocket(String host, int port, InetAddress local, int localPort) throws IOException {
            return sni(d.createSocket(host, port, local, localPort));
        }

        @Override
        public Socket createSocket(InetAddress host, int port) throws IOException {
            return sni(d.createSocket(host, port));
        }

        @Override
        public Socket createSocket(InetAddress address, int port, InetAddress local, int localPort) throws IOException {
            return sni(d.createSocket(address, port, local, localPort));
        }
    }
}
