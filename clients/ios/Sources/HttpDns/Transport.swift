import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

public struct HttpResponse {
    public let status: Int
    public let body: Data
    /// Value of the `X-Httpdns-Epoch` header, if any.
    public let epochHeader: String?

    public init(status: Int, body: Data, epochHeader: String? = nil) {
        self.status = status
        self.body = body
        self.epochHeader = epochHeader
    }
}

/// One blocking HTTP exchange. Called on SDK worker queues only, never on the caller's thread.
public protocol HttpTransport {
    func exchange(method: String, url: URL, body: Data?, timeoutMs: Int) throws -> HttpResponse
}

/// `URLSession` transport: ephemeral session, no proxy, no URL cache.
public final class URLSessionTransport: HttpTransport {
    private let session: URLSession

    /// `delegate` can be a `HostNameTrustDelegate` when servers are reached over HTTPS by IP.
    public init(delegate: URLSessionDelegate? = nil) {
        let cfg = URLSessionConfiguration.ephemeral
        cfg.connectionProxyDictionary = [:]
        cfg.requestCachePolicy = .reloadIgnoringLocalCacheData
        cfg.urlCache = nil
        session = URLSession(configuration: cfg, delegate: delegate, delegateQueue: nil)
    }

    public func exchange(method: String, url: URL, body: Data?, timeoutMs: Int) throws -> HttpResponse {
        var req = URLRequest(url: url, cachePolicy: .reloadIgnoringLocalCacheData,
                             timeoutInterval: Double(max(1, timeoutMs)) / 1000)
        req.httpMethod = method
        req.setValue("application/json", forHTTPHeaderField: "Accept")
        if let body = body {
            req.httpBody = body
            req.setValue("application/json", forHTTPHeaderField: "Content-Type")
        }
        let done = DispatchSemaphore(value: 0)
        var result: Result<HttpResponse, Error> = .failure(HttpDnsError.timeout)
        let task = session.dataTask(with: req) { data, response, error in
            if let error = error {
                result = .failure(HttpDnsError.transport(error.localizedDescription))
            } else if let http = response as? HTTPURLResponse {
                var epoch: String?
                for (k, v) in http.allHeaderFields {
                    if let name = k as? String, name.lowercased() == "x-httpdns-epoch" { epoch = "\(v)" }
                }
                result = .success(HttpResponse(status: http.statusCode, body: data ?? Data(), epochHeader: epoch))
            } else {
                result = .failure(HttpDnsError.transport("not an HTTP response"))
            }
            done.signal()
        }
        task.resume()
        if done.wait(timeout: .now() + .milliseconds(max(1, timeoutMs) + 50)) == .timedOut {
            task.cancel()
            throw HttpDnsError.timeout
        }
        return try result.get()
    }
}
