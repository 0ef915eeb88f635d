package io.httpdns.sdk;

/**
 * Standard base64 encoding (RFC 4648, padded), for SPKI pins. java.util.Base64 needs Android
 * API 26 and android.util.Base64 is missing on the JVM, so the SDK carries these few lines.
 */
final class Base64 {
    private static final char[] ALPHABET =
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".toCharArray();

    private Base64() {}

    static String encode(byte[] in) {
        StringBuilder sb = new StringBuilder((in.length + 2) / 3 * 4);
        for (int i = 0; i < in.length; i += 3) {
            int b = (in[i] & 0xff) << 16;
            if (i + 1 < in.length) b |= (in[i + 1] & 0xff) << 8;
            if (i + 2 < in.length) b |= in[i + 2] & 0xff;
            sb.append(ALPHABET[(b >> 18) & 63]).append(ALPHABET[(b >> 12) & 63]);
            sb.append(i + 1 < in.length ? ALPHABET[(b >> 6) & 63] : '=');
            sb.append(i + 2 < in.length ? ALPHABET[b & 63] : '=');
        }
        return sb.toString();
    }

    /** True for the base64 form of a SHA-256 digest (32 bytes: 43 characters and one '='). */
    static boolean isSha256(String s) {
        return s != null && s.matches("[A-Za-z0-9+/]{43}=");
    }
}
