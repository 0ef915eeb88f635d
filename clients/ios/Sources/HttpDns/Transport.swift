import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

public struct HttpResponse: Sendable {
    public let status: Int
    public let body: Data
    /// Value of the `X-Httpdns-Epoch` header, if any.
    public let epochHeader: String?
    /// Server time from the `Date` header (ms since the epoch), 0 when absent.
    public let dateMs: Int64

    public init(status: Int, body: Data, epochHeader: String? = nil, dateMs: Int64 = 0) {
        self.status = status
        self.body = body
        self.epochHeader = epochHeader
        self.dateMs = dateMs
    }
}

/// One HTTP exchange with server number `server` of the configuration. Async: never blocks a thread.
public protocol HttpTransport: Sendable {
    func exchange(server: Int, method: String, url: URL, body: Data?, timeoutMs: Int) async throws -> HttpResponse
    /// Ends the transport (the client calls it on close).
    func invalidate()
}

/// `URLSession` transport: ephemeral session (keep-alive within it), no proxy, no URL cache; on
/// Apple platforms every HTTPS server's certificate goes through `ServerTrustEvaluator`.
final class URLSessionTransport: HttpTransport {
    private let session: URLSession
    private let endpoints: [ServerEndpoint]
    private let policy: TlsPolicy

    init(endpoints: [ServerEndpoint], policy: TlsPolicy) {
        let cfg = URLSessionConfiguration.ephemeral
        cfg.connectionProxyDictionary = [:]
        cfg.requestCachePolicy = .reloadIgnoringLocalCacheData
        cfg.urlCache = nil
        session = URLSession(configuration: cfg)
        self.endpoints = endpoints
        self.policy = policy
    }

    func invalidate() {
        session.invalidateAndCancel()
    }

    func exchange(server: Int, method: String, url: URL, body: Data?, timeoutMs: Int) async throws -> HttpResponse {
        var req = URLRequest(url: url, cachePolicy: .reloadIgnoringLocalCacheData,
                             timeoutInterval: Double(max(1, timeoutMs)) / 1000)
        req.httpMethod = method
        req.setValue("application/json", forHTTPHeaderField: "Accept")
        if let body = body {
            req.httpBody = body
            req.setValue("application/json", forHTTPHeaderField: "Content-Type")
        }
        #if canImport(Security)
        let trust = TrustCheck(expectedName: policy.expectedName(for: endpoints[server]), policy: policy)
        let data: Data
        let response: URLResponse
        do {
            (data, response) = try await session.data(for: req, delegate: trust)
        } catch {
            if let kind = trust.failure { throw HttpDnsError.tls(kind, "\(endpoints[server].entry): \(kind.rawValue)") }
            if let u = error as? URLError, u.code.rawValue <= URLError.secureConnectionFailed.rawValue,
               u.code.rawValue >= URLError.clientCertificateRequired.rawValue {
                throw HttpDnsError.tls(.handshake, "\(endpoints[server].entry): \(u.localizedDescription)")
            }
            throw HttpDnsError.transport(error.localizedDescription)
        }
        #else
        // No Security framework (Linux): the platform's default certificate checks apply.
        let (data, response): (Data, URLResponse) = try await withCheckedThrowingContinuation { cont in
            session.dataTask(with: req) { data, response, error in
                if let error = error {
                    cont.resume(throwing: HttpDnsError.transport(error.localizedDescription))
                } else if let response = response {
                    cont.resume(returning: (data ?? Data(), response))
                } else {
                    cont.resume(throwing: HttpDnsError.transport("no response"))
                }
            }.resume()
        }
        #endif
        guard let http = response as? HTTPURLResponse else { throw HttpDnsError.transport("not an HTTP response") }
        return HttpResponse(status: http.statusCode, body: data,
                            epochHeader: http.value(forHTTPHeaderField: "X-Httpdns-Epoch"),
                            dateMs: HttpDate.parseMs(http.value(forHTTPHeaderField: "Date")))
    }
}

#if canImport(Security)
/// Per-request delegate: runs the SDK's certificate checks and remembers which one failed.
private final class TrustCheck: NSObject, URLSessionTaskDelegate, @unchecked Sendable {
    private let expectedName: String
    private let policy: TlsPolicy
    private let lock = NSLock()
    private var failed: TlsFailureKind? // guarded by lock

    init(expectedName: String, policy: TlsPolicy) {
        self.expectedName = expectedName
        self.policy = policy
    }

    var failure: TlsFailureKind? {
        lock.lock()
        defer { lock.unlock() }
        return failed
    }

    func urlSession(_ session: URLSession, task: URLSessionTask, didReceive challenge: URLAuthenticationChallenge,
                    completionHandler: @escaping (URLSession.AuthChallengeDisposition, URLCredential?) -> Void) {
        guard challenge.protectionSpace.authenticationMethod == NSURLAuthenticationMethodServerTrust,
              let trust = challenge.protectionSpace.serverTrust else {
            completionHandler(.performDefaultHandling, nil)
            return
        }
        if let kind = ServerTrustEvaluator.evaluate(trust, expectedName: expectedName, policy: policy) {
            lock.lock()
            failed = kind
            lock.unlock()
            completionHandler(.cancelAuthenticationChallenge, nil)
        } else {
            completionHandler(.useCredential, URLCredential(trust: trust))
        }
    }
}
#endif

/// RFC 7231 IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") → ms since the epoch; 0 if absent or bad.
enum HttpDate {
    static func parseMs(_ value: String?) -> Int64 {
        guard let value = value else { return 0 }
        let f = DateFormatter() // per call: DateFormatter is not Sendable
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "GMT")
        f.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        guard let d = f.date(from: value) else { return 0 }
        return Int64(d.timeIntervalSince1970 * 1000)
    }
}
