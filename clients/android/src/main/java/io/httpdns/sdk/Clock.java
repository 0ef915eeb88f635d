package io.httpdns.sdk;

/**
 * Wall-clock source used for cache TTLs, staleness, refresh points, report intervals and
 * request-signature expiry. Injectable so tests can move time by hand.
 * Blocking timeouts (connect/read/caller budget) always use real monotonic time.
 */
public interface Clock {
    /** Milliseconds since the Unix epoch. */
    long nowMillis();

    Clock SYSTEM = new Clock() {
        @Override
        public long nowMillis() {
            return System.currentTimeMillis();
        }
    };
}
