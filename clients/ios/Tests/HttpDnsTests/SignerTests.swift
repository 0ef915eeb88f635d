import Foundation
import XCTest
@testable import HttpDns

/// Vectors computed outside Swift (Python's hashlib/hmac); the Android tests check the same ones.
/// On Apple platforms they exercise CryptoKit; on Linux the portable fallback.
final class SignerTests: XCTestCase {
    func testSHA256Vectors() {
        XCTAssertEqual(Signer.hex(Signer.sha256([])),
                       "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(Signer.hex(Signer.sha256(Array("abc".utf8))),
                       "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }

    func testHMACVectors() {
        // RFC 4231 test case 2.
        XCTAssertEqual(Signer.hmacSHA256Hex(key: "Jefe", message: "what do ya want for nothing?"),
                       "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        // Key longer than the block size.
        XCTAssertEqual(Signer.hmacSHA256Hex(key: String(repeating: "k", count: 100), message: "long key"),
                       "5903eedefe0bba3f15b658715e41d71f1848739bddf19e497e968df5723dcd56")
    }

    func testRequestSignatureVectors() {
        XCTAssertEqual(Signer.sign(secret: "s3cret", hostParam: "api.example.com", expiry: 1_764_089_300),
                       "41fe5803bb23bcfbe9fe67216228baafc6d8d1dc645990de673f9ce5c9240d2d")
        XCTAssertEqual(Signer.sign(secret: "s3cret", hostParam: "api.example.com,img.example.com", expiry: 1_764_089_300),
                       "8759d325b0b48a933b835b3863c989943297ab75279d85e871bc4f5e675dcc29")
    }
}
