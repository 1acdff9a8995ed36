// swift-tools-version:6.0
import PackageDescription

/// An example out-of-tree Streamgate plugin: an endpoint mapper with its own
/// scheme, `/<prefix>/<topic>/<a>/<b>/...` for Kafka key `a.b....`. Built as
/// a dynamic library the gateway loads at run time (docs/plugins.md).
let package = Package(
    name: "DottedKeyMapper",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "DottedKeyMapper", type: .dynamic, targets: ["DottedKeyMapper"]),
    ],
    dependencies: [
        .package(path: "../StreamgatePluginAPI"),
    ],
    targets: [
        .target(
            name: "DottedKeyMapper",
            dependencies: [.product(name: "StreamgatePluginAPI", package: "StreamgatePluginAPI")]),
    ]
)
