package io.httpdns.sdk;

/**
 * A TLS handshake with an HTTPDNS server failed its checks. The SDK never retries such a server
 * over plain HTTP; {@link HttpDnsClient#lastError()} and the {@link Logger} receive this.
 */
public final class HttpDnsTlsException extends HttpDnsException {
    private static final long serialVersionUID = 1L;

    /** Which check failed. */
    public enum Kind {
        /** The certificate is valid but not for the expected name or IP (see {@code tlsServerName}). */
        NAME_MISMATCH,
        /** The certificate chain does not lead to a trusted anchor (or is expired / malformed). */
        UNTRUSTED,
        /** No certificate in the chain has one of the configured SPKI pins. */
        PIN_MISMATCH,
        /** The handshake failed for another reason (protocol, cipher, reset). */
        HANDSHAKE
    }

    private final Kind kind;

    public HttpDnsTlsException(Kind kind, String message, Throwable cause) {
        super("TLS " + kind.name().toLowerCase(java.util.Locale.ROOT) + ": " + message, cause);
        this.kind = kind;
    }

    public Kind kind() {
        return kind;
    }
}
