package io.httpdns.sdk;

/**
 * Per-server failure memory: a server that failed is skipped for an exponentially growing,
 * capped time (base, 2x base, 4x base, ... up to max), so a blackholed resolver costs its
 * timeout once instead of on every uncached lookup. Once the window has passed the server is
 * "due": one trial request (run in the background) decides whether it is back. Thread safe.
 */
final class ServerBackoff {
    private final long baseMs;
    private final long maxMs;
    private final int[] failures;
    private final long[] until;
    private final boolean[] probing;

    ServerBackoff(int servers, long baseMs, long maxMs) {
        this.baseMs = baseMs;
        this.maxMs = maxMs;
        failures = new int[servers];
        until = new long[servers];
        probing = new boolean[servers];
    }

    /** Never failed, or answered since its last failure. */
    synchronized boolean healthy(int i) {
        return failures[i] == 0;
    }

    /** Failed, and its backoff window has passed: worth one trial request. */
    synchronized boolean due(int i, long now) {
        return failures[i] > 0 && now >= until[i] && !probing[i];
    }

    /** Claims the trial request of a due server; false if another request has it. */
    synchronized boolean claimProbe(int i, long now) {
        if (!due(i, now)) return false;
        probing[i] = true;
        return true;
    }

    /** Gives back a claimed trial request that was never sent. */
    synchronized void release(int i) {
        probing[i] = false;
    }

    synchronized boolean anyHealthy() {
        for (int f : failures) if (f == 0) return true;
        return false;
    }

    synchronized void success(int i) {
        failures[i] = 0;
        until[i] = 0;
        probing[i] = false;
    }

    /** Records a failure; returns the new backoff in ms. */
    synchronized long failure(int i, long now) {
        failures[i] = Math.min(failures[i] + 1, 30);
        long d = baseMs;
        for (int k = 1; k < failures[i] && d < maxMs; k++) d *= 2;
        d = Math.min(d, maxMs);
        until[i] = now + d;
        probing[i] = false;
        return d;
    }

    /** Forgets every failure (the network changed: old failures say nothing about the new path). */
    synchronized void reset() {
        for (int i = 0; i < failures.length; i++) {
            failures[i] = 0;
            until[i] = 0;
            probing[i] = false;
        }
    }
}
