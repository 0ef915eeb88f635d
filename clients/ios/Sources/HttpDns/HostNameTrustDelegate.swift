import Foundation
#if canImport(Security)
import Security

/// URLSession delegate for HTTPS requests sent to an IP address (as resolved by HTTPDNS): validates the
/// server certificate against the real host name instead of the IP in the URL.
///
/// The host name is taken from the request's `Host` header (set it to the real name when you replace
/// the host in the URL with an IP), falling back to `defaultHostName`.
///
///     let delegate = HostNameTrustDelegate()
///     let session = URLSession(configuration: .default, delegate: delegate, delegateQueue: nil)
///     var req = URLRequest(url: URL(string: "https://203.0.113.10/v1/ping")!)
///     req.setValue("api.example.com", forHTTPHeaderField: "Host")
///
/// Note: URLSession does not send SNI for an IP-literal URL; servers that need SNI to pick a
/// certificate must be reached with a lower-level API, or through the domain-name URL.
public final class HostNameTrustDelegate: NSObject, URLSessionTaskDelegate {
    private let defaultHostName: String?

    public init(defaultHostName: String? = nil) {
        self.defaultHostName = defaultHostName
    }

    public func urlSession(_ session: URLSession, task: URLSessionTask,
                           didReceive challenge: URLAuthenticationChallenge,
                           completionHandler: @escaping (URLSession.AuthChallengeDisposition, URLCredential?) -> Void) {
        guard challenge.protectionSpace.authenticationMethod == NSURLAuthenticationMethodServerTrust,
              let trust = challenge.protectionSpace.serverTrust else {
            completionHandler(.performDefaultHandling, nil)
            return
        }
        guard let host = task.originalRequest?.value(forHTTPHeaderField: "Host") ?? defaultHostName else {
            completionHandler(.performDefaultHandling, nil)
            return
        }
        if HostNameTrustDelegate.evaluate(trust, hostName: host) {
            completionHandler(.useCredential, URLCredential(trust: trust))
        } else {
            completionHandler(.cancelAuthenticationChallenge, nil)
        }
    }

    /// Evaluates `trust` with an SSL policy for `hostName` (chain + name check).
    public static func evaluate(_ trust: SecTrust, hostName: String) -> Bool {
        let policy = SecPolicyCreateSSL(true, hostName as CFString)
        guard SecTrustSetPolicies(trust, policy) == errSecSuccess else { return false }
        var error: CFError?
        return SecTrustEvaluateWithError(trust, &error)
    }
}
#endif
