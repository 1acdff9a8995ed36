// swift-tools-version:6.0
import PackageDescription

/// The Streamgate plugin API: the only module a plugin sees.
///
/// Its product is a dynamic library on purpose: the host and every plugin
/// loaded at run time must share one copy of these types, or `as?` casts of
/// plugin objects to these protocols silently fail.
let package = Package(
    name: "StreamgatePluginAPI",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "StreamgatePluginAPI", type: .dynamic, targets: ["StreamgatePluginAPI"]),
    ],
    targets: [
        .target(name: "StreamgatePluginAPI"),
    ]
)
