package io.httpdns.sdk;

import java.net.Inet6Address;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.util.ArrayList;
import java.util.List;

/** The platform resolver (LocalDNS) used when HTTPDNS cannot answer. Pluggable for tests. */
public interface SystemDns {
    /**
     * Returns IP literals (IPv4 and/or IPv6) for {@code host}.
     * @throws UnknownHostException when the host cannot be resolved
     */
    List<String> lookup(String host) throws UnknownHostException;

    SystemDns DEFAULT = new SystemDns() {
        @Override
        public List<String> lookup(String host) throws UnknownHostException {
            InetAddress[] all = InetAddress.getAllByName(host);
            List<String> out = new ArrayList<String>(all.length);
            for (InetAddress a : all) {
                String s = a.getHostAddress();
                if (a instanceof Inet6Address) {
                    int pct = s.indexOf('%');
                    if (pct >= 0) s = s.substring(0, pct);
                }
                out.add(s);
            }
            return out;
        }
    };
}
