// swift-tools-version:6.0
import PackageDescription

/// An example out-of-tree Streamgate plugin: an authorizer of API keys sent
/// in the `X-API-Key` header. Built as a dynamic library the gateway loads
/// at run time (`"plugins": [".../libApiKeyAuthorizer.so"]`); it depends on
/// nothing but the plugin API's dynamic product (docs/plugins.md).
let package = Package(
    name: "ApiKeyAuthorizer",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "ApiKeyAuthorizer", type: .dynamic, targets: ["ApiKeyAuthorizer"]),
    ],
    dependencies: [
        .package(path: "../StreamgatePluginAPI"),
    ],
    targets: [
        .target(
            name: "ApiKeyAuthorizer",
            dependencies: [.product(name: "StreamgatePluginAPI", package: "StreamgatePluginAPI")]),
    ]
)
