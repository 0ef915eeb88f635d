package io.httpdns.sdk;

/** Decides which hosts bypass HTTPDNS and always use the system resolver. */
public interface HostFilter {
    boolean useSystemDns(String host);

    HostFilter NONE = new HostFilter() {
        @Override
        public boolean useSystemDns(String host) {
            return false;
        }
    };
}
