package io.httpdns.sdk;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import org.json.JSONArray;
import org.json.JSONException;
import org.json.JSONObject;

/** A parsed {@code GET /resolve} response body. */
public final class ResolveResponse {
    public final String clientIp;
    public final Geo geo;
    public final long epoch;
    public final List<HostAnswer> answers;

    public ResolveResponse(String clientIp, Geo geo, long epoch, List<HostAnswer> answers) {
        this.clientIp = clientIp;
        this.geo = geo;
        this.epoch = epoch;
        this.answers = Collections.unmodifiableList(new ArrayList<HostAnswer>(answers));
    }

    /** Parses a 200 body. Answers get {@link HostAnswer.Source#HTTPDNS}. */
    public static ResolveResponse parse(String body) throws HttpDnsException {
        try {
            JSONObject o = new JSONObject(body);
            long epoch = o.optLong("epoch", 0);
            Geo geo = null;
            JSONObject g = o.optJSONObject("geo");
            if (g != null) {
                geo = new Geo(str(g, "country"), str(g, "province"), str(g, "city"), str(g, "carrier"),
                        g.isNull("asn") ? null : Long.valueOf(g.optLong("asn")));
            }
            List<HostAnswer> answers = new ArrayList<HostAnswer>();
            JSONArray arr = o.optJSONArray("answers");
            if (arr == null) throw new HttpDnsException("response has no answers array", 200);
            for (int i = 0; i < arr.length(); i++) {
                JSONObject a = arr.getJSONObject(i);
                String host = str(a, "host");
                if (host == null) continue;
                List<FallbackZone> fb = new ArrayList<FallbackZone>();
                JSONArray f = a.optJSONArray("fallback");
                if (f != null) {
                    for (int j = 0; j < f.length(); j++) {
                        JSONObject z = f.getJSONObject(j);
                        fb.add(new FallbackZone(str(z, "zone"), strings(z, "ips"), strings(z, "ipsv6")));
                    }
                }
                answers.add(new HostAnswer(host.toLowerCase(java.util.Locale.ROOT), str(a, "zone"),
                        a.optBoolean("failover", false), a.optInt("ttl", 0), strings(a, "ips"),
                        strings(a, "ipsv6"), fb, str(a, "error"), epoch, HostAnswer.Source.HTTPDNS));
            }
            return new ResolveResponse(str(o, "client_ip"), geo, epoch, answers);
        } catch (JSONException e) {
            throw new HttpDnsException("malformed response: " + e.getMessage(), e);
        }
    }

    /** String value, or null when missing or JSON null (org.json's optString would give "null"). */
    static String str(JSONObject o, String key) {
        if (!o.has(key) || o.isNull(key)) return null;
        return o.optString(key);
    }

    static List<String> strings(JSONObject o, String key) throws JSONException {
        JSONArray a = o.optJSONArray(key);
        List<String> out = new ArrayList<String>();
        if (a == null) return out;
        for (int i = 0; i < a.length(); i++) out.add(a.getString(i));
        return out;
    }
}
