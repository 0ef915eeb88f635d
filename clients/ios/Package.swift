// swift-tools-version:5.7
import PackageDescription

let package = Package(
    name: "HttpDns",
    platforms: [.iOS(.v12), .macOS(.v10_14), .tvOS(.v12)],
    products: [
        .library(name: "HttpDns", targets: ["HttpDns"]),
    ],
    dependencies: [],
    targets: [
        .target(name: "HttpDns", path: "Sources/HttpDns"),
        .testTarget(name: "HttpDnsTests", dependencies: ["HttpDns"], path: "Tests/HttpDnsTests"),
    ]
)
