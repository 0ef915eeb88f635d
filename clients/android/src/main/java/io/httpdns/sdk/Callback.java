package io.httpdns.sdk;

/** Receives the result of an asynchronous call, once, on an SDK thread. */
public interface Callback<T> {
    void onResult(T result);
}
