package io.httpdns.sdk;

import java.io.IOException;

/** A failed exchange with the HTTPDNS servers. */
public class HttpDnsException extends IOException {
    private static final long serialVersionUID = 1L;
    private final int status;

    public HttpDnsException(String message, int status) {
        super(message);
        this.status = status;
    }

    public HttpDnsException(String message, Throwable cause) {
        super(message, cause);
        this.status = 0;
    }

    /** HTTP status, or 0 when no response was received. */
    public int status() {
        return status;
    }
}
