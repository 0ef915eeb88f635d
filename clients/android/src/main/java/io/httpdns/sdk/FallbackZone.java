package io.httpdns.sdk;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/** A lower-priority zone the client may use when the primary addresses fail. */
public final class FallbackZone {
    public final String zone;
    public final List<String> ips;
    public final List<String> ipsv6;

    public FallbackZone(String zone, List<String> ips, List<String> ipsv6) {
        this.zone = zone;
        this.ips = Collections.unmodifiableList(new ArrayList<String>(ips));
        this.ipsv6 = Collections.unmodifiableList(new ArrayList<String>(ipsv6));
    }

    /** IPv4 then IPv6 addresses of this zone. */
    public List<String> addresses() {
        List<String> out = new ArrayList<String>(ips);
        out.addAll(ipsv6);
        return out;
    }
}
