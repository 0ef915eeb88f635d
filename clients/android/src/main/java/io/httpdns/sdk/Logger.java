package io.httpdns.sdk;

/**
 * Logging hook for the SDK's own events: TLS failures, servers entering backoff, cleartext
 * servers. Set with {@link HttpDnsConfig.Builder#logger(Logger)}; the default writes to
 * {@code java.util.logging} (logcat on Android). Called from SDK threads: keep it quick.
 */
public interface Logger {
    enum Level { DEBUG, INFO, WARN, ERROR }

    void log(Level level, String message, Throwable error);

    /** Writes to the {@code io.httpdns.sdk} java.util.logging logger. */
    Logger JUL = new Logger() {
        private final java.util.logging.Logger jul = java.util.logging.Logger.getLogger("io.httpdns.sdk");

        @Override
        public void log(Level level, String message, Throwable error) {
            java.util.logging.Level l = level == Level.ERROR ? java.util.logging.Level.SEVERE
                    : level == Level.WARN ? java.util.logging.Level.WARNING
                    : level == Level.INFO ? java.util.logging.Level.INFO : java.util.logging.Level.FINE;
            jul.log(l, message, error);
        }
    };

    /** Drops everything. */
    Logger NONE = new Logger() {
        @Override
        public void log(Level level, String message, Throwable error) {}
    };
}
