// swift-tools-version:6.1
import PackageDescription

/// Streamgate: Kafka topics and keys as WebSocket streaming APIs.
///
/// Dependencies point one way: the host (`streamgate`) uses the built-in plugins
/// and the C hot path (`CFanout`); plugins see only the plugin API, which lives
/// in its own package with a dynamic product so that plugins loaded at run time
/// share one copy of its types with the host.
let package = Package(
    name: "streamgate",
    platforms: [.macOS(.v15), .iOS(.v18), .tvOS(.v18)],
    products: [
        .executable(name: "streamgate", targets: ["streamgate"]),
        /// The Swift SDK (sdk/swift): apps and servers connect to a Streamgate cluster with it.
        .library(name: "StreamgateClient", targets: ["StreamgateClient"]),
    ],
    dependencies: [
        .package(path: "plugins/StreamgatePluginAPI"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/vapor/jwt-kit", from: "5.8.0"),
        .package(url: "https://github.com/apple/swift-crypto", "4.5.2"..<"5.0.0"),
        .package(url: "https://github.com/hummingbird-project/swift-websocket", from: "1.6.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-distributed-tracing", from: "1.7.3"),
        // Spans of traced messages over OTLP/HTTP; the gRPC exporter (and its build time) is left out.
        .package(url: "https://github.com/swift-otel/swift-otel", from: "1.6.0", traits: ["OTLPHTTP"]),
    ],
    targets: [
        .target(
            name: "CFanout",
            path: "Sources/CFanout",
            cSettings: [
                .define("_GNU_SOURCE"),
                // The hot path is always optimised, even in debug builds.
                .unsafeFlags(["-O2", "-fno-omit-frame-pointer"]),
            ],
            linkerSettings: [.linkedLibrary("ssl"), .linkedLibrary("crypto"), .linkedLibrary("uring"), .linkedLibrary("pthread")]
        ),
        .systemLibrary(name: "CRdKafka", path: "Sources/CRdKafka"),
        // Files the gateway serves (the JavaScript SDK), embedded with C23 #embed.
        .target(
            name: "CStreamgateAssets",
            path: "Sources/CStreamgateAssets",
            cSettings: [.unsafeFlags(["-std=c23"])]
        ),
        .target(
            name: "StreamgatePlugins",
            dependencies: [
                .product(name: "StreamgatePluginAPI", package: "StreamgatePluginAPI"),
                "CRdKafka",
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            path: "Sources/Plugins"
        ),
        // The portal (`streamgate portal`): APIs, tokens and keys as data; gateways follow it
        // through the `portal` plugins. It sees the plugin API's templates, nothing of the host's.
        .target(
            name: "StreamgatePortal",
            dependencies: [
                .product(name: "StreamgatePluginAPI", package: "StreamgatePluginAPI"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                "CRdKafka",
                "CStreamgateAssets",
            ],
            path: "Sources/Portal",
            // The web UI's files are embedded by CStreamgateAssets.
            exclude: ["UI"]
        ),
        .executableTarget(
            name: "streamgate",
            dependencies: [
                "CFanout",
                "StreamgatePortal",
                "CStreamgateAssets",
                "StreamgatePlugins",
                .product(name: "StreamgatePluginAPI", package: "StreamgatePluginAPI"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "OTel", package: "swift-otel"),
            ],
            path: "Sources/Host"
        ),
        // The Swift SDK: depends on nothing of the gateway's, only on a WebSocket client.
        .target(
            name: "StreamgateClient",
            dependencies: [
                .product(name: "WSClient", package: "swift-websocket"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "sdk/swift/Sources/StreamgateClient"
        ),
        .executableTarget(
            name: "streamgate-tail",
            dependencies: [
                "StreamgateClient",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "sdk/swift/Examples/Tail"
        ),
        .testTarget(
            name: "StreamgateClientTests",
            dependencies: ["StreamgateClient"],
            path: "sdk/swift/Tests/StreamgateClientTests"
        ),
        .testTarget(
            name: "PortalTests",
            dependencies: [
                "StreamgatePortal",
                "StreamgatePlugins",
                .product(name: "StreamgatePluginAPI", package: "StreamgatePluginAPI"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Tests/PortalTests"
        ),
        .testTarget(name: "CFanoutTests", dependencies: ["CFanout"], path: "Tests/CFanoutTests"),
        .testTarget(
            name: "HostTests",
            dependencies: [
                "streamgate",
                "StreamgatePlugins",
                .product(name: "StreamgatePluginAPI", package: "StreamgatePluginAPI"),
                .product(name: "JWTKit", package: "jwt-kit"),
            ],
            path: "Tests/HostTests"
        ),
    ]
)
