package io.httpdns.sdk;

import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.json.JSONArray;
import org.json.JSONException;
import org.json.JSONObject;

/**
 * The answer cache: LRU-bounded, with TTL, refresh point and staleness window per entry, short
 * negative entries for hosts the resolver does not serve, and the configuration epoch. A newer
 * epoch marks every older entry for refresh instead of deleting it, so stale answers stay usable
 * as a fallback until the refresh lands. Also (de)serialises itself for a {@link CacheStore}.
 */
final class AnswerCache {
    static final class Entry {
        final HostAnswer answer;
        /** Clock millis when stored. */
        final long storedAt;
        final long expiresAt;
        final long refreshAt;
        final long staleUntil;
        /** Epoch of the response that carried it (body or header, the larger). */
        final long epoch;
        /** "The resolver does not serve this host": go straight to the system resolver until expiry. */
        final boolean negative;
        /** Read since it was stored: worth refreshing in the background. */
        volatile boolean used;

        Entry(HostAnswer answer, long storedAt, long expiresAt, long refreshAt, long staleUntil, long epoch,
              boolean negative) {
            this.answer = answer;
            this.storedAt = storedAt;
            this.expiresAt = expiresAt;
            this.refreshAt = refreshAt;
            this.staleUntil = staleUntil;
            this.epoch = epoch;
            this.negative = negative;
        }
    }

    private final int maxEntries;
    private final LinkedHashMap<String, Entry> map;
    private long epoch;

    AnswerCache(final int maxEntries) {
        this.maxEntries = maxEntries;
        this.map = new LinkedHashMap<String, Entry>(16, 0.75f, true) {
            private static final long serialVersionUID = 1L;

            @Override
            protected boolean removeEldestEntry(Map.Entry<String, AnswerCache.Entry> eldest) {
                return size() > AnswerCache.this.maxEntries;
            }
        };
    }

    static Entry positive(HostAnswer a, long now, long epoch, HttpDnsConfig cfg) {
        long ttlMs = a.ttl * 1000L;
        return new Entry(a, now, now + ttlMs, now + (long) (ttlMs * cfg.refreshRatio), now + ttlMs + cfg.maxStaleMs,
                epoch, false);
    }

    static Entry negative(HostAnswer a, long now, long epoch, HttpDnsConfig cfg) {
        long until = now + cfg.negativeTtlMs;
        return new Entry(a, now, until, until, until, epoch, true);
    }

    /** Fresh: within its TTL and not from an older configuration epoch. */
    synchronized boolean fresh(Entry e, long now) {
        return now < e.expiresAt && e.epoch >= epoch;
    }

    synchronized Entry get(String host) {
        return map.get(host);
    }

    synchronized void put(String host, Entry e) {
        map.put(host, e);
    }

    synchronized void remove(String host) {
        map.remove(host);
    }

    synchronized void clear() {
        map.clear();
    }

    synchronized int size() {
        return map.size();
    }

    synchronized long epoch() {
        return epoch;
    }

    /** Notes the epoch of a response; true when it is newer (older entries now need a refresh). */
    synchronized boolean observeEpoch(long e) {
        if (e <= epoch) return false;
        epoch = e;
        return true;
    }

    /** Hosts worth refreshing now: past their refresh point or epoch, within staleness, and wanted. */
    synchronized List<String> due(long now, List<String> alwaysWanted) {
        List<String> out = new ArrayList<String>();
        for (Map.Entry<String, Entry> me : map.entrySet()) {
            Entry e = me.getValue();
            if (e.negative) continue;
            boolean needs = now >= e.refreshAt || e.epoch < epoch;
            if (needs && now <= e.staleUntil && (e.used || alwaysWanted.contains(me.getKey()))) out.add(me.getKey());
        }
        return out;
    }

    /** Snapshot for a {@link CacheStore}: positive entries only, least recently used first. */
    synchronized String toJson() {
        try {
            JSONObject root = new JSONObject();
            root.put("version", 1);
            root.put("epoch", epoch);
            JSONArray arr = new JSONArray();
            for (Map.Entry<String, Entry> me : map.entrySet()) {
                Entry e = me.getValue();
                if (e.negative) continue;
                JSONObject o = new JSONObject();
                HostAnswer a = e.answer;
                o.put("host", a.host);
                o.put("zone", a.zone == null ? JSONObject.NULL : a.zone);
                o.put("failover", a.failover);
                o.put("ttl", a.ttl);
                o.put("ips", new JSONArray(a.ips));
                o.put("ipsv6", new JSONArray(a.ipsv6));
                JSONArray fb = new JSONArray();
                for (FallbackZone z : a.fallback) {
                    JSONObject zo = new JSONObject();
                    zo.put("zone", z.zone);
                    zo.put("ips", new JSONArray(z.ips));
                    zo.put("ipsv6", new JSONArray(z.ipsv6));
                    fb.put(zo);
                }
                o.put("fallback", fb);
                o.put("stored_at", e.storedAt);
                o.put("epoch", e.epoch);
                arr.put(o);
            }
            root.put("entries", arr);
            return root.toString();
        } catch (JSONException ex) {
            throw new IllegalStateException(ex);
        }
    }

    /**
     * Loads a snapshot; entries past their staleness window are dropped. Returns how many were
     * kept. A malformed snapshot throws and leaves the cache as it was.
     */
    int load(String json, long now, HttpDnsConfig cfg) throws HttpDnsException {
        List<Object[]> kept = new ArrayList<Object[]>();
        long savedEpoch;
        try {
            JSONObject root = new JSONObject(json);
            if (root.optInt("version", 0) != 1) throw new HttpDnsException("cache snapshot: unknown version", 0);
            savedEpoch = root.optLong("epoch", 0);
            JSONArray arr = root.getJSONArray("entries");
            JSONObject wrapper = new JSONObject();
            wrapper.put("epoch", 0);
            wrapper.put("answers", arr);
            ResolveResponse parsed = ResolveResponse.parse(wrapper.toString());
            for (int i = 0; i < arr.length(); i++) {
                JSONObject o = arr.getJSONObject(i);
                HostAnswer a = parsed.answers.get(i);
                long storedAt = o.getLong("stored_at");
                long ep = o.optLong("epoch", 0);
                HostAnswer withEpoch = new HostAnswer(a.host, a.zone, a.failover, a.ttl, a.ips, a.ipsv6, a.fallback,
                        null, ep, HostAnswer.Source.HTTPDNS);
                Entry e = positive(withEpoch, storedAt, ep, cfg);
                if (now <= e.staleUntil && storedAt <= now && !a.isEmpty()) kept.add(new Object[] {a.host, e});
            }
        } catch (JSONException ex) {
            throw new HttpDnsException("cache snapshot is malformed: " + ex.getMessage(), ex);
        }
        synchronized (this) {
            observeEpoch(savedEpoch);
            for (Object[] kv : kept) if (!map.containsKey((String) kv[0])) map.put((String) kv[0], (Entry) kv[1]);
        }
        return kept.size();
    }

    /** Drops entries whose staleness window has passed (keeps the snapshot small). */
    synchronized void purge(long now) {
        Iterator<Entry> it = map.values().iterator();
        while (it.hasNext()) if (now > it.next().staleUntil) it.remove();
    }
}
