package io.httpdns.sdk;

/**
 * Recognises IP literals without any lookup: they are answered locally (never sent to the
 * resolver) and may be handed to {@code InetAddress.getByName}, which parses literals only.
 */
final class IpLiteral {
    private IpLiteral() {}

    static boolean is(String s) {
        if (s == null || s.isEmpty()) return false;
        String h = strip(s);
        if (h.indexOf(':') >= 0) return h.matches("[0-9A-Fa-f:.]+") && h.length() <= 45;
        String[] parts = h.split("\\.", -1);
        if (parts.length != 4) return false;
        for (String p : parts) {
            if (p.isEmpty() || p.length() > 3 || !p.matches("[0-9]+") || Integer.parseInt(p) > 255) return false;
        }
        return true;
    }

    /** Drops the brackets of "[v6]". */
    static String strip(String s) {
        return s.startsWith("[") && s.endsWith("]") ? s.substring(1, s.length() - 1) : s;
    }
}
