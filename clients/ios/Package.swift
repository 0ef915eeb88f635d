// swift-tools-version:5.9
import PackageDescription

// Strict concurrency checking is on for both targets: the package must build warning-free in
// Swift 6 language mode (Sendable types, no captured mutable state in @Sendable closures).
let strict: [SwiftSetting] = [.enableExperimentalFeature("StrictConcurrency")]

let package = Package(
    name: "HttpDns",
    // iOS 15 / macOS 12: async URLSession with a per-task delegate (certificate checks) and
    // SecTrustCopyCertificateChain (pins).
    platforms: [.iOS(.v15), .macOS(.v12), .tvOS(.v15)],
    products: [
        .library(name: "HttpDns", targets: ["HttpDns"]),
    ],
    dependencies: [],
    targets: [
        .target(name: "HttpDns", path: "Sources/HttpDns", swiftSettings: strict),
        .testTarget(name: "HttpDnsTests", dependencies: ["HttpDns"], path: "Tests/HttpDnsTests", swiftSettings: strict),
    ]
)
