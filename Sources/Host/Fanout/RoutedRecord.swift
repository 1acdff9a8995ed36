import StreamgatePluginAPI

/// A framed record on its way into the fan-out and the cache.
///
/// @unchecked Sendable: `frame` is one reference to an immutable `cf_frame`
/// (atomically counted); whoever holds the record owns that reference and
/// hands it on exactly once, so it may cross from a source's thread into the
/// cache lock.
struct RoutedRecord: @unchecked Sendable {
    let endpoint: String
    let partition: PartitionID
    let epoch: String
    let offset: Int64
    /// One reference, handed over.
    let frame: OpaquePointer
}
