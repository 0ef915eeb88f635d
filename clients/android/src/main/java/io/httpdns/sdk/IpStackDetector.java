package io.httpdns.sdk;

import java.net.Inet4Address;
import java.net.Inet6Address;
import java.net.InetAddress;
import java.net.NetworkInterface;
import java.net.SocketException;
import java.util.Enumeration;

/**
 * Which IP families the device can use right now, for {@code queryType("auto")}: asking only
 * for those keeps answers small and avoids handing an IPv4-only phone IPv6 addresses.
 * Pluggable: Android apps can back it with {@code ConnectivityManager}/{@code LinkProperties}.
 */
public interface IpStackDetector {
    /** The /resolve {@code type}: "A", "AAAA" or "A,AAAA". */
    String queryType();

    /**
     * JVM default: looks at the addresses of the interfaces that are up. Loopback, link-local and
     * site-local IPv6 (ULA) addresses do not count as IPv6 connectivity. Reads local state only.
     */
    IpStackDetector LOCAL_INTERFACES = new IpStackDetector() {
        @Override
        public String queryType() {
            boolean v4 = false;
            boolean v6 = false;
            try {
                Enumeration<NetworkInterface> ifs = NetworkInterface.getNetworkInterfaces();
                while (ifs != null && ifs.hasMoreElements()) {
                    NetworkInterface nif = ifs.nextElement();
                    if (!nif.isUp() || nif.isLoopback()) continue;
                    Enumeration<InetAddress> addrs = nif.getInetAddresses();
                    while (addrs.hasMoreElements()) {
                        InetAddress a = addrs.nextElement();
                        if (a.isLoopbackAddress() || a.isLinkLocalAddress()) continue;
                        if (a instanceof Inet4Address) v4 = true;
                        if (a instanceof Inet6Address && (a.getAddress()[0] & 0xfe) != 0xfc) v6 = true;
                    }
                }
            } catch (SocketException e) {
                return "A,AAAA";
            }
            return typeFor(v4, v6);
        }
    };

    /** The query type for the usable families; neither known means ask for both. */
    static String typeFor(boolean v4, boolean v6) {
        if (v4 && !v6) return "A";
        if (v6 && !v4) return "AAAA";
        return "A,AAAA";
    }
}
