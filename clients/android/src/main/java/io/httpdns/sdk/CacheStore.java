package io.httpdns.sdk;

import java.io.IOException;

/**
 * Where the answer cache is kept across app restarts, so the first lookups after a cold start
 * are answered at once. Apps can back it with their own storage (SharedPreferences, a database);
 * {@link FileCacheStore} is the JVM default. Called on SDK threads, never on the caller's.
 */
public interface CacheStore {
    /** The last saved snapshot, or null when there is none. */
    String load() throws IOException;

    /** Replaces the saved snapshot. */
    void save(String snapshot) throws IOException;
}
