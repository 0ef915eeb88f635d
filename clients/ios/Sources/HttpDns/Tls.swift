import Foundation
#if canImport(Security)
import Security
#endif

/// TLS settings for resolvers addressed by IP (same rules as Android's `Tls`): trust anchors from PEM
/// (instead of the system store when given), the name the certificate must carry (`tlsServerName`, or
/// else the server's IP) and optional SPKI pins.
struct TlsPolicy: Sendable {
    /// DER of each configured anchor.
    let anchorsDer: [Data]
    let pins: Set<String>
    let serverName: String?

    init(config: HttpDnsConfig) throws {
        anchorsDer = try config.trustedCertificatesPem.map(TlsPolicy.parsePem) ?? []
        for pin in config.pinSha256 where Data(base64Encoded: pin)?.count != 32 {
            throw HttpDnsError.malformed("pin is not a base64 SHA-256: \(pin)")
        }
        pins = Set(config.pinSha256)
        if let name = config.tlsServerName, name.isEmpty || IpLiteral.isLiteral(name) {
            throw HttpDnsError.malformed("tlsServerName must be a DNS name: \(name)")
        }
        serverName = config.tlsServerName?.lowercased()
    }

    func expectedName(for server: ServerEndpoint) -> String {
        return serverName ?? server.bareHost
    }

    /// The DER bodies of the CERTIFICATE blocks of a PEM text.
    static func parsePem(_ pem: String) throws -> [Data] {
        var out: [Data] = []
        var body: String?
        for line in pem.split(whereSeparator: \.isNewline).map({ $0.trimmingCharacters(in: .whitespaces) }) {
            if line == "-----BEGIN CERTIFICATE-----" {
                body = ""
            } else if line == "-----END CERTIFICATE-----", let b = body {
                guard let der = Data(base64Encoded: b) else { throw HttpDnsError.malformed("trustedCertificatesPem: bad base64") }
                out.append(der)
                body = nil
            } else if body != nil {
                body! += line
            }
        }
        if out.isEmpty { throw HttpDnsError.malformed("trustedCertificatesPem holds no certificate") }
        return out
    }
}

#if canImport(Security)
/// Evaluates a server trust the way the SDK requires; used by the URLSession delegate and the tests.
enum ServerTrustEvaluator {
    /// nil when the server passes every check, else the check that failed.
    static func evaluate(_ trust: SecTrust, expectedName: String, policy: TlsPolicy) -> TlsFailureKind? {
        let anchors = policy.anchorsDer.compactMap { SecCertificateCreateWithData(nil, $0 as CFData) }
        if !anchors.isEmpty {
            SecTrustSetAnchorCertificates(trust, anchors as CFArray)
            SecTrustSetAnchorCertificatesOnly(trust, true)
        }
        var error: CFError?
        // Chain first, without a name, so an untrusted chain is not reported as a name mismatch.
        SecTrustSetPolicies(trust, SecPolicyCreateSSL(true, nil))
        guard SecTrustEvaluateWithError(trust, &error) else { return .untrusted }
        SecTrustSetPolicies(trust, SecPolicyCreateSSL(true, expectedName as CFString))
        guard SecTrustEvaluateWithError(trust, &error) else { return .nameMismatch }
        if !policy.pins.isEmpty {
            let chain = (SecTrustCopyCertificateChain(trust) as? [SecCertificate]) ?? []
            guard chain.contains(where: { spkiSha256($0).map(policy.pins.contains) ?? false }) else { return .pinMismatch }
        }
        return nil
    }

    /// Base64 SHA-256 of the certificate's SubjectPublicKeyInfo. Security returns the bare key, so
    /// the SPKI header for its type and size is put back in front.
    static func spkiSha256(_ cert: SecCertificate) -> String? {
        guard let key = SecCertificateCopyKey(cert),
              let raw = SecKeyCopyExternalRepresentation(key, nil) as Data?,
              let attrs = SecKeyCopyAttributes(key) as? [CFString: Any],
              let type = attrs[kSecAttrKeyType] as? String,
              let bits = attrs[kSecAttrKeySizeInBits] as? Int else { return nil }
        let header: String
        switch (type == (kSecAttrKeyTypeECSECPrimeRandom as String), bits) {
        case (true, 256): header = "3059301306072a8648ce3d020106082a8648ce3d030107034200"
        case (true, 384): header = "3076301006072a8648ce3d020106052b81040022036200"
        case (false, 2048): header = "30820122300d06092a864886f70d01010105000382010f00"
        case (false, 4096): header = "30820222300d06092a864886f70d01010105000382020f00"
        default: return nil
        }
        var spki = [UInt8]()
        let chars = Array(header)
        for i in stride(from: 0, to: chars.count, by: 2) {
            spki.append(UInt8(String(chars[i...i + 1]), radix: 16) ?? 0)
        }
        return Data(Signer.sha256(spki + [UInt8](raw))).base64EncodedString()
    }
}
#endif
