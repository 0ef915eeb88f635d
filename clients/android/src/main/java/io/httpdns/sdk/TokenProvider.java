package io.httpdns.sdk;

/**
 * Supplies the request signature so the signing secret need not live in the app
 * (e.g. the app asks its own backend). Called on an SDK worker thread.
 */
public interface TokenProvider {
    /**
     * @param hostParam the exact {@code host} query value that will be sent (comma-joined for a batch);
     *                  with a configured client IP ({@code ip=}), that value + "\n" + the IP
     * @param expiry    the {@code t} value: Unix expiry time in seconds
     * @return lowercase hex HMAC-SHA256(secret, hostParam + "\n" + expiry), or null to send unsigned
     */
    String sign(String hostParam, long expiry);
}
