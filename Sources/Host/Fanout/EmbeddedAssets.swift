import CStreamgateAssets

/// Files the gateway serves, embedded in the binary at build time
/// (`Sources/CStreamgateAssets`).
enum EmbeddedAssets {
    /// `sdk/js/streamgate.js`, as in the repository.
    /// `docs/streamgate.example.jsonc`: every key, commented.
    static var configurationExample: String {
        var length = 0
        let bytes = streamgate_asset_config_example(&length)!
        return String(decoding: UnsafeBufferPointer(start: bytes, count: length), as: UTF8.self)
    }

    static var javaScriptSDK: String {
        var length = 0
        let bytes = streamgate_asset_sdk_js(&length)!
        return String(decoding: UnsafeBufferPointer(start: bytes, count: length), as: UTF8.self)
    }
}
