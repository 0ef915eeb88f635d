package io.httpdns.sdk;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.json.JSONArray;
import org.json.JSONException;
import org.json.JSONObject;

/** Pending connect-time reports, grouped per host, drained at most once per interval. Thread safe. */
final class ReportBuffer {
    static final class Report {
        final String ip;
        final long rttMs;
        final boolean ok;

        Report(String ip, long rttMs, boolean ok) {
            this.ip = ip;
            this.rttMs = rttMs;
            this.ok = ok;
        }
    }

    private final Object lock = new Object();
    private final LinkedHashMap<String, List<Report>> pending = new LinkedHashMap<String, List<Report>>();
    private final int maxPending;
    private int size;
    private long lastFlushMs;

    ReportBuffer(long nowMs, int maxPending) {
        this.lastFlushMs = nowMs;
        this.maxPending = maxPending;
    }

    /** Adds a report; returns false (dropped) when the buffer is full. */
    boolean add(String host, String ip, long rttMs, boolean ok) {
        synchronized (lock) {
            if (size >= maxPending) return false;
            List<Report> l = pending.get(host);
            if (l == null) {
                l = new ArrayList<Report>();
                pending.put(host, l);
            }
            l.add(new Report(ip, Math.max(0, rttMs), ok));
            size++;
            return true;
        }
    }

    int size() {
        synchronized (lock) {
            return size;
        }
    }

    /**
     * Takes everything pending if {@code force} or at least {@code intervalMs} passed since the last
     * drain; otherwise returns an empty map. A drain that takes something restarts the interval.
     */
    Map<String, List<Report>> drain(long nowMs, long intervalMs, boolean force) {
        synchronized (lock) {
            if (size == 0 || (!force && nowMs - lastFlushMs < intervalMs)) {
                return Collections.emptyMap();
            }
            Map<String, List<Report>> out = new LinkedHashMap<String, List<Report>>(pending);
            pending.clear();
            size = 0;
            lastFlushMs = nowMs;
            return out;
        }
    }

    /** The POST /report body for one host. */
    static String toJson(String host, List<Report> reports) {
        try {
            JSONArray arr = new JSONArray();
            for (Report r : reports) {
                JSONObject o = new JSONObject();
                o.put("ip", r.ip);
                o.put("rtt_ms", r.rttMs);
                o.put("ok", r.ok);
                arr.put(o);
            }
            JSONObject body = new JSONObject();
            body.put("host", host);
            body.put("reports", arr);
            return body.toString();
        } catch (JSONException e) {
            throw new IllegalStateException(e);
        }
    }
}
